"""The safety Flag an assessment raises is stored, indexed and retired with its assessment (issue 7, item 7)."""

from __future__ import annotations

import json

from sqlmodel import Session, select

from gateway.clinic_api.examples import RECORD_EXAMPLES
from gateway.db.repositories.resources import index_rows_of
from gateway.db.tables import ResourceRow, ResourceVersionRow

PATIENT = RECORD_EXAMPLES["patients"][1]
ASSESSMENT = RECORD_EXAMPLES["assessments"][1]
FLAG_CATEGORY = "http://terminology.hl7.org/CodeSystem/flag-category"


def _with_item9(score: int) -> dict:
    return {**ASSESSMENT, "items": {**ASSESSMENT["items"], "9": score}, "total": 9 + score}


def _flag_id(clinic) -> str:
    bundle = clinic.get("/api/v1/assessments/asm-001/fhir").json()
    [flag] = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Flag"]
    return flag["id"]


def _stored(engine, resource_id: str) -> tuple[dict, list[int]]:
    with Session(engine) as session:
        row = session.exec(select(ResourceRow).where(ResourceRow.resource_id == resource_id)).one()
        versions = [
            v.version_id
            for v in session.exec(select(ResourceVersionRow).where(ResourceVersionRow.resource_pk == row.id))
        ]
        return json.loads(row.content), sorted(versions)


def test_flag_is_written_and_indexed(clinic, engine) -> None:
    clinic.put("patients", "pat-001", PATIENT)
    assert clinic.put("assessments", "asm-001", _with_item9(2)).status_code == 201
    flag_id = _flag_id(clinic)
    flag, versions = _stored(engine, flag_id)
    assert (flag["status"], versions) == ("active", [1])
    assert flag["category"][0]["coding"][0] == {
        "system": FLAG_CATEGORY,
        "code": "safety",
        "display": "Safety",
    }
    assert flag["period"] == {"start": ASSESSMENT["taken_at"]}
    with Session(engine) as session:
        row = session.exec(select(ResourceRow).where(ResourceRow.resource_id == flag_id)).one()
        index = index_rows_of(session, resource_pk=row.id)
    assert any(r["param"] == "patient" and r["target_type"] == "Patient" for r in index["reference"])
    assert any(r["param"] == "author" and r["target_type"] == "Organization" for r in index["reference"])
    assert any(r["param"] == "date" for r in index["date"])
    assert any(r["param"] == "identifier" and r["code"] == "asm-001#flag" for r in index["token"])


def test_flag_is_retired_when_the_risk_is_corrected_and_raised_again(clinic, engine) -> None:
    clinic.put("patients", "pat-001", PATIENT)
    clinic.put("assessments", "asm-001", _with_item9(1))
    flag_id = _flag_id(clinic)
    assert clinic.put("assessments", "asm-001", _with_item9(0)).status_code == 200
    flag, versions = _stored(engine, flag_id)
    assert (flag["status"], versions) == ("entered-in-error", [1, 2])
    bundle = clinic.get("/api/v1/assessments/asm-001/fhir").json()
    assert "Flag" not in [
        e["resource"]["resourceType"]
        for e in bundle["entry"]
        if e["resource"].get("status") != "entered-in-error"
    ]
    clinic.put("assessments", "asm-001", _with_item9(3))
    flag, versions = _stored(engine, flag_id)
    assert (flag["status"], versions) == ("active", [1, 2, 3])


def test_flag_is_retired_when_the_assessment_is_deleted(clinic, engine) -> None:
    clinic.put("patients", "pat-001", PATIENT)
    clinic.put("assessments", "asm-001", _with_item9(3))
    flag_id = _flag_id(clinic)
    assert clinic.http.delete("/api/v1/assessments/asm-001", headers=clinic.headers).status_code == 204
    flag, versions = _stored(engine, flag_id)
    assert (flag["status"], versions) == ("entered-in-error", [1, 2])


def test_an_unflagged_assessment_has_no_flag(clinic) -> None:
    clinic.put("patients", "pat-001", PATIENT)
    clinic.put("assessments", "asm-001", ASSESSMENT)
    bundle = clinic.get("/api/v1/assessments/asm-001/fhir").json()
    assert "Flag" not in [e["resource"]["resourceType"] for e in bundle["entry"]]
