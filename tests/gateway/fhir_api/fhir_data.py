"""Records and helpers the FHIR API tests share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from gateway.auth import credentials
from gateway.core.config import Settings
from gateway.core.ids import resource_id
from gateway.db.repositories import clinics as clinic_repo
from gateway.db.repositories import tokens as token_repo
from gateway.db.tables import AccessTokenRow, ClientRow

FHIR_JSON = "application/fhir+json"

PATIENTS = {
    "p1": {
        "given_name": "Ada",
        "family_name": "Lovelace",
        "birth_date": "1980-03-04",
        "sex": "female",
        "identifiers": [{"system": "urn:oid:1.2.3.4", "value": "MRN-001"}],
    },
    "p2": {"given_name": "Alan", "family_name": "Turing", "birth_date": "1975-06-23", "sex": "male"},
    "p3": {"given_name": "Émile", "family_name": "Zola", "birth_date": "1990-01-15", "sex": "male"},
}


def fhir_id(slug: str, kind: str, external_id: str) -> str:
    return resource_id(slug, kind, external_id)


def put_records(clinic, records: list[tuple[str, str, dict]]) -> None:
    for kind, external_id, record in records:
        response = clinic.put(kind, external_id, record)
        assert response.status_code in (200, 201), response.text


def write_token(
    engine: Engine,
    settings: Settings,
    *,
    scope: str = "system/*.read",
    clinics: tuple[str, ...] = ("clinic-a",),
    kind: str = "ehr",
    patient: str | None = None,
) -> str:
    """A client of ``kind`` granted ``clinics`` and a bearer token with ``scope`` (and a launch patient),
    written to the token table as the authorization server writes them."""
    token = credentials.new_token()
    now = datetime.now(UTC)
    with Session(engine, expire_on_commit=False) as session:
        pks = []
        for slug in clinics:
            clinic = clinic_repo.get_clinic(session, slug=slug)
            assert clinic is not None and clinic.id is not None
            pks.append(clinic.id)
        client = clinic_repo.add_client(
            session,
            client=ClientRow(
                client_id=credentials.new_client_id(),
                kind=kind,
                name="ehr test",
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
