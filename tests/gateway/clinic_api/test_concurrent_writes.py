"""Concurrent writers of one record: nothing fails, nothing is duplicated (both backends)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlmodel import Session, func, select

from gateway.auth.clients import create_clinic
from gateway.clinic_api import services
from gateway.clinic_api.examples import RECORD_EXAMPLES
from gateway.db.tables import RecordRow, ResourceRow, ResourceVersionRow
from mappings.records import PatientRecord

PATIENT = RECORD_EXAMPLES["patients"][1]
WRITERS = 8


def test_concurrent_puts_of_one_record(engine, settings) -> None:
    with Session(engine, expire_on_commit=False) as session:
        clinic = create_clinic(session, slug="race", name="Race Clinic")
    scope = services.ClinicScope(pk=clinic.id, slug=clinic.slug, name=clinic.name)

    def put(record: dict) -> services.Outcome:
        with Session(engine, expire_on_commit=False) as session:
            return services.put_record(
                session,
                settings,
                clinic=scope,
                kind="patients",
                external_id="pat-1",
                model=PatientRecord.model_validate(record),
            ).outcome

    with ThreadPoolExecutor(WRITERS) as pool:
        first = list(pool.map(put, [PATIENT] * WRITERS))
    assert sorted(first) == sorted([services.Outcome.created] + [services.Outcome.unchanged] * (WRITERS - 1))

    phones = [f"+1 555 02{n:02d}" for n in range(WRITERS)]  # none equals the example's phone
    with ThreadPoolExecutor(WRITERS) as pool:
        second = list(pool.map(put, [{**PATIENT, "phone": phone} for phone in phones]))
    assert second.count(services.Outcome.updated) == WRITERS  # each phone differs from whatever was stored

    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(RecordRow)).one() == 1
        patient = session.exec(select(ResourceRow).where(ResourceRow.resource_type == "Patient")).one()
        versions = session.exec(
            select(ResourceVersionRow.version_id).where(ResourceVersionRow.resource_pk == patient.id)
        ).all()
    assert sorted(versions) == list(range(1, WRITERS + 2))  # v1 + one version per update, no gaps, no twins
    assert patient.version_id == WRITERS + 1
