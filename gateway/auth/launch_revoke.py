"""Token revocation, RFC 7009 (https://www.rfc-editor.org/rfc/rfc7009).

The client authenticates as at the token endpoint (``gateway.auth.service.authenticate_client``, throttled
the same way). A client may revoke only its own tokens; an unknown token, or another client's, changes
nothing and still answers 200 (§2.2: "invalid tokens do not cause an error"). Revoking a refresh token, or
an access token issued under an app grant, ends the grant: every token issued under it stops working
(§2.1 "SHOULD"), which is what a patient or clinician withdrawing an app's access expects.
"""

from __future__ import annotations

from gateway.auth import credentials, service, throttle
from gateway.auth.launch_token import refresh_hash
from gateway.auth.token_request import TokenRequest
from gateway.core.config import Settings
from gateway.core.errors import OAuthError
from gateway.db.engine import Session
from gateway.db.repositories import launch as launch_repo

MAX_TOKEN = 512


def revoke(session: Session, settings: Settings, *, request: TokenRequest) -> None:
    token = request.form.get("token")
    if not token:
        raise OAuthError("invalid_request", "token is required")
    hint = request.form.get("token_type_hint")
    if hint is not None and hint not in ("access_token", "refresh_token"):
        raise OAuthError("unsupported_token_type", "token_type_hint: access_token or refresh_token")
    client_id = service.claimed_client_id(request)
    if client_id is None:
        raise OAuthError("invalid_client", "client authentication is required", status_code=401)
    client, attempt = service.counted_client(session, settings, client_id=client_id, address=request.address)
    try:
        authenticated = service.authenticate(session, settings, client, request)
    except OAuthError:
        session.commit()  # the failed attempt stays counted
        raise
    throttle.forgive(session, attempt)
    if len(token) <= MAX_TOKEN:
        _revoke_owned(session, settings, client_pk=authenticated.id, token=token)
    session.commit()


def _revoke_owned(session: Session, settings: Settings, *, client_pk: int | None, token: str) -> None:
    refresh = launch_repo.get_refresh_token(session, token_hash=refresh_hash(settings, token))
    if refresh is not None and refresh.client_pk == client_pk:
        launch_repo.revoke_grant(session, code_pk=refresh.code_pk)
        return
    pepper = settings.token_signing_secret.get_secret_value()
    access = launch_repo.get_access_token(session, token_hash=credentials.token_hash(token, pepper))
    if access is None or access.client_pk != client_pk or access.id is None:
        return
    grant = launch_repo.grant_of_access_token(session, access_token_pk=access.id)
    if grant is not None:
        launch_repo.revoke_grant(session, code_pk=grant)
    else:
        launch_repo.revoke_access_token(session, pk=access.id)
