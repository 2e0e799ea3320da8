"""Token issuance (RFC 6749 §4.4 client credentials) and bearer-token checks (RFC 6750).

Clinic clients authenticate with ``client_secret_basic`` (RFC 6749 §2.3.1). The client and token
tables already carry what SMART Backend Services needs (kind ``ehr``, ``private_key_jwt`` with a
JWKS, scopes, several clinic grants); that grant type is added by a later issue in this module.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote_plus

from gateway.auth import credentials
from gateway.core.config import Settings
from gateway.core.errors import OAuthError, UnauthorizedError
from gateway.db.engine import Session
from gateway.db.repositories import clinics as clinic_repo
from gateway.db.repositories import tokens as token_repo
from gateway.db.tables import AccessTokenRow, ClientRow

CLINIC_SCOPE = "clinic/records.write"


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str
    token_type: str = "Bearer"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the client, the clinic the token is bound to, and the granted scope."""

    client_pk: int
    client_id: str
    kind: str
    clinic_pk: int | None
    clinic_pks: tuple[int, ...]
    scopes: frozenset[str]


def parse_basic_auth(header: str | None) -> tuple[str, str] | None:
    """``Authorization: Basic`` per RFC 6749 §2.3.1 (id and secret are form-urlencoded first)."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError("invalid_client", "malformed Basic credentials", status_code=401) from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise OAuthError("invalid_client", "malformed Basic credentials", status_code=401)
    return unquote_plus(client_id), unquote_plus(secret)


def issue_client_credentials_token(
    session: Session, settings: Settings, *, basic: tuple[str, str] | None, form: dict[str, str]
) -> IssuedToken:
    grant_type = form.get("grant_type")
    if not grant_type:
        raise OAuthError("invalid_request", "grant_type is required")
    if grant_type != "client_credentials":
        raise OAuthError("unsupported_grant_type", f"grant_type {grant_type} is not supported here")
    if "client_secret" in form:
        raise OAuthError(
            "invalid_request", "send client credentials in the Authorization header (client_secret_basic)"
        )
    if basic is None:
        raise OAuthError(
            "invalid_client", "client authentication is required (client_secret_basic)", status_code=401
        )
    client_id, secret = basic
    client = clinic_repo.get_client(session, client_id=client_id)
    if (
        client is None
        or client.disabled
        or client.token_endpoint_auth_method != "client_secret_basic"
        or not credentials.verify_secret(secret, client.secret_hash)
    ):
        raise OAuthError("invalid_client", "client authentication failed", status_code=401)
    scope = _granted_scope(client, form.get("scope"))
    assert client.id is not None
    clinic_pks = clinic_repo.granted_clinic_pks(session, client_pk=client.id)
    if not clinic_pks:
        raise OAuthError("unauthorized_client", "this client is granted no clinic")
    token = credentials.new_token()
    now = datetime.now(UTC)
    lifetime = settings.access_token_lifetime_seconds
    token_repo.add_token(
        session,
        token=AccessTokenRow(
            token_hash=credentials.token_hash(token, settings.token_signing_secret.get_secret_value()),
            client_pk=client.id,
            clinic_pk=clinic_pks[0] if client.kind == "clinic" else None,
            scope=scope,
            issued_at=now,
            expires_at=now + timedelta(seconds=lifetime),
        ),
    )
    session.commit()
    return IssuedToken(access_token=token, expires_in=lifetime, scope=scope)


def _granted_scope(client: ClientRow, requested: str | None) -> str:
    allowed = client.scopes.split()
    if not requested:
        return " ".join(allowed)
    asked = requested.split()
    refused = [s for s in asked if s not in allowed]
    if refused:
        raise OAuthError("invalid_scope", "scope not allowed for this client: " + " ".join(refused))
    return " ".join(asked)


def authenticate_bearer(session: Session, settings: Settings, *, authorization: str | None) -> Principal:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise UnauthorizedError("a bearer token is required", error="invalid_request")
    token = authorization[7:].strip()
    found = token_repo.find_active_token(
        session,
        token_hash=credentials.token_hash(token, settings.token_signing_secret.get_secret_value()),
        now=datetime.now(UTC),
    )
    if found is None:
        raise UnauthorizedError("the bearer token is invalid, expired or revoked")
    row, client = found
    assert client.id is not None
    clinic_pks = tuple(clinic_repo.granted_clinic_pks(session, client_pk=client.id))
    return Principal(
        client_pk=client.id,
        client_id=client.client_id,
        kind=client.kind,
        clinic_pk=row.clinic_pk,
        clinic_pks=clinic_pks,
        scopes=frozenset(row.scope.split()),
    )
