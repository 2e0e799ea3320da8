"""entered_in_error: what a stored resource becomes when its clinic record is deleted."""

from __future__ import annotations

import copy
import functools
import json

import pytest
from support.fhir_validator import (  # noqa: F401  (profile_validator: session fixture)
    DEFINITIONS_DIR,
    errors_only,
    json_schema_errors,
    profile_validator,
    require_validator,
)

from mappings.lifecycle import STATUS_TYPES, entered_in_error
from tests.mappings.conftest import FIXTURES
from tests.mappings.outbound_checks import profile_errors

PATIENT_REF = {"reference": "Patient/p-1"}

CONDITION = {
    "resourceType": "Condition",
    "id": "c-1",
    "clinicalStatus": {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
    },
    "verificationStatus": {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}
        ]
    },
    "category": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                    "code": "problem-list-item",
                }
            ]
        }
    ],
    "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F33.2"}]},
    "subject": PATIENT_REF,
}
ALLERGY = {
    "resourceType": "AllergyIntolerance",
    "id": "a-1",
    "clinicalStatus": {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}
        ]
    },
    "verificationStatus": {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                "code": "confirmed",
            }
        ]
    },
    "code": {"text": "Synthetic allergen"},
    "patient": PATIENT_REF,
}
OBSERVATION = {
    "resourceType": "Observation",
    "id": "o-1",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
    "subject": PATIENT_REF,
    "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
}
QUESTIONNAIRE_RESPONSE = {
    "resourceType": "QuestionnaireResponse",
    "id": "q-1",
    "status": "completed",
    "subject": PATIENT_REF,
}
MEDICATION_REQUEST = {
    "resourceType": "MedicationRequest",
    "id": "m-1",
    "status": "active",
    "intent": "order",
    "medicationCodeableConcept": {"text": "Synthetic medication"},
    "subject": PATIENT_REF,
}


def golden(name: str, index: int = 0) -> dict:
    return json.loads((FIXTURES / "fhir" / f"{name}.json").read_text())[index]


@pytest.mark.parametrize(
    "resource",
    [
        pytest.param(golden("session-dosing-iv", 0), id="Encounter"),
        pytest.param(golden("session-dosing-iv", 1), id="Procedure"),
        pytest.param(golden("dose-iv-infusion"), id="MedicationAdministration"),
        pytest.param(OBSERVATION, id="Observation"),
        pytest.param(QUESTIONNAIRE_RESPONSE, id="QuestionnaireResponse"),
        pytest.param(MEDICATION_REQUEST, id="MedicationRequest"),
    ],
)
def test_status_becomes_entered_in_error(resource: dict, profile_validator) -> None:  # noqa: F811
    before = copy.deepcopy(resource)
    marked = entered_in_error(resource)
    assert resource == before  # never mutated
    assert marked is not None
    assert marked["status"] == "entered-in-error"
    assert {k: v for k, v in marked.items() if k != "status"} == {
        k: v for k, v in resource.items() if k != "status"
    }
    assert json_schema_errors(marked) == []
    assert profile_errors(profile_validator, marked) == []


@pytest.mark.parametrize(
    ("resource", "system"),
    [
        pytest.param(CONDITION, "http://terminology.hl7.org/CodeSystem/condition-ver-status", id="Condition"),
        pytest.param(
            ALLERGY,
            "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
            id="AllergyIntolerance",
        ),
    ],
)
def test_verification_status_becomes_entered_in_error(resource: dict, system: str, profile_validator) -> None:  # noqa: F811
    before = copy.deepcopy(resource)
    marked = entered_in_error(resource)
    assert resource == before
    assert marked is not None
    assert marked["verificationStatus"] == {
        "coding": [{"system": system, "code": "entered-in-error", "display": "Entered in Error"}]
    }
    assert "clinicalStatus" not in marked  # con-5 / ait-2
    assert json_schema_errors(marked) == []
    assert errors_only(profile_validator.validate_one(marked)) == []


@pytest.mark.parametrize(
    "resource",
    [
        pytest.param(golden("patient-full"), id="Patient"),
        pytest.param(golden("practitioner"), id="Practitioner"),
        pytest.param(golden("organization"), id="Organization"),
        pytest.param(golden("adverse-event"), id="AdverseEvent"),
        pytest.param(golden("provenance"), id="Provenance"),
        pytest.param(
            {"resourceType": "Questionnaire", "status": "active"}, id="Questionnaire-publication-status"
        ),
        pytest.param({}, id="no-resourceType"),
    ],
)
def test_resources_without_such_a_status_are_deleted(resource: dict) -> None:
    assert entered_in_error(resource) is None


def test_marking_twice_changes_nothing() -> None:
    once = entered_in_error(golden("dose-iv-infusion"))
    assert once is not None
    assert entered_in_error(once) == once


@functools.cache
def r4_status_codes() -> dict[str, set[str]]:
    """Resource type -> codes of the value set bound to its ``status`` (FHIR R4 4.0.1 definitions)."""
    require_validator(need_node=False)

    def resources(name: str) -> list[dict]:
        return [e["resource"] for e in json.loads((DEFINITIONS_DIR / name).read_text())["entry"]]

    terminology = resources("valuesets.json") + resources("v3-codesystems.json")
    value_sets = {r["url"]: r for r in terminology if r["resourceType"] == "ValueSet"}
    code_systems = {r["url"]: r for r in terminology if r["resourceType"] == "CodeSystem"}

    def concepts(items: list[dict]) -> set[str]:
        return {c["code"] for c in items} | {code for c in items for code in concepts(c.get("concept", []))}

    def expand(url: str) -> set[str]:
        codes: set[str] = set()
        for include in value_sets[url.split("|")[0]]["compose"]["include"]:
            if "concept" in include:
                codes |= {c["code"] for c in include["concept"]}
            else:
                codes |= concepts(code_systems[include["system"]]["concept"])
        return codes

    result = {}
    for sd in resources("profiles-resources.json"):
        if sd["resourceType"] != "StructureDefinition":
            continue
        for element in sd.get("snapshot", {}).get("element", []):
            if element["path"] == f"{sd['type']}.status" and "valueSet" in element.get("binding", {}):
                result[sd["type"]] = expand(element["binding"]["valueSet"])
    return result


@pytest.mark.parametrize("resource_type", [pytest.param(t, id=t) for t in sorted(STATUS_TYPES)])
def test_every_status_type_allows_entered_in_error(resource_type: str) -> None:
    assert "entered-in-error" in r4_status_codes()[resource_type]


@pytest.mark.parametrize(
    "resource_type", ["AdverseEvent", "Patient", "Practitioner", "Provenance", "Questionnaire"]
)
def test_deleted_types_have_no_entered_in_error_status(resource_type: str) -> None:
    assert "entered-in-error" not in r4_status_codes().get(resource_type, set())
