"""The clinic records API (DESIGN §4) over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy

import pytest
from sqlmodel import Session, func, select

from gateway.clinic_api.examples import RECORD_EXAMPLES
from gateway.db.tables import RecordRow

PATIENT = RECORD_EXAMPLES["patients"][1]
PRACTITIONER = RECORD_EXAMPLES["practitioners"][1]
SESSION = RECORD_EXAMPLES["sessions"][1]
DOSE = RECORD_EXAMPLES["doses"][1]
VITALS = RECORD_EXAMPLES["vitals"][1]
ASSESSMENT = RECORD_EXAMPLES["assessments"][1]
ADVERSE_EVENT = RECORD_EXAMPLES["adverse-events"][1]


def record_count(engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(RecordRow)).one()


def load_course(clinic) -> None:
    for kind, external_id, record in [
        ("patients", "pat-001", PATIENT),
        ("practitioners", "prac-001", PRACTITIONER),
        ("sessions", "ses-001", SESSION),
        ("doses", "dose-001", DOSE),
        ("vitals", "vit-001", VITALS),
        ("assessments", "asm-001", ASSESSMENT),
        ("adverse-events", "ae-001", ADVERSE_EVENT),
    ]:
        response = clinic.put(kind, external_id, record)
        assert response.status_code == 201, (kind, response.text)


def test_every_kind_round_trips(clinic) -> None:
    load_course(clinic)
    for kind, (external_id, record) in RECORD_EXAMPLES.items():
        body = clinic.get(f"/api/v1/{kind}/{external_id}").json()
        assert body["id"] == external_id
        assert body["kind"] == kind
        for key in ("patient_id", "session_id", "instrument", "given_name", "event", "dose_mg"):
            if key in record:
                assert body["record"][key] == record[key]


def test_same_put_twice_changes_nothing(clinic, engine) -> None:
    first = clinic.put("patients", "pat-001", PATIENT)
    second = clinic.put("patients", "pat-001", PATIENT)
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["outcome"] == "unchanged"
    assert second.json()["updated_at"] == first.json()["updated_at"]
    assert record_count(engine) == 1


def test_changed_put_updates(clinic, engine) -> None:
    clinic.put("patients", "pat-001", PATIENT)
    changed = clinic.put("patients", "pat-001", {**PATIENT, "phone": "+1 555 0199"})
    assert changed.status_code == 200
    assert changed.json()["outcome"] == "updated"
    assert changed.json()["record"]["phone"] == "+1 555 0199"
    assert record_count(engine) == 1


def test_phq9_answer_out_of_range_names_the_item_and_writes_nothing(clinic, engine) -> None:
    clinic.put("patients", "pat-001", PATIENT)
    bad = copy.deepcopy(ASSESSMENT)
    bad["items"]["9"] = 4
    bad.pop("total")
    response = clinic.put("assessments", "asm-001", bad)
    assert response.status_code == 422
    locs = [error["loc"] for error in response.json()["detail"]]
    assert ["body", "items", "9"] in locs
    assert record_count(engine) == 1
    assert clinic.get("/api/v1/assessments/asm-001").status_code == 404


@pytest.mark.parametrize(
    ("kind", "change", "loc"),
    [
        pytest.param("patients", {"sex": "x"}, ["body", "sex"], id="enum"),
        pytest.param("patients", {"nickname": "Av"}, ["body", "nickname"], id="unknown-field"),
        pytest.param("patients", {"birth_date": "1984-13-01"}, ["body", "birth_date"], id="bad-date"),
        pytest.param("vitals", {"heart_rate": 400}, ["body", "heart_rate"], id="vital-out-of-bounds"),
        pytest.param(
            "vitals", {"taken_at": "2026-11-02T09:05:00"}, ["body", "taken_at"], id="naive-timestamp"
        ),
        pytest.param("doses", {"dose_mg": 0}, ["body", "dose_mg"], id="dose-zero"),
        pytest.param(
            "doses",
            {"dose_mg": 5000, "weight_kg": None, "dose_mg_per_kg": None},
            ["body", "dose_mg"],
            id="dose-over-ceiling",
        ),
        pytest.param("doses", {"session_id": "ses-missing"}, ["body", "session_id"], id="missing-reference"),
        pytest.param("assessments", {"total": 10}, ["body"], id="total-inconsistent"),
        pytest.param("assessments", {"instrument": "nope"}, ["body", "instrument"], id="unknown-instrument"),
        pytest.param("sessions", {"patient_id": "pat-404"}, ["body", "patient_id"], id="unknown-patient"),
    ],
)
def test_invalid_records_get_422_with_field_path(clinic, engine, kind, change, loc) -> None:
    load_course(clinic)
    before = record_count(engine)
    external_id, example = RECORD_EXAMPLES[kind]
    record = {k: v for k, v in {**example, **change}.items() if v is not None}
    response = clinic.put(kind, external_id + "-new", record)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/json"
    assert loc in [error["loc"] for error in response.json()["detail"]]
    assert record_count(engine) == before


def test_clinic_b_cannot_see_or_write_clinic_a(make_clinic) -> None:
    a, b = make_clinic("clinic-a"), make_clinic("clinic-b")
    assert a.put("patients", "pat-001", PATIENT).status_code == 201
    assert b.get("/api/v1/patients/pat-001").status_code == 404
    assert b.get("/api/v1/patients").json()["items"] == []
    # B's session naming A's patient is a reference to a record B does not have
    response = b.put("sessions", "ses-001", {**SESSION, "practitioner_id": None} | {"practitioner_id": "x"})
    assert response.status_code == 422
    assert b.http.delete("/api/v1/patients/pat-001", headers=b.headers).status_code == 404
    assert a.get("/api/v1/patients/pat-001").status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-token"),
        pytest.param({"Authorization": "Bearer not-a-token"}, id="unknown-token"),
        pytest.param({"Authorization": "Basic Zm9vOmJhcg=="}, id="wrong-scheme"),
    ],
)
def test_api_requires_a_valid_token(client, headers) -> None:
    response = client.put("/api/v1/patients/pat-001", json=PATIENT, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_batch_all_or_nothing(clinic, engine) -> None:
    good = [
        {"kind": "patients", "id": "pat-001", "record": PATIENT},
        {"kind": "practitioners", "id": "prac-001", "record": PRACTITIONER},
        {"kind": "sessions", "id": "ses-001", "record": SESSION},
    ]
    bad = [*good, {"kind": "vitals", "id": "vit-001", "record": {**VITALS, "spo2": 140}}]
    response = clinic.http.post("/api/v1/batch", json=bad, headers=clinic.headers)
    assert response.status_code == 422
    assert ["body", 3, "record", "spo2"] in [e["loc"] for e in response.json()["detail"]]
    assert record_count(engine) == 0
    response = clinic.http.post("/api/v1/batch", json=good, headers=clinic.headers)
    assert response.status_code == 200
    assert response.json()["created"] == 3
    again = clinic.http.post("/api/v1/batch", json=good, headers=clinic.headers)
    assert again.json() | {"results": []} == {"created": 0, "updated": 0, "unchanged": 3, "results": []}


def test_batch_accepts_ndjson(clinic) -> None:
    import orjson

    lines = b"\n".join(
        orjson.dumps({"kind": k, "id": i, "record": r})
        for k, i, r in [("patients", "pat-001", PATIENT), ("practitioners", "prac-001", PRACTITIONER)]
    )
    response = clinic.http.post(
        "/api/v1/batch", content=lines, headers={**clinic.headers, "Content-Type": "application/x-ndjson"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["created"] == 2


def test_oversized_body_is_413(clinic, engine) -> None:
    huge = {**PATIENT, "given_name": "A" * 6_000_000}
    response = clinic.put("patients", "pat-001", huge)
    assert response.status_code == 413
    assert record_count(engine) == 0


def test_delete_is_blocked_while_referenced_then_allowed(clinic) -> None:
    load_course(clinic)
    assert clinic.http.delete("/api/v1/patients/pat-001", headers=clinic.headers).status_code == 409
    assert clinic.http.delete("/api/v1/adverse-events/ae-001", headers=clinic.headers).status_code == 204
    assert clinic.get("/api/v1/adverse-events/ae-001").status_code == 404
    # a deleted record can be written again
    assert clinic.put("adverse-events", "ae-001", ADVERSE_EVENT).status_code == 200


def test_list_pages_by_keyset(clinic) -> None:
    for n in range(5):
        clinic.put("patients", f"pat-{n:03d}", PATIENT)
    first = clinic.get("/api/v1/patients", params={"limit": 2}).json()
    assert [p["id"] for p in first["items"]] == ["pat-000", "pat-001"]
    second = clinic.get("/api/v1/patients", params={"limit": 2, "after": first["next_after"]}).json()
    assert [p["id"] for p in second["items"]] == ["pat-002", "pat-003"]


def test_gad7_item_2_accepts_both_loinc_answer_codes(clinic) -> None:
    clinic.put("patients", "pat-001", PATIENT)
    base = {
        "patient_id": "pat-001",
        "instrument": "gad7",
        "taken_at": "2026-11-01T10:00:00-08:00",
        "items": {"1": 1, "3": 0, "4": 0, "5": 0, "6": 0, "7": 0},
    }
    first = clinic.put("assessments", "gad-1", {**base, "items": {**base["items"], "2": "LA18938-3"}})
    second = clinic.put("assessments", "gad-1", {**base, "items": {**base["items"], "68509-9": "LA6570-1"}})
    assert first.status_code == 201, first.text
    assert second.json()["outcome"] == "unchanged"  # same scores, stored the same way
    assert second.json()["record"]["items"]["2"] == 2
    bad = clinic.put("assessments", "gad-2", {**base, "items": {**base["items"], "2": "LA6571-8"}})
    assert bad.status_code == 422
    assert ["body", "items", "2"] in [e["loc"] for e in bad.json()["detail"]]


@pytest.mark.parametrize(
    ("end", "status"),
    [
        pytest.param("2026-11-02T09:56:00-08:00", 201, id="within-a-minute"),
        pytest.param("2026-11-02T09:56:01-08:00", 422, id="a-minute-and-a-second-late"),
        pytest.param("2026-11-02T09:53:59-08:00", 422, id="a-minute-and-a-second-early"),
        pytest.param("2026-11-02T10:15:00-08:00", 422, id="an-hour-against-40-minutes"),
    ],
)
def test_dose_end_contradicting_infusion_minutes_is_refused(clinic, engine, end: str, status: int) -> None:
    load_course(clinic)
    before = record_count(engine)
    response = clinic.put("doses", "dose-002", {**DOSE, "end": end})  # DOSE: 09:15, infusion_minutes 40
    assert response.status_code == status, response.text
    if status == 201:
        assert record_count(engine) == before + 1
        return
    assert response.headers["content-type"] == "application/json"
    detail = response.json()["detail"]
    assert [e["loc"] for e in detail] == [["body", "end"], ["body", "infusion_minutes"]]
    assert {e["type"] for e in detail} == {"infusion_length"}
    assert record_count(engine) == before
    assert clinic.get("/api/v1/doses/dose-002").status_code == 404


def test_iv_dose_sends_its_infusion_procedure_over_the_infusion_period(clinic) -> None:
    load_course(clinic)
    bundle = clinic.get("/api/v1/doses/dose-001/fhir").json()
    resources = {entry["resource"]["resourceType"]: entry["resource"] for entry in bundle["entry"]}
    procedure = resources["Procedure"]
    assert [c["code"] for c in procedure["code"]["coding"]] == ["96365"]
    assert procedure["performedPeriod"] == {"start": DOSE["administered_at"], "end": DOSE["end"]}
    assert resources["MedicationAdministration"]["partOf"] == [{"reference": f"Procedure/{procedure['id']}"}]
    session = {
        e["resource"]["resourceType"]: e["resource"]
        for e in clinic.get("/api/v1/sessions/ses-001/fhir").json()["entry"]
    }
    assert "96365" not in str(session.get("Procedure", {}))


def test_shortening_an_infusion_to_a_push_retires_its_procedure(clinic) -> None:
    load_course(clinic)
    [procedure] = [
        e["resource"]
        for e in clinic.get("/api/v1/doses/dose-001/fhir").json()["entry"]
        if e["resource"]["resourceType"] == "Procedure"
    ]
    push = {
        **DOSE,
        "infusion_minutes": 10,
        "end": "2026-11-02T09:25:00-08:00",
    }  # 15 minutes or less: no 96365
    assert clinic.put("doses", "dose-001", push).status_code == 200
    current = {
        e["resource"]["resourceType"]: e["resource"]
        for e in clinic.get("/api/v1/doses/dose-001/fhir").json()["entry"]
    }
    assert "partOf" not in current["MedicationAdministration"]
    # the record no longer maps to it: its last version says entered-in-error, so an EHR that has it drops it
    assert (current["Procedure"]["id"], current["Procedure"]["status"]) == (
        procedure["id"],
        "entered-in-error",
    )
