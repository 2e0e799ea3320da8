"""What a token request says, parsed strictly (RFC 6749 §3.2, §2.3.1; https://www.rfc-editor.org/rfc/rfc6749).

The body is ``application/x-www-form-urlencoded`` UTF-8. A parameter sent more than once is refused
(§3.2: "Request and response parameters MUST NOT be included more than once"), and so is an empty
``scope``; any other parameter sent without a value is treated as omitted (§3.1).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion

from gateway.core.errors import OAuthError

FORM = "application/x-www-form-urlencoded"
#: RFC 7523 §2.2 client_assertion_type
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: an assertion larger than this is refused before it is parsed (a JWS of a few claims is < 2 KiB)
MAX_ASSERTION_BYTES = 8192
#: more parameters than any grant type uses; a longer form is refused before it is looked at
MAX_PARAMETERS = 32


@dataclass(frozen=True)
class TokenRequest:
    """A parsed token request: the form, HTTP Basic credentials if sent, and the caller's address."""

    form: Mapping[str, str]
    basic: tuple[str, str] | None
    address: str

    @property
    def grant_type(self) -> str | None:
        return self.form.get("grant_type")

    @cached_property
    def assertion(self) -> UnverifiedAssertion | None:
        """The ``client_assertion`` (RFC 7523 §2.2), parsed but not verified; None when none is sent."""
        return read_assertion(self.form)


def _invalid_client(description: str) -> OAuthError:
    return OAuthError("invalid_client", description, status_code=400)


@dataclass(frozen=True)
class UnverifiedAssertion:
    """What an assertion says before anything is verified (used to find the client and throttle it)."""

    header: Mapping[str, Any]
    claims: Mapping[str, Any]

    @property
    def issuer(self) -> str | None:
        iss = self.claims.get("iss")
        return iss if isinstance(iss, str) else None


def read_assertion(form: Mapping[str, str]) -> UnverifiedAssertion | None:
    """The client assertion of a token request, unverified; None when the request sends none.

    A request that sends ``client_assertion_type`` or ``client_assertion`` must send both, with the
    jwt-bearer type and a parseable JWS (BS-3: otherwise 400 ``invalid_client``).
    """
    assertion_type = form.get("client_assertion_type")
    assertion = form.get("client_assertion")
    if assertion_type is None and assertion is None:
        return None
    if assertion_type != ASSERTION_TYPE:
        raise _invalid_client(f"client_assertion_type must be {ASSERTION_TYPE}")
    if not assertion:
        raise _invalid_client("client_assertion is required with client_assertion_type")
    if len(assertion) > MAX_ASSERTION_BYTES:
        raise _invalid_client("client_assertion is too large")
    try:
        header, claims = JWTBearerClientAssertion().extract_assertion(assertion)
    except InvalidClientError:
        raise _invalid_client("client_assertion is not a signed JWT (JWS compact serialization)") from None
    return UnverifiedAssertion(header=header, claims=claims)


def parse_form(body: bytes, content_type: str | None) -> dict[str, str]:
    media_type, _, parameters = (content_type or "").partition(";")
    if media_type.strip().lower() != FORM:
        raise OAuthError("invalid_request", f"the token request must be {FORM}")
    for parameter in parameters.split(";"):
        name, _, value = parameter.strip().partition("=")
        if name.lower() == "charset" and value.strip('"').lower() not in {"utf-8", "utf8"}:
            raise OAuthError("invalid_request", "the token request must be UTF-8")
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=bool(text),
            errors="strict",
            max_num_fields=MAX_PARAMETERS,
        )
    except UnicodeDecodeError:
        raise OAuthError("invalid_request", "the token request must be UTF-8") from None
    except ValueError:
        raise OAuthError(
            "invalid_request", f"malformed form body (name=value pairs joined by &, at most {MAX_PARAMETERS})"
        ) from None
    form: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in pairs:
        if name in seen:
            raise OAuthError("invalid_request", f"parameter {name} is repeated")
        seen.add(name)
        if name == "scope" and not value.strip():
            raise OAuthError(
                "invalid_request", "scope must not be empty (omit it to get the client's scopes)"
            )
        if value:
            form[name] = value
    return form


def parse_basic_auth(header: str | None) -> tuple[str, str] | None:
    """``Authorization: Basic`` per RFC 6749 §2.3.1 (id and secret are form-urlencoded first)."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError("invalid_client", "malformed Basic credentials", status_code=401) from None
    client_id, sep, secret = decoded.partition(":")
    if not sep or not client_id:
        raise OAuthError("invalid_client", "malformed Basic credentials", status_code=401)
    return unquote_plus(client_id), unquote_plus(secret)
