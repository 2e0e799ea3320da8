"""Creating clinics and OAuth clients (used by the CLI and the demo loader)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from gateway.auth import credentials, known_clinics
from gateway.auth.assertion import METHOD, public_jwks
from gateway.auth.scopes import parse_scope
from gateway.auth.service import CLINIC_SCOPE
from gateway.core.errors import ConflictError, GatewayError
from gateway.db.engine import Session
from gateway.db.repositories import clinics as clinic_repo
from gateway.db.tables import ClientRow, ClinicRow, utcnow

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
NAME_MAX = 200


class InvalidNameError(GatewayError):
    """A clinic slug or a clinic or client name that cannot be used."""

    status_code = 422


def _check_name(name: str, what: str) -> None:
    if not name.strip() or len(name) > NAME_MAX:
        raise InvalidNameError(f"{what} name: 1 to {NAME_MAX} characters")


@dataclass(frozen=True)
class NewClient:
    client_id: str
    client_secret: str


def create_clinic(session: Session, *, slug: str, name: str) -> ClinicRow:
    if not SLUG.fullmatch(slug):
        raise InvalidNameError(
            f"slug {slug!r}: lowercase letters, digits and '-', 1-63 characters, not starting with '-'"
        )
    _check_name(name, "clinic")
    if clinic_repo.get_clinic(session, slug=slug) is not None:
        raise ConflictError(f"clinic {slug} exists")
    row = clinic_repo.add_clinic(session, slug=slug, name=name)
    session.commit()
    return row


def create_clinic_client(session: Session, *, clinic_slug: str, name: str) -> NewClient:
    _check_name(name, "client")
    clinic_pk = known_clinics.clinic_pk(session, clinic_slug)
    secret = credentials.new_secret()
    client = ClientRow(
        client_id=credentials.new_client_id(),
        kind="clinic",
        name=name,
        token_endpoint_auth_method="client_secret_basic",
        secret_hash=credentials.hash_secret(secret),
        scopes=CLINIC_SCOPE,
        created_at=utcnow(),
    )
    clinic_repo.add_client(session, client=client, clinic_pks=[clinic_pk])
    session.commit()
    return NewClient(client_id=client.client_id, client_secret=secret)


#: what an EHR client may ask for unless told otherwise (SMART Backend Services, v2 read + search)
DEFAULT_EHR_SCOPE = "system/*.rs"
#: admin clients read the audit trail (and may introspect any token)
ADMIN_SCOPE = "admin/audit.read"


@dataclass(frozen=True)
class NewKeyClient:
    client_id: str


def _check_jwks_uri(uri: str) -> str:
    parts = urlsplit(uri)
    loopback = parts.scheme == "http" and parts.hostname in {"localhost", "127.0.0.1", "::1"}
    if not (parts.scheme == "https" or loopback) or not parts.hostname or len(uri) > 500:
        raise InvalidRegistrationError(
            "--jwks-url: an https URL (http only for localhost), at most 500 characters"
        )
    if parts.username or parts.password or parts.fragment:
        raise InvalidRegistrationError("--jwks-url: no credentials and no fragment in the URL")
    return uri


def _check_system_scopes(scopes: str) -> str:
    tokens = scopes.split()
    if not tokens:
        raise InvalidRegistrationError("--scope: at least one system/ scope, e.g. system/*.rs")
    for token in tokens:
        parsed = parse_scope(token)
        if parsed is None or parsed.context != "system":
            raise InvalidRegistrationError(
                f"--scope {token}: backend services clients get system/ resource scopes "
                "(v2 system/Type.rs or v1 system/Type.read)"
            )
    return " ".join(dict.fromkeys(tokens))


class InvalidRegistrationError(GatewayError):
    """A client registration that cannot be used (keys, URL, scopes)."""

    status_code = 422


def create_ehr_client(
    session: Session,
    *,
    name: str,
    clinic_slugs: Sequence[str],
    jwks: Any = None,
    jwks_uri: str | None = None,
    scopes: str = DEFAULT_EHR_SCOPE,
) -> NewKeyClient:
    """An EHR (SMART Backend Services) client: ``private_key_jwt`` with an inline JWKS or a JWKS URL,
    ``system/`` scopes as its ceiling, granted one or more clinics. Nothing is written on bad input."""
    _check_name(name, "client")
    if (jwks is None) == (jwks_uri is None):
        raise InvalidRegistrationError("give exactly one of a JWKS (--jwks-file) and a JWKS URL (--jwks-url)")
    try:
        registered_jwks = public_jwks(jwks) if jwks is not None else None
    except ValueError as error:
        raise InvalidRegistrationError(f"--jwks-file: {error}") from None
    uri = _check_jwks_uri(jwks_uri) if jwks_uri is not None else None
    scope = _check_system_scopes(scopes)
    if not clinic_slugs:
        raise InvalidRegistrationError("--clinic: grant the client at least one clinic")
    clinic_pks = known_clinics.clinic_pks(session, clinic_slugs)
    client = ClientRow(
        client_id=credentials.new_client_id(),
        kind="ehr",
        name=name,
        token_endpoint_auth_method=METHOD,
        jwks=registered_jwks,
        jwks_uri=uri,
        scopes=scope,
        created_at=utcnow(),
    )
    clinic_repo.add_client(session, client=client, clinic_pks=clinic_pks)
    session.commit()
    return NewKeyClient(client_id=client.client_id)


def create_admin_client(session: Session, *, name: str) -> NewClient:
    """An admin client (client_secret_basic, scope ``admin/audit.read``): reads the audit trail; no clinic."""
    _check_name(name, "client")
    secret = credentials.new_secret()
    client = ClientRow(
        client_id=credentials.new_client_id(),
        kind="admin",
        name=name,
        token_endpoint_auth_method="client_secret_basic",
        secret_hash=credentials.hash_secret(secret),
        scopes=ADMIN_SCOPE,
        created_at=utcnow(),
    )
    clinic_repo.add_client(session, client=client, clinic_pks=[])
    session.commit()
    return NewClient(client_id=client.client_id, client_secret=secret)
