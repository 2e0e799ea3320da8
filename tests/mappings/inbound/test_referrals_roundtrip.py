"""Imported referral records -> US Core Condition / MedicationRequest / AllergyIntolerance (mappings.referrals):
golden pairs, US Core profiles, and the round trip ``from_fhir_*(to_fhir_*(record)) == record``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings

from mappings.inbound import (
    InboundMappingError,
    from_fhir_allergy,
    from_fhir_condition,
    from_fhir_medication_request,
)
from mappings.lifecycle import entered_in_error
from mappings.outbound import map_record
from mappings.records import (
    IMPORTED_KINDS,
    RECORD_KINDS,
    AllergyRecord,
    ConditionRecord,
    MedicationRecord,
    RecordSource,
)
from mappings.referrals import (
    ENCOUNTER_DIAGNOSIS_PROFILE,
    PROBLEMS_PROFILE,
    parse_source_uri,
    source_uri,
    to_fhir_allergy,
    to_fhir_condition,
    to_fhir_medication_request,
)
from tests.mappings.conftest import assert_golden, make_context
from tests.mappings.inbound.inbound_support import (
    allergies,
    conditions,
    included_medications,
    load_case,
    matches,
    medications,
    profile_errors,
)
from tests.mappings.outbound_checks import EXTERNAL_ID, as_json, assert_valid

TO_FHIR: dict[str, Callable[..., Any]] = {
    "conditions": to_fhir_condition,
    "medications": to_fhir_medication_request,
    "allergies": to_fhir_allergy,
}
FROM_FHIR: dict[str, Callable[..., Any]] = {
    "conditions": from_fhir_condition,
    "medications": from_fhir_medication_request,
    "allergies": from_fhir_allergy,
}
GOLDEN = [
    "referral-condition-problem",
    "referral-condition-encounter",
    "referral-medication-request",
    "referral-medication-request-reported",
    "referral-allergy",
]


def map_case(name: str) -> Any:
    case = load_case(name)
    return TO_FHIR[case.kind](case.record, external_id=case.external_id, ctx=case.ctx)


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in GOLDEN])
def test_golden(name: str) -> None:
    assert_golden(name, [map_case(name)])


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in GOLDEN])
def test_golden_passes_schema_and_profiles(name: str, profile_validator) -> None:
    data = assert_valid(map_case(name))
    assert profile_errors(profile_validator, data) == []


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in GOLDEN])
def test_golden_round_trip(name: str) -> None:
    case = load_case(name)
    resource = map_case(name)
    assert FROM_FHIR[case.kind](resource.model_dump(), patient_id=case.record.patient_id) == case.record
    assert FROM_FHIR[case.kind](as_json(resource), patient_id=case.record.patient_id) == case.record


def test_ids_identifier_reference_and_source(ctx) -> None:
    case = load_case("referral-allergy")
    data = as_json(map_case("referral-allergy"))
    assert data["id"] == ctx.id_of("allergies", case.external_id, "")
    assert data["identifier"] == [
        {"system": "https://gateway.test/id/golden/allergies", "value": case.external_id}
    ]
    assert data["patient"] == {"reference": f"Patient/{ctx.id_of('patients', 'pt-0001')}"}
    assert (
        data["meta"]["source"]
        == "urn:kapgw:ehr:epic-sandbox#AllergyIntolerance/eTstAlg1.cE7gI0kM3oQ6sU9wY2aC5e"
    )
    assert "versionId" not in data["meta"] and "lastUpdated" not in data["meta"]


@pytest.mark.parametrize(
    ("category", "profiles"),
    [
        pytest.param(["problem-list-item"], [PROBLEMS_PROFILE], id="problem-list-item"),
        pytest.param(["health-concern"], [PROBLEMS_PROFILE], id="health-concern"),
        pytest.param(["encounter-diagnosis"], [ENCOUNTER_DIAGNOSIS_PROFILE], id="encounter-diagnosis"),
        pytest.param(
            ["encounter-diagnosis", "problem-list-item"],
            [PROBLEMS_PROFILE, ENCOUNTER_DIAGNOSIS_PROFILE],
            id="both",
        ),
    ],
)
def test_condition_profile_by_category(ctx, category: list[str], profiles: list[str]) -> None:
    record = ConditionRecord.model_validate(
        {**load_case("referral-condition-problem").record.model_dump(), "category": category}
    )
    assert as_json(to_fhir_condition(record, external_id="c1", ctx=ctx))["meta"]["profile"] == profiles


@pytest.mark.parametrize(
    "source",
    [
        pytest.param({"ehr": None, "resource_type": "Condition", "id": "a"}, id="no-ehr"),
        pytest.param(
            {"ehr": "epic", "resource_type": "Condition", "id": "a.b-c", "version": "7"}, id="versioned"
        ),
    ],
)
def test_source_uri_round_trip(source: dict[str, Any]) -> None:
    parsed = parse_source_uri(source_uri(RecordSource.model_validate(source)))
    assert RecordSource.model_validate(parsed) == RecordSource.model_validate(source)


@pytest.mark.parametrize("uri", ["http://ehr.example/fhir", "urn:kapgw:ehr#Condition", None, 3])
def test_foreign_meta_source_is_not_ours(uri: Any) -> None:
    assert parse_source_uri(uri) is None


def test_deleted_referral_is_rejected_on_reimport(ctx) -> None:
    """lifecycle.entered_in_error marks a served Condition; importing that version back is refused."""
    case = load_case("referral-condition-problem")
    marked = entered_in_error(as_json(map_case("referral-condition-problem")))
    assert marked is not None
    with pytest.raises(InboundMappingError) as error:
        from_fhir_condition(marked, patient_id=case.record.patient_id)
    assert error.value.reasons == ["entered-in-error"]


def test_imported_kinds_are_read_only_and_mapped() -> None:
    assert set(IMPORTED_KINDS) == {"conditions", "medications", "allergies"}
    assert not set(IMPORTED_KINDS) & set(RECORD_KINDS)
    assert all(not model.writable for model in IMPORTED_KINDS.values())
    case = load_case("referral-medication-request")
    [resource] = map_record(case.kind, case.external_id, case.record, case.ctx)
    assert resource.get_resource_type() == "MedicationRequest"


# --------------------------------------------------------------------------- every fixture entry, served

FIXTURE_ENTRIES = [
    ("epic-conditions.json", "Condition", "conditions"),
    ("oracle-conditions.json", "Condition", "conditions"),
    ("epic-medication-requests.json", "MedicationRequest", "medications"),
    ("epic-allergies.json", "AllergyIntolerance", "allergies"),
    ("oracle-allergies.json", "AllergyIntolerance", "allergies"),
]


def _imported() -> list[Any]:
    params = []
    for fixture, resource_type, kind in FIXTURE_ENTRIES:
        kwargs = (
            {"contained_or_referenced_medications": included_medications(fixture)}
            if kind == "medications"
            else {}
        )
        for resource in matches(fixture, resource_type):
            try:
                record = FROM_FHIR[kind](resource, patient_id="pt-1", ehr="sandbox", **kwargs)
            except InboundMappingError:
                continue
            params.append(pytest.param(kind, record, id=f"{fixture.removesuffix('.json')}:{resource['id']}"))
    return params


@pytest.mark.parametrize(("kind", "record"), _imported())
def test_every_imported_fixture_entry_is_served_valid_and_round_trips(
    kind: str,
    record: Any,
    profile_validator,
) -> None:
    resource = TO_FHIR[kind](record, external_id="r-1", ctx=make_context())
    data = assert_valid(resource)
    assert profile_errors(profile_validator, data) == []
    assert FROM_FHIR[kind](json.loads(json.dumps(data)), patient_id="pt-1") == record


# --------------------------------------------------------------------------- properties


def _property(kind: str, record: Any, external_id: str, validator: Any) -> None:
    ctx = make_context()
    resource = TO_FHIR[kind](record, external_id=external_id, ctx=ctx)
    data = assert_valid(resource)
    assert profile_errors(validator, data) == []
    assert FROM_FHIR[kind](resource.model_dump(), patient_id=record.patient_id) == record
    assert FROM_FHIR[kind](data, patient_id=record.patient_id) == record


@settings(max_examples=40, deadline=None)
@given(record=conditions(), external_id=EXTERNAL_ID)
def test_any_condition_maps_to_valid_fhir_and_back(
    record: ConditionRecord,
    external_id: str,
    profile_validator,
) -> None:
    _property("conditions", record, external_id, profile_validator)


@settings(max_examples=40, deadline=None)
@given(record=medications(), external_id=EXTERNAL_ID)
def test_any_medication_maps_to_valid_fhir_and_back(
    record: MedicationRecord,
    external_id: str,
    profile_validator,
) -> None:
    _property("medications", record, external_id, profile_validator)


@settings(max_examples=40, deadline=None)
@given(record=allergies(), external_id=EXTERNAL_ID)
def test_any_allergy_maps_to_valid_fhir_and_back(
    record: AllergyRecord,
    external_id: str,
    profile_validator,
) -> None:
    _property("allergies", record, external_id, profile_validator)
