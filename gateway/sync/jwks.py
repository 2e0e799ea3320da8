"""Fetching a client's JWK Set from its registered URL, with a cache that honours ``Cache-Control``.

Used by the authorization server (``gateway.auth.assertion``) to verify ``private_key_jwt`` client
assertions of clients registered with a JWKS URL (SMART client-confidential-asymmetric,
https://hl7.org/fhir/smart-app-launch/client-confidential-asymmetric.html, checklist BS-5/BS-6).

Why it lives in ``gateway/sync/``: the house rule (DESIGN §2, checked by tests/test_architecture.py) is that
only ``gateway/sync/`` makes outbound HTTP, so every outbound call is in one package with one set of
timeouts, size limits and redirect rules. ``gateway/auth`` asks this module for a key set and never
imports httpx itself.

Rules: only the URL registered for the client is fetched (a ``jku`` header naming any other URL is refused
before anything is fetched, so no caller can make the gateway fetch an arbitrary URL); ``GET`` with
``Accept: application/json``, no client authentication, no redirects, a short timeout and a size cap.
A fetched set is cached for ``max-age`` (``no-store``/``no-cache`` → not cached, no header → the default
TTL, never longer than ``max_ttl_seconds``). ``refresh`` re-fetches when a ``kid`` is unknown (key
rotation) but at most once per ``min_refresh_seconds`` per URL, so unknown kids cannot turn the gateway into
a request amplifier.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

MAX_JWKS_BYTES = 64 * 1024
_MAX_AGE = re.compile(r"(?:^|,)\s*(?:s-maxage|max-age)\s*=\s*\"?(\d+)\"?", re.IGNORECASE)


class JwksFetchError(Exception):
    """The key set could not be fetched or is not a JWK Set (the message holds no response body)."""


@dataclass
class _Entry:
    jwks: dict[str, Any]
    expires: float
    fetched: float


def cache_seconds(cache_control: str | None, *, default: float, maximum: float) -> float:
    """How long a response may be cached per its ``Cache-Control`` header (RFC 9111 §5.2.2)."""
    if cache_control is None:
        return min(default, maximum)
    lowered = cache_control.lower()
    if "no-store" in lowered or "no-cache" in lowered:
        return 0.0
    match = _MAX_AGE.search(lowered)
    if match is None:
        return min(default, maximum)
    return min(float(match.group(1)), maximum)


class JwksFetcher:
    """A per-process cache of fetched JWK Sets; thread-safe (token requests run in worker threads)."""

    def __init__(
        self,
        *,
        timeout_seconds: float = 5.0,
        default_ttl_seconds: float = 300.0,
        max_ttl_seconds: float = 3600.0,
        min_refresh_seconds: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self.default_ttl_seconds = default_ttl_seconds
        self.max_ttl_seconds = max_ttl_seconds
        self.min_refresh_seconds = min_refresh_seconds
        self._transport = transport
        self._entries: dict[str, _Entry] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.fetches = 0  # how many HTTP fetches were made (observable in tests and benches)

    def get(self, url: str) -> dict[str, Any]:
        """The key set at ``url``, from the cache while it is fresh."""
        entry = self._entries.get(url)
        if entry is not None and entry.expires > time.monotonic():
            return entry.jwks
        with self._lock(url):
            entry = self._entries.get(url)
            if entry is not None and entry.expires > time.monotonic():
                return entry.jwks
            return self._fetch(url)

    def refresh(self, url: str) -> dict[str, Any]:
        """The key set fetched anew (a kid was unknown), unless it was fetched a moment ago."""
        with self._lock(url):
            entry = self._entries.get(url)
            if entry is not None and time.monotonic() - entry.fetched < self.min_refresh_seconds:
                return entry.jwks
            return self._fetch(url)

    def clear(self) -> None:
        with self._guard:
            self._entries.clear()

    def _lock(self, url: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(url, threading.Lock())

    def _fetch(self, url: str) -> dict[str, Any]:
        self.fetches += 1
        try:
            with (
                httpx.Client(
                    timeout=self.timeout_seconds, follow_redirects=False, transport=self._transport
                ) as client,
                client.stream("GET", url, headers={"Accept": "application/json"}) as response,
            ):
                if response.status_code != 200:
                    raise JwksFetchError(f"the JWKS URL answered {response.status_code}")
                body = bytearray()
                for chunk in response.iter_bytes():
                    body.extend(chunk)
                    if len(body) > MAX_JWKS_BYTES:
                        raise JwksFetchError(f"the JWKS is larger than {MAX_JWKS_BYTES} bytes")
                cache_control = response.headers.get("cache-control")
        except httpx.HTTPError as error:
            raise JwksFetchError(f"the JWKS URL could not be fetched ({type(error).__name__})") from None
        try:
            jwks = json.loads(bytes(body))
        except ValueError:
            raise JwksFetchError("the JWKS URL did not answer JSON") from None
        if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
            raise JwksFetchError("the JWKS URL did not answer a JWK Set")
        now = time.monotonic()
        ttl = cache_seconds(cache_control, default=self.default_ttl_seconds, maximum=self.max_ttl_seconds)
        self._entries[url] = _Entry(jwks=jwks, expires=now + ttl, fetched=now)
        return jwks


#: the process's fetcher (its cache is shared by every token request of the process)
default_fetcher = JwksFetcher()
