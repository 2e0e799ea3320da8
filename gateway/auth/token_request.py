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
from urllib.parse import parse_qsl, unquote_plus

from gateway.core.errors import OAuthError

FORM = "application/x-www-form-urlencoded"
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
