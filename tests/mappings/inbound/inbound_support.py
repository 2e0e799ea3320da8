"""Shared by the referral import tests: the synthetic EHR payloads in fixtures/ehr/, hypothesis strategies for
the imported record kinds, and US Core checks of the resources ``mappings.referrals`` serves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from hypothesis import strategies as st
from support.fhir_validator import US_CORE, ProfileValidator, errors_only

from mappings.context import MappingContext
from mappings.fhir_text import fhir_string
from mappings.records import (
    ABATED_STATUSES,
    IMPORTED_KINDS,
    AllergyCategory,
    AllergyClinicalStatus,
    AllergyCriticality,
    AllergyReaction,
    AllergyRecord,
    AllergyType,
    AllergyVerificationStatus,
    ConditionCategory,
    ConditionClinicalStatus,
    ConditionRecord,
    ConditionVerificationStatus,
    MedicationRecord,
    MedicationRequestIntent,
    MedicationRequestStatus,
    RecordCoding,
    RecordConcept,
    RecordSource,
    Severity,
)
from tests.mappings.conftest import FIXTURES, load_clinic_fixture, make_context
from tests.mappings.outbound_checks import AWARE, EXTERNAL_ID

EHR = FIXTURES / "ehr"


# --------------------------------------------------------------------------- EHR payloads


def load_bundle(name: str) -> dict[str, Any]:
    return json.loads((EHR / name).read_text())


def matches(name: str, resource_type: str) -> list[dict[str, Any]]:
    """The ``search.mode: match`` resources of one type in a fixture searchset."""
    return [
        entry["resource"]
        for entry in load_bundle(name)["entry"]
        if entry.get("search", {}).get("mode") == "match"
        and entry["resource"]["resourceType"] == resource_type
    ]


def included_medications(name: str) -> dict[str, dict[str, Any]]:
    """``search.mode: include`` Medications of a searchset, keyed ``Medication/<id>`` as the sync client does."""
    return {
        f"Medication/{entry['resource']['id']}": entry["resource"]
        for entry in load_bundle(name)["entry"]
        if entry.get("search", {}).get("mode") == "include"
        and entry["resource"]["resourceType"] == "Medication"
    }


def entry(name: str, resource_type: str, resource_id: str) -> dict[str, Any]:
    [found] = [r for r in matches(name, resource_type) if r["id"] == resource_id]
    return found


def table(name: str, resource_type: str, expected: dict[str, Any]) -> list[Any]:
    """pytest.params ``(resource, expected)`` for every match entry of a fixture, id ``<fixture>:<entry id>``.

    Fails at collection when the table and the fixture disagree, so no fixture entry goes untested.
    """
    resources = {r["id"]: r for r in matches(name, resource_type)}
    assert set(resources) == set(expected), f"{name}: table does not cover exactly the fixture entries"
    stem = name.removesuffix(".json")
    return [pytest.param(resources[rid], want, id=f"{stem}:{rid}") for rid, want in expected.items()]


def strings_in(node: Any) -> set[str]:
    """Every string value in a payload (to check that rejection reasons quote none of them)."""
    if isinstance(node, dict):
        return set().union(*(strings_in(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(strings_in(v) for v in node)) if node else set()
    return {node} if isinstance(node, str) else set()


#: payload values that may legitimately appear inside a reason (FHIR element and code names)
FHIR_WORDS = {
    "Patient",
    "Condition",
    "MedicationRequest",
    "Medication",
    "AllergyIntolerance",
    "Observation",
    "entered-in-error",
    "active",
    "inactive",
    "resolved",
    "remission",
    "unknown",
    "problem-list-item",
    "encounter-diagnosis",
    "health-concern",
}


def assert_phi_free(reasons: list[str], resource: dict[str, Any]) -> None:
    values = {v for v in strings_in(resource) if len(v) > 3 and v not in FHIR_WORDS}
    leaked = [(reason, v) for reason in reasons for v in values if v in reason]
    assert leaked == [], leaked


# --------------------------------------------------------------------------- golden cases


@dataclass(frozen=True)
class Case:
    kind: str
    external_id: str
    record: Any
    ctx: MappingContext


def load_case(name: str) -> Case:
    data = load_clinic_fixture(name)
    assert data.get("related", []) == []  # referral mappings need no related records
    return Case(
        data["kind"], data["id"], IMPORTED_KINDS[data["kind"]].model_validate(data["record"]), make_context()
    )


# --------------------------------------------------------------------------- US Core checks

PROBLEMS = US_CORE + "us-core-condition-problems-health-concerns"
ENCOUNTER_DIAGNOSIS = US_CORE + "us-core-condition-encounter-diagnosis"
MEDICATION_REQUEST = US_CORE + "us-core-medicationrequest"
ALLERGY = US_CORE + "us-core-allergyintolerance"

#: Mandatory (1..) elements and fixed category codes of the US Core 6.1 profiles whose 5.0.1
#: StructureDefinitions the offline validator does not ship (it has us-core-medicationrequest only):
#: https://hl7.org/fhir/us/core/STU6.1/StructureDefinition-us-core-condition-problems-health-concerns.html,
#: -us-core-condition-encounter-diagnosis.html, -us-core-allergyintolerance.html ("Key Elements").
MANDATORY: dict[str, tuple[str, ...]] = {
    PROBLEMS: ("category", "code", "subject", "subject.reference"),
    ENCOUNTER_DIAGNOSIS: ("category", "code", "subject", "subject.reference"),
    ALLERGY: ("code", "patient", "patient.reference"),  # reaction.manifestation 1..*: base R4 checks it
}
#: category codes each Condition profile's ``category:us-core`` slice requires (at least one present)
CATEGORY_SLICE = {
    PROBLEMS: {
        ("http://terminology.hl7.org/CodeSystem/condition-category", "problem-list-item"),
        ("http://hl7.org/fhir/us/core/CodeSystem/condition-category", "health-concern"),
    },
    ENCOUNTER_DIAGNOSIS: {
        ("http://terminology.hl7.org/CodeSystem/condition-category", "encounter-diagnosis")
    },
}


def _present(node: Any, path: list[str]) -> bool:
    if isinstance(node, list):
        return all(_present(item, path) for item in node) if path else bool(node)
    if not path:
        return node not in (None, "", [], {})
    return isinstance(node, dict) and path[0] in node and _present(node[path[0]], path[1:])


def profile_errors(validator: ProfileValidator, resource: dict[str, Any]) -> list[str]:
    """Base R4 errors plus, per declared profile, @medplum/core's US Core 5.0.1 errors where loaded, else
    the hand checks above (mandatory elements and the category slice)."""
    declared = resource["meta"]["profile"]
    loaded = [p for p in declared if p in validator.profiles]
    errors = [str(issue) for issue in errors_only(validator.validate_one(resource, loaded))]
    for profile in declared:
        if profile in loaded:
            continue
        assert profile in MANDATORY, f"no offline check for {profile}"
        errors += [
            f"{profile}: {p} missing" for p in MANDATORY[profile] if not _present(resource, p.split("."))
        ]
        if profile in CATEGORY_SLICE:
            codes = {(c["system"], c["code"]) for cat in resource["category"] for c in cat.get("coding", [])}
            if not codes & CATEGORY_SLICE[profile]:
                errors.append(f"{profile}: category:us-core slice missing")
    return errors


# --------------------------------------------------------------------------- hypothesis strategies

SYSTEMS = st.sampled_from(
    [
        "http://snomed.info/sct",
        "http://hl7.org/fhir/sid/icd-10-cm",
        "http://www.nlm.nih.gov/research/umls/rxnorm",
        "http://hl7.org/fhir/sid/ndc",
        "urn:oid:1.2.840.114350.1.13.0.1.7.2.999999.1",
        "https://fhir.cerner.com/00000000-0000-4000-8000-000000000000/nomenclature",
    ]
)
CODES = st.from_regex(r"[A-Za-z0-9.\-]{1,12}( [A-Za-z0-9]{1,4})?", fullmatch=True)
#: free text incl. Unicode spaces and U+FEFF (the record turns them into FHIR-safe text) and newlines
TEXT = st.text(
    alphabet=st.characters(
        categories=["L", "N", "P", "Zs"], max_codepoint=0x3000, include_characters="\ufeff\n"
    ),
    min_size=1,
    max_size=60,
).filter(lambda s: fhir_string(s.strip()) != "\ufffd" and s.strip() != "")
CODINGS = st.lists(
    st.builds(RecordCoding, system=SYSTEMS, code=CODES, display=st.none() | TEXT),
    max_size=4,
    unique_by=lambda c: (c.system, c.code),
)
FHIR_DATETIMES = st.one_of(
    st.integers(1900, 2100).map(str),
    st.tuples(st.integers(1900, 2100), st.integers(1, 12)).map(lambda ym: f"{ym[0]:04d}-{ym[1]:02d}"),
    st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)),
    AWARE,
)
FHIR_IDS = st.from_regex(r"[A-Za-z0-9\-.]{1,64}", fullmatch=True)


def sources(resource_type: str) -> st.SearchStrategy[RecordSource]:
    return st.builds(
        RecordSource,
        ehr=st.none() | EXTERNAL_ID,
        resource_type=st.just(resource_type),
        id=FHIR_IDS,
        version=st.none() | FHIR_IDS,
    )


@st.composite
def _code_and_text(draw: st.DrawFn) -> dict[str, Any]:
    codes = draw(CODINGS)
    return {"codes": codes, "text": draw(st.none() | TEXT) if codes else draw(TEXT)}


@st.composite
def conditions(draw: st.DrawFn) -> ConditionRecord:
    abatement = draw(st.none() | FHIR_DATETIMES)
    statuses = sorted(ABATED_STATUSES) if abatement is not None else [None, *ConditionClinicalStatus]
    return ConditionRecord(
        patient_id=draw(EXTERNAL_ID),
        **draw(_code_and_text()),
        clinical_status=draw(st.sampled_from(statuses)),
        verification_status=draw(st.none() | st.sampled_from(ConditionVerificationStatus)),
        category=draw(st.lists(st.sampled_from(ConditionCategory), min_size=1, max_size=3, unique=True)),
        onset=draw(st.none() | FHIR_DATETIMES),
        abatement=abatement,
        recorded_date=draw(st.none() | FHIR_DATETIMES),
        source=draw(sources("Condition")),
    )


@st.composite
def medications(draw: st.DrawFn) -> MedicationRecord:
    return MedicationRecord(
        patient_id=draw(EXTERNAL_ID),
        **draw(_code_and_text()),
        status=draw(st.sampled_from(MedicationRequestStatus)),
        intent=draw(st.sampled_from(MedicationRequestIntent)),
        authored_on=draw(st.none() | FHIR_DATETIMES),
        dosage_text=draw(st.none() | TEXT),
        requester_display=draw(st.none() | TEXT),
        reported=draw(st.none() | st.booleans()),
        source=draw(sources("MedicationRequest")),
    )


CONCEPTS = _code_and_text().map(lambda fields: RecordConcept(**fields))
REACTIONS = st.builds(
    AllergyReaction,
    manifestations=st.lists(CONCEPTS, min_size=1, max_size=3),
    severity=st.none() | st.sampled_from(Severity),
)


@st.composite
def allergies(draw: st.DrawFn) -> AllergyRecord:
    return AllergyRecord(
        patient_id=draw(EXTERNAL_ID),
        **draw(_code_and_text()),
        clinical_status=draw(st.sampled_from(AllergyClinicalStatus)),
        verification_status=draw(st.none() | st.sampled_from(AllergyVerificationStatus)),
        type=draw(st.none() | st.sampled_from(AllergyType)),
        category=draw(st.lists(st.sampled_from(AllergyCategory), max_size=4, unique=True)),
        criticality=draw(st.none() | st.sampled_from(AllergyCriticality)),
        onset=draw(st.none() | FHIR_DATETIMES),
        reactions=draw(st.lists(REACTIONS, max_size=3)),
        recorded_date=draw(st.none() | FHIR_DATETIMES),
        source=draw(sources("AllergyIntolerance")),
    )
