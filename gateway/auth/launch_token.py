"""SMART App Launch at the token endpoint: the ``authorization_code`` and ``refresh_token`` grants.

Specs: RFC 6749 §4.1.3 and §6 (https://www.rfc-editor.org/rfc/rfc6749), PKCE RFC 7636 §4.6 (S256 only),
SMART App Launch 2.x "Obtain access token" and "Refresh access token"
(https://hl7.org/fhir/smart-app-launch/app-launch.html); OpenID Connect Core §2 for the id_token;
checklist TOK-1..7, REF-1..2, OIDC-1.

- A code is single use, short-lived and bound to the client, the ``redirect_uri`` and the PKCE challenge.
  A second use of a code revokes everything the first use issued (RFC 6749 §4.1.2, "SHOULD revoke").
- The access token is bound to the app's clinic; with a patient context its launch context names the
  patient, and ``Principal.patient_id`` limits /fhir to that patient.
- ``id_token`` (RS256, gateway key from ``launch_keys``) when ``openid`` is granted; ``fhirUser`` in it when
  ``fhirUser`` is granted and the user has a FHIR resource.
- the launch context: ``patient`` with ``need_patient_banner`` and ``smart_style_url`` (TOK-3), and after
  an EHR launch its ``encounter`` and ``fhirContext`` (TOK-2).
- ``refresh_token`` only when ``offline_access`` or ``online_access`` is granted. It is rotated on use; a
  rotated token used again ends the whole grant (reuse detection).

Handlers follow ``gateway.auth.service.GrantHandler``: they flush, never commit, except that a detected
reuse commits the revocation before it raises (the service rolls back on errors).
"""

from __future__ import annotations

import dataclasses
import hmac
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc7636 import create_s256_code_challenge

from gateway.auth import credentials, launch_keys
from gateway.auth.discovery import issuer, smart_style_url
from gateway.auth.ehr_launch import fhir_context_items
from gateway.auth.launch import CODE_VERIFIER, code_hash
from gateway.auth.token_request import TokenRequest
from gateway.core.config import Settings
from gateway.core.errors import OAuthError
from gateway.db.engine import Session
from gateway.db.repositories import launch as launch_repo
from gateway.db.repositories import tokens as token_repo
from gateway.db.repositories import users as user_repo
from gateway.db.tables import AccessTokenRow, AuthorizationCodeRow, ClientRow, RefreshTokenRow

if TYPE_CHECKING:
    from gateway.auth.service import IssuedToken

REFRESH_SCOPES = ("offline_access", "online_access")


def grant_authorization_code(
    session: Session, settings: Settings, client: ClientRow, request: TokenRequest
) -> IssuedToken:
    form = request.form
    code = form.get("code")
    if not code:
        raise OAuthError("invalid_request", "code is required")
    row = launch_repo.get_code(session, code_hash=code_hash(settings, code)) if len(code) <= 256 else None
    now = datetime.now(UTC)
    if row is None or row.client_pk != client.id:
        raise OAuthError("invalid_grant", "the authorization code is unknown or was issued to another client")
    assert row.id is not None
    if row.used_at is not None or row.revoked:
        _end_grant(session, row.id)
        raise OAuthError("invalid_grant", "the authorization code was already used; its tokens are revoked")
    if row.expires_at <= now:
        raise OAuthError("invalid_grant", "the authorization code has expired")
    if form.get("redirect_uri") != row.redirect_uri:
        raise OAuthError("invalid_grant", "redirect_uri differs from the one of the authorization request")
    verifier = form.get("code_verifier")
    if not verifier or not CODE_VERIFIER.fullmatch(verifier):
        raise OAuthError("invalid_grant", "code_verifier is required (43-128 unreserved characters)")
    if not hmac.compare_digest(create_s256_code_challenge(verifier), row.code_challenge):
        raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge (S256)")
    if not launch_repo.mark_code_used(session, code_pk=row.id, now=now):
        _end_grant(session, row.id)
        raise OAuthError("invalid_grant", "the authorization code was already used; its tokens are revoked")
    return _issue(session, settings, client, row, scope=row.scope, with_id_token=True)


def grant_refresh_token(
    session: Session, settings: Settings, client: ClientRow, request: TokenRequest
) -> IssuedToken:
    token = request.form.get("refresh_token")
    if not token:
        raise OAuthError("invalid_request", "refresh_token is required")
    row = launch_repo.get_refresh_token(session, token_hash=_refresh_hash(settings, token))
    now = datetime.now(UTC)
    if row is None or row.client_pk != client.id:
        raise OAuthError("invalid_grant", "the refresh token is unknown or was issued to another client")
    assert row.id is not None
    grant = launch_repo.get_code_by_pk(session, pk=row.code_pk)
    if row.revoked or grant is None or grant.revoked:
        raise OAuthError("invalid_grant", "the refresh token was revoked")
    if row.replaced:
        _end_grant(session, row.code_pk)
        raise OAuthError("invalid_grant", "the refresh token was already used; the grant is revoked")
    if row.expires_at <= now:
        raise OAuthError("invalid_grant", "the refresh token has expired")
    scope = row.scope
    if "scope" in request.form:
        asked = list(dict.fromkeys(request.form["scope"].split(" ")))
        beyond = [s for s in asked if s not in row.scope.split()]
        if "" in asked or beyond:
            raise OAuthError(
                "invalid_scope", "a refresh may only narrow the original scope: " + " ".join(beyond)
            )
        scope = " ".join(asked)
    if not launch_repo.mark_refresh_replaced(session, pk=row.id):
        _end_grant(session, row.code_pk)
        raise OAuthError("invalid_grant", "the refresh token was already used; the grant is revoked")
    return _issue(session, settings, client, grant, scope=scope, with_id_token=False, refresh_scope=row.scope)


def naming_public_client(session: Session, settings: Settings, request: TokenRequest) -> TokenRequest:
    """A refresh request without client authentication, with ``client_id`` added when its refresh token
    belongs to a public client (RFC 6749 §6: only confidential clients must authenticate to refresh)."""
    token = request.form.get("refresh_token")
    row = launch_repo.get_refresh_token(session, token_hash=_refresh_hash(settings, token)) if token else None
    client = launch_repo.get_client_by_pk(session, pk=row.client_pk) if row is not None else None
    if client is None or client.token_endpoint_auth_method != "none":
        return request
    return dataclasses.replace(request, form={**request.form, "client_id": client.client_id})


def _issue(
    session: Session,
    settings: Settings,
    client: ClientRow,
    grant: AuthorizationCodeRow,
    *,
    scope: str,
    with_id_token: bool,
    refresh_scope: str | None = None,
) -> IssuedToken:
    from gateway.auth.service import IssuedToken

    assert client.id is not None and grant.id is not None
    user = user_repo.get_user_by_pk(session, pk=grant.user_pk)
    if user is None or user.disabled:
        raise OAuthError("invalid_grant", "the user who authorized this grant is no longer enabled")
    scopes = scope.split()
    fhir_user = f"{settings.fhir_base_url}/{user.fhir_user}" if user.fhir_user else None
    launch_context = grant.launch_context or {}
    context: dict[str, Any] = {"user": user.username}
    if grant.patient_id is not None:
        context["patient"] = grant.patient_id
    if isinstance(launch_context.get("encounter"), str):
        context["encounter"] = launch_context["encounter"]
    if fhir_user is not None and ("fhirUser" in scopes or "openid" in scopes):
        context["fhirUser"] = fhir_user
    now = datetime.now(UTC)
    lifetime = settings.access_token_lifetime_seconds
    access_token = credentials.new_token()
    row = token_repo.add_token(
        session,
        token=AccessTokenRow(
            token_hash=credentials.token_hash(access_token, settings.token_signing_secret.get_secret_value()),
            client_pk=client.id,
            clinic_pk=grant.clinic_pk,
            scope=scope,
            context=context,
            issued_at=now,
            expires_at=now + timedelta(seconds=lifetime),
        ),
    )
    assert row.id is not None
    launch_repo.link_token(session, code_pk=grant.id, access_token_pk=row.id)
    extra: dict[str, Any] = {}
    if grant.patient_id is not None:
        extra["patient"] = grant.patient_id
        if "encounter" in context:
            extra["encounter"] = context["encounter"]
        if launch_context.get("fhirContext"):
            extra["fhirContext"] = fhir_context_items(launch_context["fhirContext"])
        # the gateway shows no patient banner around the app (context-banner) and styles none (context-style)
        extra["need_patient_banner"] = True
        extra["smart_style_url"] = smart_style_url(settings)
    if any(s in REFRESH_SCOPES for s in (refresh_scope or scope).split()):
        refresh = credentials.new_token()
        launch_repo.add_refresh_token(
            session,
            token=RefreshTokenRow(
                token_hash=_refresh_hash(settings, refresh),
                code_pk=grant.id,
                client_pk=client.id,
                scope=refresh_scope or scope,
                issued_at=now,
                expires_at=now + timedelta(seconds=settings.refresh_token_lifetime_seconds),
            ),
        )
        extra["refresh_token"] = refresh
    if with_id_token and "openid" in scopes:
        claims: dict[str, Any] = {
            "iss": issuer(settings),
            "sub": f"user-{user.id}",
            "aud": client.client_id,
            "iat": int(now.timestamp()),
            "exp": int(now.timestamp()) + lifetime,
            "auth_time": int(grant.created_at.timestamp()),
        }
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        if "fhirUser" in scopes and fhir_user is not None:
            claims["fhirUser"] = fhir_user
        if "profile" in scopes:
            claims["name"] = user.display_name
        extra["id_token"] = launch_keys.sign_id_token(session, settings, claims)
    return IssuedToken(access_token=access_token, expires_in=lifetime, scope=scope, extra=extra)


def _refresh_hash(settings: Settings, token: str) -> str:
    return credentials.token_hash("refresh:" + token, settings.token_signing_secret.get_secret_value())


def refresh_hash(settings: Settings, token: str) -> str:
    return _refresh_hash(settings, token)


def _end_grant(session: Session, code_pk: int) -> None:
    """Revokes the grant and commits at once: the token endpoint rolls back when the handler raises."""
    session.rollback()
    launch_repo.revoke_grant(session, code_pk=code_pk)
    session.commit()
