"""EHR AllergyIntolerance -> AllergyRecord: Epic and Oracle Health fixtures, and rejections."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mappings.inbound import InboundMappingError, from_fhir_allergy
from tests.mappings.inbound.inbound_support import assert_phi_free, entry, table

EPIC_PATIENT = "eTstPt1.xQ4vN2bR7sW9yZ3kL6mP0hA3"
ORACLE_PATIENT = "90000001"
EPIC_ALLERGEN = "urn:oid:1.2.840.114350.1.13.0.1.7.2.999999.767101"
CERNER_NOMENCLATURE = "https://fhir.cerner.com/ec0e1a57-0000-4000-8000-00000000e57a/nomenclature"

EPIC = {
    "eTstAlg1.cE7gI0kM3oQ6sU9wY2aC5e": {
        "codes": [{"system": EPIC_ALLERGEN, "code": "99910", "display": "PENICILLINS"}],
        "text": "Penicillins",
        "clinical_status": "active",
        "verification_status": "confirmed",
        "type": "allergy",
        "category": ["medication"],
        "criticality": "high",
        "onset": "2005",
        "reactions": [
            {
                "manifestations": [
                    {
                        "codes": [
                            {
                                "system": "urn:oid:1.2.840.114350.1.13.0.1.7.4.999999.30",
                                "code": "99920",
                                "display": "Hives",
                            }
                        ],
                        "text": "Hives",
                    }
                ],
                "severity": "moderate",
            }
        ],
        "recorded_date": "2015-02-10T18:00:00Z",
    },
    "eTstAlg2.fH8jL1nP4rT7vX0zB3dF6h": {
        "verification_status": "unconfirmed",
        "category": ["food"],
        "criticality": "unable-to-assess",
        "reactions": [
            {
                "manifestations": [{"codes": [], "text": "Throat swelling"}, {"codes": [], "text": "Hives"}],
                "severity": "severe",
            }
        ],
    },
    "eTstAlg3.iK9mO2qS5uW8yA1cE4gI7k": {  # reaction with a description only: left out
        "clinical_status": "inactive",
        "type": "intolerance",
        "category": ["environment"],
        "reactions": None,
    },
    "eTstAlg4.lN0pR3tV6xZ9bD2fH5jL8n": {"rejected": ["entered-in-error"]},
}

ORACLE = {
    "a900020001": {
        "codes": [{"system": CERNER_NOMENCLATURE, "code": "99940001", "display": "sulfa drugs"}],
        "criticality": "low",
        "onset": "2010",
        "recorded_date": "2022-08-09T14:12:00-05:00",
        "source": {
            "ehr": "oracle-test",
            "resource_type": "AllergyIntolerance",
            "id": "a900020001",
            "version": "1",
        },
    },
    "a900020002": {  # clinicalStatus text only; repeated category once
        "codes": None,
        "text": "Cats",
        "clinical_status": "active",
        "verification_status": None,
        "category": ["environment"],
    },
    "a900020003": {
        "rejected": [
            "AllergyIntolerance.patient has no patient reference",
            "AllergyIntolerance.clinicalStatus is missing",
        ]
    },
    "a900020004": {"rejected": ["entered-in-error"]},
}


def check(resource: dict[str, Any], expected: dict[str, Any], ehr: str, ehr_patient_id: str) -> None:
    if "rejected" in expected:
        with pytest.raises(InboundMappingError) as error:
            from_fhir_allergy(resource, patient_id="pt-1", ehr=ehr, ehr_patient_id=ehr_patient_id)
        assert error.value.reasons == expected["rejected"]
        assert_phi_free(error.value.reasons, resource)
        return
    data = from_fhir_allergy(resource, patient_id="pt-1", ehr=ehr, ehr_patient_id=ehr_patient_id).model_dump(
        mode="json", exclude_none=True, exclude_defaults=False
    )
    for reaction in data.get("reactions", []):
        for manifestation in reaction["manifestations"]:
            manifestation.setdefault("codes", [])
    data = {k: v for k, v in data.items() if v != []}
    assert {key: data.get(key) for key in expected} == expected


@pytest.mark.parametrize(("resource", "expected"), table("epic-allergies.json", "AllergyIntolerance", EPIC))
def test_epic_allergies(resource: dict[str, Any], expected: dict[str, Any]) -> None:
    check(resource, expected, "epic-test", EPIC_PATIENT)


@pytest.mark.parametrize(
    ("resource", "expected"), table("oracle-allergies.json", "AllergyIntolerance", ORACLE)
)
def test_oracle_allergies(resource: dict[str, Any], expected: dict[str, Any]) -> None:
    check(resource, expected, "oracle-test", ORACLE_PATIENT)


def _alg1() -> dict[str, Any]:
    return copy.deepcopy(
        entry("epic-allergies.json", "AllergyIntolerance", "eTstAlg1.cE7gI0kM3oQ6sU9wY2aC5e")
    )


@pytest.mark.parametrize(
    ("change", "reasons"),
    [
        pytest.param(
            {
                "clinicalStatus": {"text": "Historical"},
                "code": {"coding": []},
                "patient": {"reference": "Group/1"},
            },
            [
                "AllergyIntolerance.code has neither coding nor text",
                "AllergyIntolerance.patient does not reference a Patient",
                "AllergyIntolerance.clinicalStatus is not active, inactive or resolved",
            ],
            id="every-reason-listed",
        ),
        pytest.param(
            {"verificationStatus": {"coding": [{"code": "entered-in-error"}]}},
            ["entered-in-error"],
            id="entered-in-error-coding-without-system",
        ),
    ],
)
def test_rejections(change: dict[str, Any], reasons: list[str]) -> None:
    resource = _alg1() | change
    with pytest.raises(InboundMappingError) as error:
        from_fhir_allergy(resource, patient_id="pt-1")
    assert error.value.reasons == reasons
    assert_phi_free(error.value.reasons, resource)


def test_unknown_codes_of_plain_code_elements_are_dropped() -> None:
    resource = _alg1() | {"type": "Allergy", "category": ["drug", "food"], "criticality": "severe"}
    resource["reaction"][0]["severity"] = "fatal"
    record = from_fhir_allergy(resource, patient_id="p")
    assert (record.type, [c.value for c in record.category], record.criticality) == (None, ["food"], None)
    assert record.reactions[0].severity is None
