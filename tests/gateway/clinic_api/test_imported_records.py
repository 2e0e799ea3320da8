"""Referral records imported from EHRs (conditions, medications, allergies) are read-only in the clinic API."""

from __future__ import annotations

import json
from pathlib import Path

from sqlmodel import Session

from gateway.clinic_api import services
from gateway.clinic_api.examples import RECORD_EXAMPLES
from gateway.db.repositories.clinics import get_clinic
from mappings.records import IMPORTED_KINDS

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "clinic"


def import_condition(engine, settings) -> dict:
    """What the referral importer does: the same write service, for an imported kind."""
    fixture = json.loads((FIXTURES / "referral-condition-problem.json").read_text())
    record = {**fixture["record"], "patient_id": "pat-001"}
    with Session(engine, expire_on_commit=False) as session:
        clinic = get_clinic(session, slug="clinic-a")
        scope = services.ClinicScope(pk=clinic.id, slug=clinic.slug, name=clinic.name)
        model = IMPORTED_KINDS["conditions"].model_validate(record)
        services.put_record(
            session, settings, clinic=scope, kind="conditions", external_id="cond-1", model=model
        )
    return record


def test_imported_condition_is_readable_not_writable(clinic, engine, settings) -> None:
    clinic.put("patients", "pat-001", RECORD_EXAMPLES["patients"][1])
    record = import_condition(engine, settings)
    body = clinic.get("/api/v1/conditions/cond-1").json()
    assert body["record"]["codes"] == record["codes"]
    bundle = clinic.get("/api/v1/conditions/cond-1/fhir").json()
    condition = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Condition")
    assert {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F33.2"} in [
        {"system": c["system"], "code": c["code"]} for c in condition["code"]["coding"]
    ]
    assert clinic.put("conditions", "cond-2", record).status_code == 405
    assert clinic.http.delete("/api/v1/conditions/cond-1", headers=clinic.headers).status_code == 405
    assert [r["id"] for r in clinic.get("/api/v1/conditions").json()["items"]] == ["cond-1"]


def test_patient_with_imported_condition_cannot_be_deleted(clinic, engine, settings) -> None:
    clinic.put("patients", "pat-001", RECORD_EXAMPLES["patients"][1])
    import_condition(engine, settings)
    assert clinic.http.delete("/api/v1/patients/pat-001", headers=clinic.headers).status_code == 409


def test_batch_refuses_imported_kinds(clinic) -> None:
    body = [{"kind": "conditions", "id": "c", "record": {}}]
    response = clinic.http.post("/api/v1/batch", json=body, headers=clinic.headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][:3] == ["body", 0, "kind"]
