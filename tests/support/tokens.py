"""/fhir bearer tokens for tests: a client of a kind, granted clinics, and a token row with a scope (and a
launch patient), written to the token table as the authorization server writes them.

For a token from a real SMART Backend Services request, see ``support.smart.backend_token``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from gateway.auth import credentials
from gateway.core.config import Settings
from gateway.db.repositories import clinics as clinic_repo
from gateway.db.repositories import tokens as token_repo
from gateway.db.tables import AccessTokenRow, ClientRow


def write_token(
    engine: Engine,
    settings: Settings,
    *,
    scope: str = "system/*.read",
    clinics: tuple[str, ...] = ("clinic-a",),
    kind: str = "ehr",
    patient: str | None = None,
) -> str:
    """A new client of ``kind`` granted ``clinics`` (by slug) and a bearer token of it with ``scope``."""
    token = credentials.new_token()
    now = datetime.now(UTC)
    with Session(engine, expire_on_commit=False) as session:
        pks = []
        for slug in clinics:
            clinic = clinic_repo.get_clinic(session, slug=slug)
            assert clinic is not None and clinic.id is not None, f"no clinic {slug!r}"
            pks.append(clinic.id)
        client = clinic_repo.add_client(
            session,
            client=ClientRow(
                client_id=credentials.new_client_id(),
                kind=kind,
                name=f"{kind} test",
                token_endpoint_auth_method="private_key_jwt",
                scopes=scope,
            ),
            clinic_pks=pks,
        )
        assert client.id is not None
        token_repo.add_token(
            session,
            token=AccessTokenRow(
                token_hash=credentials.token_hash(token, settings.token_signing_secret.get_secret_value()),
                client_pk=client.id,
                clinic_pk=None,
                scope=scope,
                context={"patient": patient} if patient else None,
                issued_at=now,
                expires_at=now + timedelta(hours=1),
            ),
        )
        session.commit()
    return token
