"""Rating scales over the clinic API: who rated it, impossible totals, safety signals (issue 7)."""

from __future__ import annotations

import pytest

from gateway.clinic_api.examples import RECORD_EXAMPLES

PATIENT = RECORD_EXAMPLES["patients"][1]
PRACTITIONER = RECORD_EXAMPLES["practitioners"][1]
MADRS = {
    "patient_id": "pat-001",
    "instrument": "madrs",
    "taken_at": "2026-11-01T10:00:00-08:00",
    "items": {str(n): 1 for n in range(1, 10)} | {"10": 2},
    "total": 11,
}


def _resources(clinic, external_id: str) -> list[dict]:
    bundle = clinic.get(f"/api/v1/assessments/{external_id}/fhir").json()
    return [entry["resource"] for entry in bundle["entry"]]


def _by_type(resources: list[dict], resource_type: str) -> list[dict]:
    return [r for r in resources if r["resourceType"] == resource_type]


@pytest.mark.parametrize(
    ("record", "rater", "patient_source"),
    [
        pytest.param(MADRS | {"rater_id": "prac-001"}, True, False, id="clinician-rated-with-rater"),
        pytest.param(MADRS, False, False, id="clinician-rated-without-rater-names-nobody"),
        pytest.param(
            RECORD_EXAMPLES["assessments"][1] | {"rater_id": "prac-001"},
            True,
            True,
            id="self-report-administered",
        ),
    ],
)
def test_who_rated_it(clinic, record: dict, rater: bool, patient_source: bool) -> None:
    clinic.put("patients", "pat-001", PATIENT)
    clinic.put("practitioners", "prac-001", PRACTITIONER)
    assert clinic.put("assessments", "asm-1", record).status_code == 201
    resources = _resources(clinic, "asm-1")
    [response] = _by_type(resources, "QuestionnaireResponse")
    [practitioner] = [
        e["resource"]
        for e in clinic.get("/api/v1/practitioners/prac-001/fhir").json()["entry"]
        if e["resource"]["resourceType"] == "Practitioner"
    ]
    rater_ref = {"reference": f"Practitioner/{practitioner['id']}"}
    patient_ref = response["subject"]
    assert response.get("author") == (rater_ref if rater else None)
    expected = patient_ref if patient_source else (rater_ref if rater else None)
    assert response.get("source") == expected
    for observation in _by_type(resources, "Observation"):
        assert observation.get("performer") == ([expected] if expected else None)


def test_impossible_total_is_refused_and_nothing_is_written(clinic) -> None:
    clinic.put("patients", "pat-001", PATIENT)
    record = {"patient_id": "pat-001", "instrument": "phq9", "taken_at": "2026-11-01T10:00:00-08:00"}
    response = clinic.put("assessments", "asm-2", record | {"items": {"1": 0}, "total": 27})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/json"
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "total"]]
    assert clinic.get("/api/v1/assessments/asm-2").status_code == 404


def test_total_that_forces_item9_raises_the_flag_and_the_standard_signals(clinic) -> None:
    clinic.put("patients", "pat-001", PATIENT)
    record = {
        "patient_id": "pat-001",
        "instrument": "phq9",
        "taken_at": "2026-11-01T10:00:00-08:00",
        "items": {str(n): 3 for n in range(1, 9)},
        "total": 27,
    }
    assert clinic.put("assessments", "asm-3", record).status_code == 201
    resources = _resources(clinic, "asm-3")
    [response] = _by_type(resources, "QuestionnaireResponse")
    assert response["status"] == "in-progress"
    total = next(
        r for r in _by_type(resources, "Observation") if r["identifier"][0]["value"] == "asm-3#total"
    )
    codes = [c["code"] for i in total["interpretation"] for c in i["coding"]]
    assert codes == ["LA6712-9", "suicidal-ideation", "AA"]
    item9 = next(
        r for r in _by_type(resources, "Observation") if r["identifier"][0]["value"] == "asm-3#item-9"
    )
    assert item9["dataAbsentReason"]["coding"][0]["code"] == "unknown"
    [flag] = _by_type(resources, "Flag")
    assert flag["status"] == "active" and flag["subject"] == total["subject"]
