"""Clinician users: created by ``kap-gateway users create``, signed in at /auth/login (SMART App Launch).

Passwords are salted scrypt hashes (``gateway.auth.credentials``, as client secrets are). A user belongs to
one or more clinics and authorizes apps of those clinics only. A user linked to a practitioner record
(``--practitioner <external id>``) gets that Practitioner as ``fhirUser`` in id_tokens.
"""

from __future__ import annotations

import re

from gateway.auth import credentials, known_clinics
from gateway.core.errors import ConflictError, GatewayError
from gateway.core.ids import resource_id
from gateway.db.engine import Session
from gateway.db.repositories import users as user_repo
from gateway.db.tables import UserRow, utcnow
from mappings.practitioner import KIND as PRACTITIONER_KIND

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
PASSWORD_MIN = 12
PASSWORD_MAX = 1024


class InvalidUserError(GatewayError):
    """A username, password or clinic list that cannot be used."""

    status_code = 422


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    clinic_slugs: list[str],
    display_name: str | None = None,
    practitioner: str | None = None,
) -> UserRow:
    """Creates a user in the given clinics; ``practitioner`` is the external id of a practitioner record
    of the first clinic (its FHIR Practitioner becomes the user's fhirUser). Commits."""
    if not USERNAME.fullmatch(username):
        raise InvalidUserError(
            f"username {username!r}: letters, digits and . _ @ -, 1-64 characters, starting with a letter or digit"
        )
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise InvalidUserError(f"password: {PASSWORD_MIN} to {PASSWORD_MAX} characters")
    if not clinic_slugs:
        raise InvalidUserError("a user belongs to at least one clinic")
    pks = known_clinics.clinic_pks(session, clinic_slugs)
    if user_repo.get_user(session, username=username) is not None:
        raise ConflictError(f"user {username} exists")
    fhir_user = None
    if practitioner is not None:
        fhir_user = "Practitioner/" + resource_id(clinic_slugs[0], PRACTITIONER_KIND, practitioner)
    user = UserRow(
        username=username,
        password_hash=credentials.hash_secret(password),
        display_name=(display_name or username)[:200],
        fhir_user=fhir_user,
        created_at=utcnow(),
    )
    user_repo.add_user(session, user=user, clinic_pks=pks)
    session.commit()
    return user


def authenticate_user(session: Session, *, username: str, password: str) -> UserRow | None:
    """The enabled user with this password, or None; unknown users cost the same scrypt as a wrong password."""
    user = user_repo.get_user(session, username=username) if len(username) <= 64 else None
    usable = user is not None and not user.disabled
    stored = user.password_hash if usable and user is not None else credentials.DUMMY_SECRET_HASH
    if credentials.verify_secret(password, stored) and usable:
        return user
    return None
