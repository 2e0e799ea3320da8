"""The one outbound EHR client: SMART Backend Services (hl7.org/fhir/smart-app-launch/backend-services.html)
plus FHIR REST calls with the bearer token it gets.

Authentication is ``private_key_jwt`` (RFC 7523, smart-checklist §11, §13): a fresh assertion for every
token request (new ``jti``, ``exp`` 4 minutes ahead, at most the 5 the spec allows, ``kid`` in the header,
RS384 or ES384). The token is cached and fetched again before it expires (short lifetimes such as Oracle
Health's are fine); a 401 from the EHR drops it and the request is sent once more with a new one; a
second 401 is an :class:`EhrAuthError`. A ``201 Created`` with an empty body (Epic) is fine: the new
resource's id and version come from ``Location``. Every request has a timeout.
"""

from __future__ import annotations

import email.utils
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from joserfc import jwt

from gateway.sync.errors import EhrAuthError, EhrStatusError, EhrTransportError
from gateway.sync.keys import Key

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = 240  # seconds; SMART allows at most 300
FHIR_JSON = "application/fhir+json"


@dataclass(frozen=True)
class Endpoint:
    fhir_base: str
    token_url: str
    client_id: str
    scope: str
    alg: str
    kid: str
    key: Key = field(repr=False)


@dataclass(frozen=True)
class EhrResponse:
    status_code: int
    headers: Mapping[str, str]
    body: Any

    @property
    def location(self) -> tuple[str, str, str | None] | None:
        """(type, id, version) from ``Location`` (``[base/]Type/id[/_history/vid]``), or None."""
        value = self.headers.get("location") or self.headers.get("content-location")
        return parse_location(value) if value else None


def parse_location(value: str) -> tuple[str, str, str | None] | None:
    parts = [p for p in urlsplit(value).path.split("/") if p]
    version = None
    if len(parts) >= 4 and parts[-2] == "_history":
        version = parts[-1]
        parts = parts[:-2]
    if len(parts) < 2 or not parts[-2][:1].isupper():
        return None
    return parts[-2], parts[-1], version


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def _json_body(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _outcome(body: Any) -> dict[str, Any] | None:
    return body if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome" else None


class SmartClient:
    def __init__(
        self,
        endpoint: Endpoint,
        *,
        timeout: float,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.endpoint = endpoint
        self.clock = clock
        self.http = httpx.Client(
            timeout=httpx.Timeout(timeout), transport=transport, headers={"accept": FHIR_JSON}
        )
        self._token: tuple[str, float] | None = None  # (access token, refresh at)
        self._lock = threading.Lock()
        self.tokens_fetched = 0

    def close(self) -> None:
        self.http.close()

    # -- authentication ---------------------------------------------------------------------------

    def assertion(self) -> str:
        now = int(self.clock())
        e = self.endpoint
        claims = {
            "iss": e.client_id,
            "sub": e.client_id,
            "aud": e.token_url,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
        }
        header = {"alg": e.alg, "kid": e.kid, "typ": "JWT"}
        return jwt.encode(header, claims, e.key, algorithms=[e.alg])

    def token(self) -> str:
        with self._lock:
            if self._token is not None and self.clock() < self._token[1]:
                return self._token[0]
            self._token = None
            data = {
                "grant_type": "client_credentials",
                "scope": self.endpoint.scope,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": self.assertion(),
            }
            try:
                response = self.http.post(
                    self.endpoint.token_url, data=data, headers={"accept": "application/json"}
                )
            except httpx.TransportError as error:
                raise EhrTransportError(f"token request failed: {type(error).__name__}") from None
            body = _json_body(response)
            if response.status_code >= 500 or response.status_code == 429:
                raise EhrStatusError(
                    response.status_code,
                    "token endpoint",
                    retry_after=retry_after_seconds(response.headers.get("retry-after"), self.clock()),
                )
            if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
                code = body.get("error") if isinstance(body, dict) else None
                raise EhrAuthError(
                    f"token endpoint refused the client: HTTP {response.status_code} {code or ''}".strip(),
                    status_code=response.status_code,
                )
            lifetime = float(body.get("expires_in") or 300)
            # fetch a new one before it runs out: a fifth of its life early, at most a minute
            self._token = (str(body["access_token"]), self.clock() + lifetime - min(60.0, lifetime / 5))
            self.tokens_fetched += 1
            return self._token[0]

    def forget_token(self, token: str) -> None:
        with self._lock:
            if self._token is not None and self._token[0] == token:
                self._token = None

    # -- FHIR REST ----------------------------------------------------------------------------------

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return self.endpoint.fhir_base.rstrip("/") + "/" + path.lstrip("/")

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> EhrResponse:
        """One FHIR interaction; raises an :class:`EhrError` for anything but a 2xx."""
        for attempt in (1, 2):
            token = self.token()
            sent_headers = {"authorization": f"Bearer {token}", **(headers or {})}
            if json is not None:
                sent_headers["content-type"] = FHIR_JSON
            try:
                response = self.http.request(
                    method, self.url(path), json=json, params=params, headers=sent_headers
                )
            except httpx.TransportError as error:
                raise EhrTransportError(f"{method} {type(error).__name__}") from None
            if response.status_code == 401:
                self.forget_token(token)
                if attempt == 1:
                    continue
                raise EhrAuthError(
                    "the EHR refused a fresh token", status_code=401, outcome=_json_body(response)
                )
            body = _json_body(response)
            if response.status_code >= 400:
                raise EhrStatusError(
                    response.status_code,
                    f"{method} {urlsplit(self.url(path)).path}",
                    outcome=_outcome(body),
                    retry_after=retry_after_seconds(response.headers.get("retry-after"), self.clock()),
                )
            return EhrResponse(response.status_code, response.headers, body)
        raise AssertionError("unreachable")

    def get_json(self, url: str, *, timeout: float | None = None) -> Any:
        """An unauthenticated discovery read (``/metadata``, ``.well-known/smart-configuration``)."""
        try:
            response = self.http.get(url, headers={"accept": f"{FHIR_JSON}, application/json"})
        except httpx.TransportError as error:
            raise EhrTransportError(f"GET {type(error).__name__}") from None
        if response.status_code >= 400:
            raise EhrStatusError(response.status_code, f"GET {urlsplit(url).path}")
        return _json_body(response)
