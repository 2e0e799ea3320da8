"""EHR Condition -> ConditionRecord: every entry of the Epic and Oracle Health fixtures, and rejections."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mappings.inbound import InboundMappingError, from_fhir_condition
from tests.mappings.inbound.inbound_support import assert_phi_free, entry, table

SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
EPIC_PATIENT = "eTstPt1.xQ4vN2bR7sW9yZ3kL6mP0hA3"
ORACLE_PATIENT = "90000001"
CERNER_NOMENCLATURE = "https://fhir.cerner.com/ec0e1a57-0000-4000-8000-00000000e57a/nomenclature"


def rejected(*reasons: str) -> dict[str, Any]:
    return {"rejected": list(reasons)}


EPIC = {
    "eTstCnd1.aB3dE6gH9jK2mN5pQ8sT1vW4": {  # TRD, dual-coded, plus an Epic code without display
        "codes": [
            {"system": "urn:oid:1.2.840.114350.1.13.0.1.7.2.999999.728286", "code": "99901"},
            {"system": SNOMED, "code": "1153570009", "display": "Treatment resistant depression (disorder)"},
            {
                "system": ICD10,
                "code": "F33.2",
                "display": "Major depressive disorder, recurrent severe without psychotic features",
            },
            {
                "system": "urn:oid:2.16.840.1.113883.6.90",
                "code": "F33.2",
                "display": "Major depressive disorder, recurrent severe without psychotic features",
            },
        ],
        "text": "Treatment-resistant depression",
        "clinical_status": "active",
        "verification_status": "confirmed",
        "category": ["problem-list-item"],
        "onset": "2019-03",
        "recorded_date": "2023-01-17T15:22:08Z",
    },
    "eTstCnd2.cD4fG7hJ0kL3nP6qR9tU2wX5": {
        "codes": [
            {"system": SNOMED, "code": "47505003", "display": "Posttraumatic stress disorder"},
            {"system": ICD10, "code": "F43.10", "display": "Post-traumatic stress disorder, unspecified"},
        ],
        "category": ["problem-list-item"],
        "onset": "2008",
        "recorded_date": "2021-08-30",
    },
    "eTstCnd3.eF5hJ8kM1nQ4rS7uV0xY3zA": {
        "codes": [
            {"system": SNOMED, "code": "21897009", "display": "Generalized anxiety disorder"},
            {"system": ICD10, "code": "F41.1", "display": "Generalized anxiety disorder"},
        ],
        "category": ["encounter-diagnosis"],
        "onset": "2024-05-02T09:30:00-05:00",
        "recorded_date": "2024-05-02",
    },
    "eTstCnd4.gH6jK9mN2pQ5sT8vW1yZ4bC": {  # free-text problem
        "codes": [],
        "text": "Chronic insomnia, patient-reported",
        "clinical_status": "active",
        "verification_status": "provisional",
    },
    "eTstCnd5.jK7mN0pQ3sT6vW9yZ2bC5eF": rejected("entered-in-error"),
    "eTstCnd6.mN8pQ1sT4vW7yZ0bC3eF6hJ": {
        "clinical_status": "resolved",
        "onset": "2016-09",
        "abatement": "2017-06-15",
    },
}

ORACLE = {
    "c900010001": {  # clinicalStatus text only ("Active"), proprietary nomenclature coding kept
        "codes": [
            {
                "system": CERNER_NOMENCLATURE,
                "code": "99930001",
                "display": "Major depressive disorder, recurrent, moderate",
            },
            {"system": SNOMED, "code": "191616006", "display": "Recurrent depression"},
            {"system": ICD10, "code": "F33.1", "display": "Major depressive disorder, recurrent, moderate"},
        ],
        "clinical_status": "active",
        "verification_status": "confirmed",
        "category": ["problem-list-item"],
        "onset": "2021-02-01T06:00:00Z",
        "recorded_date": "2024-01-10T17:45:09Z",
        "source": {"ehr": "oracle-test", "resource_type": "Condition", "id": "c900010001", "version": "2"},
    },
    "c900010002": {
        "clinical_status": "resolved",
        "category": ["encounter-diagnosis"],
        "abatement": "2024-03-15T05:00:00Z",
    },
    "c900010003": {
        "clinical_status": "active",
        "verification_status": None,
        "category": ["health-concern"],
        "recorded_date": "2024-04-02T09:00:00-05:00",
    },
    "c900010004": {"clinical_status": None, "onset": "2012"},  # "Historical" is no R4 clinical status
    "c900010005": rejected("entered-in-error"),  # verificationStatus text only
}


def check(resource: dict[str, Any], expected: dict[str, Any], ehr: str, ehr_patient_id: str) -> None:
    if "rejected" in expected:
        with pytest.raises(InboundMappingError) as error:
            from_fhir_condition(resource, patient_id="pt-1", ehr=ehr, ehr_patient_id=ehr_patient_id)
        assert error.value.reasons == expected["rejected"]
        return
    record = from_fhir_condition(resource, patient_id="pt-1", ehr=ehr, ehr_patient_id=ehr_patient_id)
    data = record.model_dump(mode="json", exclude_none=True)
    assert {key: data.get(key) for key in expected} == expected
    assert data["patient_id"] == "pt-1"
    assert (data["source"]["ehr"], data["source"]["id"]) == (ehr, resource["id"])


@pytest.mark.parametrize(("resource", "expected"), table("epic-conditions.json", "Condition", EPIC))
def test_epic_conditions(resource: dict[str, Any], expected: dict[str, Any]) -> None:
    check(resource, expected, "epic-test", EPIC_PATIENT)


@pytest.mark.parametrize(("resource", "expected"), table("oracle-conditions.json", "Condition", ORACLE))
def test_oracle_conditions(resource: dict[str, Any], expected: dict[str, Any]) -> None:
    check(resource, expected, "oracle-test", ORACLE_PATIENT)


def _epic(resource_id: str = "eTstCnd1.aB3dE6gH9jK2mN5pQ8sT1vW4") -> dict[str, Any]:
    return copy.deepcopy(entry("epic-conditions.json", "Condition", resource_id))


def _without(resource: dict[str, Any], *keys: str) -> dict[str, Any]:
    for key in keys:
        resource.pop(key)
    return resource


def _with(resource: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**resource, **fields}


@pytest.mark.parametrize(
    ("resource", "reasons"),
    [
        pytest.param(
            _without(_epic(), "code", "subject", "category", "id"),
            [
                "Condition.code has neither coding nor text",
                "Condition.subject has no patient reference",
                "Condition.category has no problem-list-item, encounter-diagnosis or health-concern code",
                "Condition.id is missing or not a FHIR id",
            ],
            id="every-reason-listed",
        ),
        pytest.param(
            _with(_epic(), code={"coding": [{"display": "display only"}, {"system": SNOMED}]}),
            ["Condition.code has neither coding nor text"],
            id="codings-without-system-and-code",
        ),
        pytest.param(
            _with(_epic(), subject={"reference": "Group/g1"}),
            ["Condition.subject does not reference a Patient"],
            id="subject-not-a-patient",
        ),
        pytest.param(
            _with(_epic(), subject={"display": "name only"}),
            ["Condition.subject has no patient reference"],
            id="subject-display-only",
        ),
        pytest.param(
            _with(_epic(), subject={"reference": "Patient/someone-else"}),
            ["Condition.subject references another patient than the one imported"],
            id="subject-another-patient",
        ),
        pytest.param(
            _with(_epic(), abatementDateTime="2020"),
            [
                "Condition.abatement is given but clinicalStatus is not inactive, remission or resolved (con-4)"
            ],
            id="abated-but-active",
        ),
        pytest.param(
            _with(_epic(), category=[{"text": "Problem List"}]),
            ["Condition.category has no problem-list-item, encounter-diagnosis or health-concern code"],
            id="category-text-only",
        ),
        pytest.param(
            _with(_epic(), resourceType="Observation"), ["resourceType is not Condition"], id="wrong-type"
        ),
    ],
)
def test_rejections(resource: dict[str, Any], reasons: list[str]) -> None:
    with pytest.raises(InboundMappingError) as error:
        from_fhir_condition(resource, patient_id="pt-1", ehr_patient_id=EPIC_PATIENT)
    assert error.value.reasons == reasons
    assert error.value.resource_type == "Condition"
    assert_phi_free(error.value.reasons, resource)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param({"onsetDateTime": "2019-02-30"}, None, id="impossible-date-dropped"),
        pytest.param({"onsetDateTime": "2019-02-03T10:00:00"}, None, id="time-without-offset-dropped"),
        pytest.param({"onsetDateTime": "20190203"}, None, id="not-iso-dropped"),
        pytest.param({"onsetAge": {"value": 30, "unit": "a"}}, None, id="age-dropped"),
        pytest.param({"onsetPeriod": {"start": "2018-07"}}, "2018-07", id="period-start"),
        pytest.param(
            {"onsetDateTime": "2019-02-03T10:00:00.1234567+05:30"},
            "2019-02-03T10:00:00.123456+05:30",
            id="long-fraction",
        ),
    ],
)
def test_onset_parsing_is_lenient(fields: dict[str, Any], expected: str | None) -> None:
    resource = _without(_epic(), "onsetDateTime") | fields
    record = from_fhir_condition(resource, patient_id="pt-1")
    assert record.model_dump(mode="json")["onset"] == expected


def test_category_from_several_codings_and_concepts() -> None:
    resource = _with(
        _epic(),
        category=[
            {"coding": [{"system": "urn:oid:1.2.3", "code": "1"}]},
            {
                "coding": [
                    {
                        "system": "http://hl7.org/fhir/us/core/CodeSystem/condition-category",
                        "code": "health-concern",
                    },
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                        "code": "problem-list-item",
                    },
                ]
            },
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                        "code": "problem-list-item",
                    }
                ]
            },
        ],
    )
    assert [c.value for c in from_fhir_condition(resource, patient_id="p").category] == [
        "health-concern",
        "problem-list-item",
    ]


def test_absolute_and_versioned_subject_reference() -> None:
    resource = _with(
        _epic(), subject={"reference": f"https://ehr.example/fhir/Patient/{EPIC_PATIENT}/_history/3"}
    )
    assert from_fhir_condition(resource, patient_id="p", ehr_patient_id=EPIC_PATIENT).patient_id == "p"


def test_duplicate_codings_and_bad_codings_are_dropped() -> None:
    coding = {"system": SNOMED, "code": "370143000", "display": "Major depressive disorder"}
    resource = _with(
        _epic(),
        code={"coding": [coding, dict(coding, display="again"), {"system": "not a uri", "code": "x"}]},
    )
    record = from_fhir_condition(resource, patient_id="p")
    assert [c.model_dump(exclude_none=True) for c in record.codes] == [coding]
    assert record.text is None
