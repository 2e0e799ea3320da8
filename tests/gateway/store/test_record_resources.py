"""The write path: each record write stores its FHIR resources, versioned, indexed, with Provenance."""

from __future__ import annotations

import json

from sqlmodel import Session, func, select

from gateway.clinic_api.examples import RECORD_EXAMPLES
from gateway.db.repositories.resources import index_rows_of
from gateway.db.tables import ResourceRow, ResourceVersionRow

PATIENT = RECORD_EXAMPLES["patients"][1]


def resources_of(clinic, kind: str, external_id: str) -> dict[str, dict]:
    response = clinic.get(f"/api/v1/{kind}/{external_id}/fhir")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/fhir+json"
    bundle = response.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    return {f"{e['resource']['resourceType']}/{e['resource']['id']}": e["resource"] for e in bundle["entry"]}


def version_count(engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(ResourceVersionRow)).one()


def test_same_record_twice_is_one_version_and_a_change_is_version_2(clinic, engine) -> None:
    clinic.put("patients", "pat-001", PATIENT)
    first = resources_of(clinic, "patients", "pat-001")
    patient = next(r for key, r in first.items() if key.startswith("Patient/"))
    assert patient["meta"]["versionId"] == "1"
    versions_before = version_count(engine)
    clinic.put("patients", "pat-001", PATIENT)
    assert version_count(engine) == versions_before
    clinic.put("patients", "pat-001", {**PATIENT, "phone": "+1 555 0199"})
    patient2 = resources_of(clinic, "patients", "pat-001")[f"Patient/{patient['id']}"]
    assert patient2["meta"]["versionId"] == "2"
    assert patient2["meta"]["lastUpdated"] >= patient["meta"]["lastUpdated"]
    assert any(t.get("value") == "+1 555 0199" for t in patient2["telecom"])


def test_every_write_has_a_provenance(clinic) -> None:
    clinic.put("patients", "pat-001", PATIENT)
    resources = resources_of(clinic, "patients", "pat-001")
    provenance = next(r for key, r in resources.items() if key.startswith("Provenance/"))
    patient_key = next(key for key in resources if key.startswith("Patient/"))
    assert {"reference": patient_key} in [{"reference": t["reference"]} for t in provenance["target"]]


def test_resources_carry_deterministic_identifier(clinic, settings) -> None:
    clinic.put("patients", "pat-001", PATIENT)
    patient = next(
        r for key, r in resources_of(clinic, "patients", "pat-001").items() if key.startswith("Patient/")
    )
    assert {"system": f"{settings.identifier_base}/clinic-a/patients", "value": "pat-001"} in [
        {"system": i["system"], "value": i["value"]} for i in patient["identifier"]
    ]


def test_delete_marks_entered_in_error_as_a_new_version(clinic, engine) -> None:
    for kind in ("patients", "practitioners", "sessions"):
        external_id, record = RECORD_EXAMPLES[kind]
        assert clinic.put(kind, external_id, record).status_code == 201
    encounter = next(
        r for k, r in resources_of(clinic, "sessions", "ses-001").items() if k.startswith("Encounter/")
    )
    assert clinic.http.delete("/api/v1/sessions/ses-001", headers=clinic.headers).status_code == 204
    with Session(engine) as session:
        row = session.exec(select(ResourceRow).where(ResourceRow.resource_id == encounter["id"])).one()
        stored = json.loads(row.content)
        assert stored["status"] == "entered-in-error"
        assert stored["meta"]["versionId"] == "2"
        assert [
            v.version_id
            for v in session.exec(select(ResourceVersionRow).where(ResourceVersionRow.resource_pk == row.id))
        ] == [1, 2]


def test_search_index_is_maintained_with_each_version(clinic, engine) -> None:
    for kind in ("patients", "practitioners", "sessions", "vitals"):
        external_id, record = RECORD_EXAMPLES[kind]
        clinic.put(kind, external_id, record)
    heart_rate = next(
        r
        for r in resources_of(clinic, "vitals", "vit-001").values()
        if r["resourceType"] == "Observation" and any(c["code"] == "8867-4" for c in r["code"]["coding"])
    )
    with Session(engine) as session:
        row = session.exec(select(ResourceRow).where(ResourceRow.resource_id == heart_rate["id"])).one()
        index = index_rows_of(session, resource_pk=row.id)
    assert {
        "resource_type": "Observation",
        "param": "code",
        "system": "http://loinc.org",
        "code": "8867-4",
    } in index["token"]
    assert any(r["param"] == "patient" and r["target_type"] == "Patient" for r in index["reference"])
    assert any(r["param"] == "date" for r in index["date"])
    clinic.put("vitals", "vit-001", {**RECORD_EXAMPLES["vitals"][1], "heart_rate": None} | {"heart_rate": 80})
    with Session(engine) as session:
        index2 = index_rows_of(session, resource_pk=row.id)
    assert index2["token"] == index["token"]  # re-indexed, not duplicated


def test_failed_write_stores_no_resources(clinic, engine) -> None:
    bad = {**PATIENT, "sex": "x"}
    assert clinic.put("patients", "pat-001", bad).status_code == 422
    assert version_count(engine) == 0
