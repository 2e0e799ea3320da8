"""Token introspection (RFC 7662, https://www.rfc-editor.org/rfc/rfc7662, with the SMART fields of
https://hl7.org/fhir/smart-app-launch/token-introspection.html; checklist INTRO-1..4).

Who may introspect (RFC 7662 §2.1 requires the caller to be authorized; this is the gateway's rule):

- the caller authenticates as a client (INTRO-4), with ``Authorization: Bearer <an active access token>``
  (any client kind: a token's introspection rights are over its own client's tokens, so backend-services
  and public clients can introspect without a secret), with ``client_secret_basic`` (confidential-symmetric
  clients) or with a ``private_key_jwt`` client assertion (``client_assertion_type`` +
  ``client_assertion``, verified as at the token endpoint; ``aud`` the token or the introspection
  endpoint URL, the jti spent); anything else is 401 ``invalid_client``;
- a client learns about its own tokens only: a token issued to another client is answered exactly like an
  unknown one, ``{"active": false}``, so introspection tells nobody that someone else's token exists;
- admin clients (``kap-gateway clients create --kind admin``) may introspect any token.

Active tokens answer ``active``, ``scope`` (exactly the granted string), ``client_id``, ``token_type``,
``exp``, ``iat``, ``iss``, ``aud`` (the FHIR base), ``sub``, and where the token has them ``patient`` and
``fhirUser``. ``sub`` is the id_token's subject for user tokens and the client id otherwise. Unknown,
expired, revoked or foreign tokens answer exactly ``{"active": false}``.

Failed Basic and assertion authentications count toward the token endpoint's throttle (same counters),
and a check costs the same whether or not the client exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.auth import credentials, discovery, throttle
from gateway.auth.assertion import authenticate_assertion
from gateway.auth.service import authenticate_client, claimed_client_id, counted_client
from gateway.auth.token_request import TokenRequest
from gateway.core.config import Settings
from gateway.core.errors import OAuthError
from gateway.db.engine import Session
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
    """The client asking (INTRO-4: Bearer token, client_secret_basic or private_key_jwt), or 401
    ``invalid_client`` (RFC 7662 §2.1 / RFC 6749 §5.2)."""
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
    try:
        assertion = request.assertion
        client_id = claimed_client_id(request) if assertion is not None or request.basic is not None else None
    except OAuthError as error:
        raise _unauthorized(error) from None
    if client_id is None:
        raise OAuthError(
            "invalid_client",
            "authenticate with a Bearer access token, client_secret_basic or private_key_jwt",
            status_code=401,
        )
    claimed, attempt = counted_client(session, settings, client_id=client_id, address=request.address)
    try:
        if assertion is not None:
            authenticated = authenticate_assertion(
                session, settings, claimed, request, audiences=assertion_audiences(settings)
            )
        else:
            authenticated = authenticate_client(claimed, request)
    except OAuthError as error:
        session.rollback()  # the attempt stays counted: counted_client committed it
        raise _unauthorized(error) from None
    throttle.forgive(session, attempt)
    session.commit()
    return _caller(authenticated)


def assertion_audiences(settings: Settings) -> tuple[str, ...]:
    """The ``aud`` a client assertion may name here: the token endpoint (as at /auth/token) or this one."""
    return (discovery.token_url(settings), discovery.auth_url(settings, "introspect"))


def _unauthorized(error: OAuthError) -> OAuthError:
    """A failed client authentication at the introspection endpoint is 401 (RFC 7662 §2.1); a malformed
    request (two authentication methods at once) stays 400 ``invalid_request``."""
    if error.error != "invalid_client":
        return error
    return OAuthError("invalid_client", error.description, status_code=401, headers=error.headers)


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
