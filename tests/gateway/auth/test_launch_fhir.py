"""App Launch tokens at /fhir: a patient-context token sees only its patient; a user-level token sees the
app's clinic; another clinic's data is never visible (checked through the FHIR API itself)."""

from __future__ import annotations

import pytest
from support.launch import PATIENT, Launch, browse_to_code, make_app, make_user, patient_id

AUD = "http://testserver/fhir"
VITALS = {"taken_at": "2026-03-01T10:00:00Z", "heart_rate": 72}


@pytest.fixture
def seeded(engine, make_clinic):
    a = make_clinic("clinic-a")
    for external_id in ("p-1", "p-2"):
        a.put("patients", external_id, PATIENT)
        put = a.put("vitals", f"v-{external_id}", {**VITALS, "patient_id": external_id})
        assert put.status_code in (200, 201), put.text
    b = make_clinic("clinic-b")
    b.put("patients", "p-9", PATIENT)
    make_user(engine, "dr-a", ["clinic-a"])
    return make_app(engine, "clinic-a")


def token(client, app, scope: str, patient: str | None) -> str:
    launch = Launch(app, aud=AUD, scope=scope)
    code = browse_to_code(client, launch, patient=patient)["code"]
    response = client.post("/auth/token", data=launch.token_form(code))
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def ids(bundle: dict) -> set[str]:
    return {entry["resource"]["id"] for entry in bundle.get("entry", [])}


def test_patient_context_token_sees_only_its_patient(client, seeded) -> None:
    mine, other = patient_id("clinic-a", "p-1"), patient_id("clinic-a", "p-2")
    bearer = {"Authorization": "Bearer " + token(client, seeded, "launch/patient patient/*.rs", mine)}
    assert client.get(f"/fhir/Patient/{mine}", headers=bearer).status_code == 200
    assert client.get(f"/fhir/Patient/{other}", headers=bearer).status_code in (403, 404)
    assert ids(client.get("/fhir/Patient", headers=bearer).json()) == {mine}
    observations = client.get("/fhir/Observation", headers=bearer).json()
    subjects = {entry["resource"]["subject"]["reference"] for entry in observations["entry"]}
    assert subjects == {f"Patient/{mine}"}
    foreign = patient_id("clinic-b", "p-9")
    assert client.get(f"/fhir/Patient/{foreign}", headers=bearer).status_code in (403, 404)


def test_user_token_sees_the_apps_clinic_only(client, seeded) -> None:
    bearer = {"Authorization": "Bearer " + token(client, seeded, "user/*.rs", None)}
    found = ids(client.get("/fhir/Patient", headers=bearer).json())
    assert found == {patient_id("clinic-a", "p-1"), patient_id("clinic-a", "p-2")}


def test_resource_type_outside_the_scopes_is_forbidden(client, seeded) -> None:
    mine = patient_id("clinic-a", "p-1")
    bearer = {"Authorization": "Bearer " + token(client, seeded, "launch/patient patient/Patient.rs", mine)}
    assert client.get("/fhir/Observation", headers=bearer).status_code == 403
    assert client.get(f"/fhir/Patient/{mine}", headers=bearer).status_code == 200
