"""Creating clinics and OAuth clients (used by the CLI and the demo loader)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from gateway.auth import credentials
from gateway.auth.service import CLINIC_SCOPE
from gateway.core.errors import ConflictError, GatewayError, NotFoundError
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
    clinic = clinic_repo.get_clinic(session, slug=clinic_slug)
    if clinic is None or clinic.id is None:
        raise NotFoundError(f"clinic {clinic_slug} is not known")
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
    clinic_repo.add_client(session, client=client, clinic_pks=[clinic.id])
    session.commit()
    return NewClient(client_id=client.client_id, client_secret=secret)
