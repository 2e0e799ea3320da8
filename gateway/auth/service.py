"""The token endpoint (RFC 6749 §3.2, §4.4 client credentials) and bearer-token checks (RFC 6750).

``issue_token`` is the one entry point of ``POST /auth/token`` for every grant type:

1. the grant type is looked up in ``GRANT_TYPES`` (``unsupported_grant_type`` otherwise);
2. the attempt is counted against the client id it claims and the caller's address
   (``gateway.auth.throttle``; 429 past a limit) and the claimed client is loaded, in one short
   transaction that is committed before any slow work;
3. the client authenticates (``authenticate_client``: ``client_secret_basic``; ``private_key_jwt``
   assertions in ``gateway.auth.assertion``, which commits the assertion's jti as used; scrypt costs the
   same whether or not the client id exists, so ids cannot be enumerated by timing);
4. the grant's handler checks the grant and adds the token (it flushes, never commits);
5. the attempt is forgiven unless the request failed with one of ``FAILED_AUTHENTICATION``; commit.

A new grant type is one handler in ``GRANT_TYPES``; a new client authentication method is a branch of
``authenticate_client`` (and of ``claimed_client_id`` where the id travels elsewhere, e.g. in a
``client_assertion``). Throttling and error handling then apply to it as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.auth import credentials, launch_token, throttle
from gateway.auth.assertion import authenticate_assertion
from gateway.auth.scopes import scope_within
from gateway.auth.token_request import TokenRequest
from gateway.core.config import Settings
from gateway.core.errors import OAuthError, UnauthorizedError
from gateway.db.engine import Session
from gateway.db.repositories import clinics as clinic_repo
from gateway.db.repositories import tokens as token_repo
from gateway.db.tables import AccessTokenRow, ClientRow

CLINIC_SCOPE = "clinic/records.write"
#: OAuth errors that count as a failed authentication for the throttle (a wrong secret or assertion,
#: a guessed code or refresh token); any other outcome takes the attempt back
FAILED_AUTHENTICATION = frozenset({"invalid_client", "invalid_grant"})
#: the throttle's client key for assertions that name no issuer (they fail; the address limit counts them)
UNNAMED_ASSERTION_CLIENT = "\x00unnamed-assertion"


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str
    token_type: str = "Bearer"
    #: further response members of a grant (refresh_token, id_token, SMART launch context ...)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def response(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
            "scope": self.scope,
            **self.extra,
        }


@dataclass(frozen=True)
class Principal:
    """Who is calling: the client, the clinic the token is bound to, and the granted scope."""

    client_pk: int
    client_id: str
    kind: str
    clinic_pk: int | None
    clinic_pks: tuple[int, ...]
    scopes: frozenset[str]
    #: FHIR id of the launch patient (patient-context tokens); None otherwise
    patient_id: str | None = None
    #: the user's FHIR resource URL (fhirUser), when the token acts for a user
    fhir_user: str | None = None


#: (session, settings, authenticated client, request) -> the token; flushes, never commits
GrantHandler = Callable[[Session, Settings, ClientRow, TokenRequest], IssuedToken]


def issue_token(session: Session, settings: Settings, *, request: TokenRequest) -> IssuedToken:
    grant = _grant_handler(request)
    client_id = claimed_client_id(request)
    if client_id is None and request.grant_type == "refresh_token":
        # RFC 6749 §6: a public client refreshes without authenticating; its refresh token names it
        request = launch_token.naming_public_client(session, settings, request)
        client_id = claimed_client_id(request)
    if client_id is None:
        raise OAuthError(
            "invalid_client", "client authentication is required (client_secret_basic)", status_code=401
        )
    client, attempt = counted_client(session, settings, client_id=client_id, address=request.address)
    try:
        authenticated = authenticate(session, settings, client, request)
        issued = grant(session, settings, authenticated, request)
    except OAuthError as error:
        session.rollback()
        if error.error not in FAILED_AUTHENTICATION:
            throttle.forgive(session, attempt)
            session.commit()
        raise
    throttle.forgive(session, attempt)
    session.commit()
    return issued


def counted_client(
    session: Session, settings: Settings, *, client_id: str, address: str
) -> tuple[ClientRow | None, throttle.Attempt]:
    """Step 2: the attempt counted against the claimed client id and the address, and the claimed client
    loaded (None if unknown), in one short transaction committed before any slow work; 429 past a limit.
    Used by every endpoint that authenticates clients (token, revoke)."""
    attempt = throttle.count_attempt(session, settings, client_id=client_id, address=address)
    client = None
    if attempt.retry_after is None and _could_exist(client_id):
        client = clinic_repo.get_client(session, client_id=client_id)
        if client is not None:
            session.expunge(client)  # loaded as is: nothing reloads it (and opens a transaction) later
    session.commit()  # no transaction stays open through the password hash
    if attempt.retry_after is not None:
        raise OAuthError(
            "slow_down",
            f"too many failed client authentications; retry after {attempt.retry_after} s",
            status_code=429,
            headers={"Retry-After": str(attempt.retry_after)},
        )
    return client, attempt


def authenticate(
    session: Session, settings: Settings, client: ClientRow | None, request: TokenRequest
) -> ClientRow:
    """Step 3: the client authentication the request uses (an assertion, Basic, or a public client's id)."""
    if request.assertion is not None:
        return authenticate_assertion(session, settings, client, request)
    return authenticate_client(client, request)


def _grant_handler(request: TokenRequest) -> GrantHandler:
    if not request.grant_type:
        raise OAuthError("invalid_request", "grant_type is required")
    handler = GRANT_TYPES.get(request.grant_type)
    if handler is None:
        raise OAuthError(
            "unsupported_grant_type",
            f"grant_type {request.grant_type} is not supported (supported: {', '.join(GRANT_TYPES)})",
        )
    if "client_secret" in request.form:
        raise OAuthError(
            "invalid_request", "send client credentials in the Authorization header (client_secret_basic)"
        )
    return handler


def _could_exist(client_id: str) -> bool:
    """Whether the id can name a client at all (ids are printable; PostgreSQL text cannot hold NUL)."""
    return len(client_id) <= 255 and all(" " <= ch != "\x7f" for ch in client_id)


def claimed_client_id(request: TokenRequest) -> str | None:
    """The client id the request claims, before anything is checked (the throttle's key)."""
    if request.assertion is not None:  # private_key_jwt: the assertion's (unverified) iss
        if request.basic is not None:
            raise OAuthError(
                "invalid_request", "use one client authentication method, not Basic and an assertion"
            )
        return request.assertion.issuer or request.form.get("client_id") or UNNAMED_ASSERTION_CLIENT
    if request.basic is not None:
        basic_id = request.basic[0]
        if request.form.get("client_id", basic_id) != basic_id:
            raise OAuthError("invalid_request", "client_id differs from the authenticated client")
        return basic_id
    if "client_assertion" not in request.form:
        return request.form.get("client_id")  # a public client (SMART client-public) names itself
    return None


def authenticate_client(client: ClientRow | None, request: TokenRequest) -> ClientRow:
    """RFC 6749 §2.3: the one client authentication the request uses, or ``invalid_client``."""
    if request.basic is not None:
        usable = (
            client is not None
            and not client.disabled
            and client.token_endpoint_auth_method == "client_secret_basic"
            and bool(client.secret_hash)
        )
        # unknown, disabled or secret-less clients pay the same scrypt as a wrong secret
        stored = client.secret_hash if usable and client is not None else credentials.DUMMY_SECRET_HASH
        if credentials.verify_secret(request.basic[1], stored) and usable and client is not None:
            return client
    elif "client_id" in request.form and "client_assertion" not in request.form:
        # RFC 6749 §2.1 public clients (SMART App Launch client-public): no secret, PKCE guards the code;
        # never for client_credentials
        if (
            client is not None
            and not client.disabled
            and client.token_endpoint_auth_method == "none"
            and request.grant_type != "client_credentials"
        ):
            return client
        raise OAuthError("invalid_client", "client authentication failed")
    raise OAuthError("invalid_client", "client authentication failed", status_code=401)


def grant_client_credentials(
    session: Session, settings: Settings, client: ClientRow, request: TokenRequest
) -> IssuedToken:
    """RFC 6749 §4.4: a token for the client itself, bound to its clinic (clinic clients)."""
    if client.kind == "app":
        raise OAuthError("unauthorized_client", "app clients get tokens through authorization_code")
    scope = _granted_scope(client, request.form.get("scope"))
    assert client.id is not None
    clinic_pks = clinic_repo.granted_clinic_pks(session, client_pk=client.id)
    if not clinic_pks and client.kind != "admin":  # admin clients read the audit trail, no clinic data
        raise OAuthError("unauthorized_client", "this client is granted no clinic")
    token = credentials.new_token()
    now = datetime.now(UTC)
    lifetime = (
        settings.backend_token_lifetime_seconds
        if client.kind == "ehr"
        else settings.access_token_lifetime_seconds
    )
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
    return IssuedToken(access_token=token, expires_in=lifetime, scope=scope)


GRANT_TYPES: dict[str, GrantHandler] = {
    "client_credentials": grant_client_credentials,
    "authorization_code": launch_token.grant_authorization_code,
    "refresh_token": launch_token.grant_refresh_token,
}


def _granted_scope(client: ClientRow, requested: str | None) -> str:
    allowed = client.scopes.split()
    if requested is None:
        return " ".join(allowed)
    tokens = requested.split(" ")  # RFC 6749 §3.3: scope-tokens separated by single spaces
    if "" in tokens:
        raise OAuthError("invalid_scope", "scope: tokens are separated by single spaces")
    asked = list(dict.fromkeys(tokens))
    refused = [s for s in asked if not scope_within(s, allowed)]  # SMART: within the ceiling
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
        # launch context (``AccessTokenRow.context``): {"patient": FHIR id, "fhirUser": URL, ...}
        patient_id=(row.context or {}).get("patient"),
        fhir_user=(row.context or {}).get("fhirUser"),
    )
