"""Token introspection (RFC 7662, https://www.rfc-editor.org/rfc/rfc7662, with the SMART fields of
https://hl7.org/fhir/smart-app-launch/token-introspection.html; checklist INTRO-1..4).

Who may introspect (RFC 7662 §2.1 requires the caller to be authorized; this is the gateway's rule):

- the caller authenticates as a client, with ``Authorization: Bearer <an active access token>`` (any
  client kind, so backend-services and public clients can introspect without a secret) or with
  ``client_secret_basic``; anything else is 401 ``invalid_client``;
- a client learns about its own tokens only: a token issued to another client is answered exactly like an
  unknown one, ``{"active": false}``, so introspection tells nobody that someone else's token exists;
- admin clients (``kap-gateway clients create --kind admin``) may introspect any token.

Active tokens answer ``active``, ``scope`` (exactly the granted string), ``client_id``, ``token_type``,
``exp``, ``iat``, ``iss``, ``aud`` (the FHIR base), ``sub``, and where the token has them ``patient`` and
``fhirUser``. ``sub`` is the id_token's subject for user tokens and the client id otherwise. Unknown,
expired, revoked or foreign tokens answer exactly ``{"active": false}``.

Failed Basic authentications count toward the token endpoint's throttle (same counters), and the secret
check costs the same whether or not the client exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.auth import credentials, discovery, throttle
from gateway.auth.service import _could_exist as could_exist
from gateway.auth.service import authenticate_client
from gateway.auth.token_request import TokenRequest
from gateway.core.config import Settings
from gateway.core.errors import OAuthError
from gateway.db.engine import Session
from gateway.db.repositories import clinics as clinic_repo
from gateway.db.repositories import tokens as token_repo
from gateway.db.repositories import users as user_repo
from gateway.db.tables import AccessTokenRow, ClientRow

INACTIVE: dict[str, Any] = {"active": False}


@dataclass(frozen=True)
class Caller:
    client_pk: int
    client_id: str
    admin: bool


def _hash(settings: Settings, token: str) -> str:
    return credentials.token_hash(token, settings.token_signing_secret.get_secret_value())


def authenticate_caller(
    session: Session, settings: Settings, *, authorization: str | None, request: TokenRequest
) -> Caller:
    """The client asking (Bearer token or client_secret_basic), or 401 ``invalid_client``."""
    if authorization and authorization.lower().startswith("bearer "):
        found = token_repo.find_active_token(
            session, token_hash=_hash(settings, authorization[7:].strip()), now=datetime.now(UTC)
        )
        session.commit()
        if found is None:
            raise OAuthError(
                "invalid_client", "the bearer token is invalid, expired or revoked", status_code=401
            )
        _, client = found
        return _caller(client)
    if request.basic is None:
        raise OAuthError(
            "invalid_client",
            "authenticate with a Bearer access token or client_secret_basic",
            status_code=401,
        )
    client_id = request.basic[0]
    attempt = throttle.count_attempt(session, settings, client_id=client_id, address=request.address)
    claimed = clinic_repo.get_client(session, client_id=client_id) if could_exist(client_id) else None
    if claimed is not None:
        session.expunge(claimed)
    session.commit()  # no transaction stays open through the password hash
    if attempt.retry_after is not None:
        raise OAuthError(
            "slow_down",
            f"too many failed client authentications; retry after {attempt.retry_after} s",
            status_code=429,
            headers={"Retry-After": str(attempt.retry_after)},
        )
    try:
        authenticated = authenticate_client(claimed, request)
    except OAuthError:
        session.commit()  # the failed attempt stays counted
        raise
    throttle.forgive(session, attempt)
    session.commit()
    return _caller(authenticated)


def _caller(client: ClientRow) -> Caller:
    assert client.id is not None
    return Caller(client_pk=client.id, client_id=client.client_id, admin=client.kind == "admin")


def introspect(session: Session, settings: Settings, *, caller: Caller, token: str | None) -> dict[str, Any]:
    if not token:
        raise OAuthError("invalid_request", "token is required")
    found = token_repo.find_active_token(session, token_hash=_hash(settings, token), now=datetime.now(UTC))
    if found is None:
        return dict(INACTIVE)
    row, client = found
    if client.id != caller.client_pk and not caller.admin:
        return dict(INACTIVE)
    return _active(session, settings, row, client)


def _active(session: Session, settings: Settings, row: AccessTokenRow, client: ClientRow) -> dict[str, Any]:
    context = row.context or {}
    body: dict[str, Any] = {
        "active": True,
        "scope": row.scope,
        "client_id": client.client_id,
        "token_type": "Bearer",
        "exp": int(row.expires_at.timestamp()),
        "iat": int(row.issued_at.timestamp()),
        "iss": discovery.issuer(settings),
        "aud": settings.fhir_base_url,
        "sub": _subject(session, context) or client.client_id,
    }
    if isinstance(context.get("patient"), str):
        body["patient"] = context["patient"]
    if isinstance(context.get("encounter"), str):
        body["encounter"] = context["encounter"]
    if isinstance(context.get("fhirUser"), str):
        body["fhirUser"] = context["fhirUser"]
    return body


def _subject(session: Session, context: dict[str, Any]) -> str | None:
    """The id_token ``sub`` of the user a launch token acts for (``user-<pk>``, as the launch grant signs it)."""
    if isinstance(context.get("sub"), str):
        return str(context["sub"])
    username = context.get("user")
    if not isinstance(username, str):
        return None
    user = user_repo.get_user(session, username=username)
    return f"user-{user.id}" if user is not None else None
