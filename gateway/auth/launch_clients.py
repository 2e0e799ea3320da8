"""Registering SMART apps (``kap-gateway clients create --kind app``).

An app is granted one clinic; its users must belong to that clinic. Client types (SMART App Launch
"Client Authentication"): public (``--public``: no secret, PKCE only, ``token_endpoint_auth_method``
``none``), confidential-symmetric (a generated secret, ``client_secret_basic``) and confidential-asymmetric
(``--jwks-file``: ``private_key_jwt`` with the app's public keys). ``--launch-url`` registers the URL an
EHR launch opens (SMART "EHR launch").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from gateway.auth import credentials, known_clinics
from gateway.auth.assertion import public_jwks
from gateway.auth.scopes import is_malformed_resource_scope
from gateway.core.errors import GatewayError
from gateway.db.engine import Session
from gateway.db.repositories import clinics as clinic_repo
from gateway.db.tables import ClientRow, utcnow

DEFAULT_APP_SCOPE = "launch/patient patient/*.rs openid fhirUser offline_access"
#: hosts an app's redirect URI may name over plain http (native and development apps)
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


class InvalidAppError(GatewayError):
    status_code = 422


@dataclass(frozen=True)
class NewApp:
    client_id: str
    client_secret: str | None
    token_endpoint_auth_method: str


def check_redirect_uri(uri: str, what: str = "redirect URI") -> str:
    """RFC 6749 §3.1.2: absolute, no fragment; https, or http on a loopback host (also launch URLs)."""
    parts = urlsplit(uri)
    if parts.fragment or not parts.netloc or parts.scheme not in ("https", "http") or " " in uri:
        raise InvalidAppError(f"{what} {uri!r}: an absolute https URL without a fragment")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK:
        raise InvalidAppError(f"{what} {uri!r}: http only for localhost, otherwise https")
    if len(uri) > 2000:
        raise InvalidAppError(f"{what}: at most 2000 characters")
    return uri


def create_app_client(
    session: Session,
    *,
    clinic_slug: str,
    name: str,
    redirect_uris: Sequence[str],
    scope: str = DEFAULT_APP_SCOPE,
    public: bool = False,
    jwks: dict[str, Any] | None = None,
    launch_url: str | None = None,
) -> NewApp:
    """Registers an app for one clinic; returns its id and (confidential-symmetric apps) its secret. With
    ``launch_url`` the app can be EHR-launched (``kap-gateway launch create``) and ask the ``launch``
    scope. Commits."""
    if not name.strip() or len(name) > 200:
        raise InvalidAppError("client name: 1 to 200 characters")
    if not redirect_uris:
        raise InvalidAppError("an app needs at least one --redirect-uri")
    uris = [check_redirect_uri(uri) for uri in dict.fromkeys(redirect_uris)]
    if len(" ".join(uris)) > 2000:
        raise InvalidAppError("redirect URIs: at most 2000 characters together")
    if launch_url is not None:
        check_redirect_uri(launch_url, "launch URL")
    scopes = scope.split()
    if not scopes or any(is_malformed_resource_scope(s) for s in scopes):
        raise InvalidAppError(f"scope {scope!r}: space-separated SMART scopes")
    if public and jwks is not None:
        raise InvalidAppError("a public app has no keys: give --public or --jwks-file, not both")
    if jwks is not None:
        try:
            jwks = public_jwks(jwks)  # the same checks as for EHR clients (RS384/ES384 public keys, kids)
        except ValueError as error:
            raise InvalidAppError(f"JWK Set: {error}") from None
    clinic_pk = known_clinics.clinic_pk(session, clinic_slug)
    secret = None if public or jwks is not None else credentials.new_secret()
    method = "none" if public else ("private_key_jwt" if jwks is not None else "client_secret_basic")
    client = ClientRow(
        client_id=credentials.new_client_id(),
        kind="app",
        name=name,
        token_endpoint_auth_method=method,
        secret_hash=credentials.hash_secret(secret) if secret is not None else None,
        jwks=jwks,
        scopes=" ".join(dict.fromkeys(scopes)),
        redirect_uris=" ".join(uris),
        launch_url=launch_url,
        created_at=utcnow(),
    )
    clinic_repo.add_client(session, client=client, clinic_pks=[clinic_pk])
    session.commit()
    return NewApp(client_id=client.client_id, client_secret=secret, token_endpoint_auth_method=method)
