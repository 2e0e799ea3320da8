"""The independent validator (tests/support/fhir_validator.py + tools/fhir-validator) catches real faults.

Every case is judged by two layers that share no code with fhir.resources: the official R4 JSON schema
and @medplum/core ``validateResource`` with US Core 5.0.1 / base R4 profiles. All data is synthetic.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from support.fhir_validator import (
    DEFINITIONS_DIR,
    R4_CORE,
    US_CORE,
    US_CORE_PROFILES,
    ProfileValidator,
    errors_only,
    json_schema_errors,
    r4_resource_types,
    require_validator,
    schema_backends,
)

US_CORE_PATIENT = US_CORE + "us-core-patient"
US_CORE_BP = US_CORE + "us-core-blood-pressure"
R4_HEART_RATE = R4_CORE + "heartrate"  # US Core 5.0.1 us-core-heart-rate is not in the Medplum bundle
R4_VITAL_SIGNS = R4_CORE + "vitalsigns"
R4_BP = R4_CORE + "bp"

UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
VITAL_SIGNS_CATEGORY = [
    {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}
        ]
    }
]

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "synthetic-1",
    "identifier": [{"system": "urn:oid:2.16.840.1.113883.3.9999.1", "value": "KAP-0001"}],
    "name": [{"family": "Testperson", "given": ["Alex"]}],
    "gender": "female",
    "birthDate": "1985-04-12",
}

HEART_RATE: dict[str, Any] = {
    "resourceType": "Observation",
    "status": "final",
    "category": VITAL_SIGNS_CATEGORY,
    "code": {"coding": [{"system": LOINC, "code": "8867-4", "display": "Heart rate"}]},
    "subject": {"reference": "Patient/synthetic-1"},
    "effectiveDateTime": "2024-03-01T10:15:00Z",
    "valueQuantity": {"value": 72, "unit": "beats/minute", "system": UCUM, "code": "/min"},
}


def _bp_component(loinc: str, value: int, unit_code: str = "mm[Hg]") -> dict[str, Any]:
    return {
        "code": {"coding": [{"system": LOINC, "code": loinc}]},
        "valueQuantity": {"value": value, "unit": "mmHg", "system": UCUM, "code": unit_code},
    }


BLOOD_PRESSURE: dict[str, Any] = {
    "resourceType": "Observation",
    "status": "final",
    "category": VITAL_SIGNS_CATEGORY,
    "code": {"coding": [{"system": LOINC, "code": "85354-9", "display": "Blood pressure panel"}]},
    "subject": {"reference": "Patient/synthetic-1"},
    "effectiveDateTime": "2024-03-01T10:15:00Z",
    "component": [_bp_component("8480-6", 120), _bp_component("8462-4", 80)],
}

QUESTIONNAIRE_RESPONSE: dict[str, Any] = {
    "resourceType": "QuestionnaireResponse",
    "status": "completed",
    "questionnaire": "http://example.org/fhir/Questionnaire/gad-7",
    "subject": {"reference": "Patient/synthetic-1"},
    "authored": "2024-03-01T09:50:00Z",
    "item": [
        {"linkId": "1", "text": "Feeling nervous, anxious or on edge", "answer": [{"valueInteger": 1}]},
        {"linkId": "total", "answer": [{"valueInteger": 7}]},
    ],
}


def changed(resource: dict[str, Any], *, drop: Sequence[str] = (), **updates: Any) -> dict[str, Any]:
    out = copy.deepcopy(resource)
    for key in drop:
        del out[key]
    out.update(updates)
    return out


def _with_heart_rate_code(code: str) -> dict[str, Any]:
    return changed(HEART_RATE, code={"coding": [{"system": LOINC, "code": code}]})


def _with_bp_units(unit_code: str) -> dict[str, Any]:
    return changed(
        BLOOD_PRESSURE,
        component=[_bp_component("8480-6", 16, unit_code), _bp_component("8462-4", 11, unit_code)],
    )


# Expectations: () = must be clean; a tuple of substrings = each must appear in some error;
# None = not asserted here (a known gap of that layer, pinned in KNOWN_GAPS below).
CASES = [
    pytest.param(PATIENT, [US_CORE_PATIENT], (), (), id="us-core-patient-valid"),
    pytest.param(changed(PATIENT, gender="x"), [US_CORE_PATIENT], ("Patient.gender",), None, id="gender-x"),
    pytest.param(
        changed(PATIENT, drop=["identifier"]),
        [US_CORE_PATIENT],
        (),
        ("Patient.identifier: Missing required property",),
        id="us-core-patient-no-identifier",
    ),
    pytest.param(
        {"resourceType": "Patient", "birthDate": "nope", "active": "yes", "foo": 1},
        [],
        ("Patient.birthDate", "Patient.active", '"foo" was unexpected'),
        ("Patient.birthDate: Invalid date format", "Patient.active", 'Invalid additional property "foo"'),
        id="patient-bad-types",
    ),
    pytest.param(
        changed(HEART_RATE, drop=["code"]),
        [],
        ('"code" is a required property',),
        ("Observation.code: Missing required property",),
        id="observation-no-code",
    ),
    pytest.param(changed(HEART_RATE, status="done"), [], ("Observation.status",), None, id="status-done"),
    pytest.param(
        changed(HEART_RATE, dataAbsentReason={"text": "not measured"}),
        [],
        (),
        ("Constraint obs-6 not met",),
        id="obs-6-value-and-data-absent-reason",
    ),
    pytest.param(HEART_RATE, [R4_HEART_RATE, R4_VITAL_SIGNS], (), (), id="heart-rate-valid"),
    pytest.param(
        _with_heart_rate_code("9279-1"),
        [R4_HEART_RATE],
        (),
        ("slice 'HeartRateCode'",),
        id="heart-rate-wrong-loinc",
    ),
    pytest.param(
        changed(HEART_RATE, drop=["category"]),
        [R4_HEART_RATE],
        (),
        ("Observation.category: Missing required property",),
        id="heart-rate-no-category",
    ),
    pytest.param(BLOOD_PRESSURE, [US_CORE_BP, R4_VITAL_SIGNS], (), (), id="us-core-bp-valid"),
    pytest.param(
        changed(BLOOD_PRESSURE, component=[_bp_component("8480-6", 120)]),
        [US_CORE_BP],
        (),
        ("slice 'diastolic'",),
        id="us-core-bp-no-diastolic",
    ),
    pytest.param(
        changed(BLOOD_PRESSURE, code={"coding": [{"system": LOINC, "code": "8867-4"}]}),
        [US_CORE_BP],
        (),
        ("Observation.code: Value did not match expected pattern",),
        id="us-core-bp-wrong-code",
    ),
    pytest.param(QUESTIONNAIRE_RESPONSE, [], (), (), id="questionnaire-response-valid"),
    pytest.param(
        changed(QUESTIONNAIRE_RESPONSE, item=[{"answer": [{"valueInteger": 1}]}]),
        [],
        None,  # the R4 JSON schema never requires primitives (a `_linkId` extension could stand in)
        ("QuestionnaireResponse.item[0].linkId: Missing required property",),
        id="questionnaire-response-item-without-linkid",
    ),
    pytest.param(
        HEART_RATE,
        [US_CORE + "us-core-heart-rate"],
        (),
        ("Profile not loaded: " + US_CORE + "us-core-heart-rate",),
        id="unloaded-profile-is-an-error",
    ),
    pytest.param(
        PATIENT,
        [US_CORE_BP],
        (),
        (f"Profile {US_CORE_BP} constrains Observation, not Patient",),
        id="profile-for-another-type",
    ),
]


def _assert_expected(found: list[str], expected: tuple[str, ...] | None) -> None:
    if expected is None:
        return
    if not expected:
        assert found == [], "expected no errors"
        return
    missing = [want for want in expected if not any(want in text for text in found)]
    assert not missing, f"errors {found} lack {missing}"


@pytest.fixture(params=schema_backends())
def schema_backend(request: pytest.FixtureRequest) -> str:
    require_validator(need_node=False)
    return request.param


@pytest.mark.parametrize(("resource", "profiles", "schema_expect", "profile_expect"), CASES)
def test_json_schema(
    schema_backend: str,
    resource: dict[str, Any],
    profiles: list[str],
    schema_expect: tuple[str, ...] | None,
    profile_expect: tuple[str, ...] | None,
) -> None:
    errors = json_schema_errors(resource, backend=schema_backend)
    # jsonschema quotes with ', jsonschema_rs with "
    _assert_expected([text.replace("'", '"') for text in errors], schema_expect)


@pytest.mark.parametrize(("resource", "profiles", "schema_expect", "profile_expect"), CASES)
def test_profiles(
    profile_validator: ProfileValidator,
    resource: dict[str, Any],
    profiles: list[str],
    schema_expect: tuple[str, ...] | None,
    profile_expect: tuple[str, ...] | None,
) -> None:
    issues = errors_only(profile_validator.validate_one(resource, profiles))
    _assert_expected([f"{i.path}: {i.message}" for i in issues], profile_expect)


def _gap(resource: dict[str, Any], profiles: list[str], reason: str, id: str) -> Any:
    return pytest.param(resource, profiles, id=id, marks=pytest.mark.xfail(strict=True, reason=reason))


# Faults medplum 4.5.2 does not see (xfail strict: a Medplum upgrade that fixes one turns it into XPASS,
# which fails the run so the gap list stays true). The first two are caught by the JSON schema layer;
# the unit faults are caught by neither layer - the gateway's own mapping tests must cover units.
KNOWN_GAPS = [
    _gap(changed(PATIENT, gender="x"), [US_CORE_PATIENT], "no terminology: required bindings", "gender-x"),
    _gap(changed(HEART_RATE, status="done"), [], "no terminology: required bindings", "status-done"),
    _gap(
        changed(HEART_RATE, valueQuantity={"value": 72, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}),
        [R4_HEART_RATE],
        "value[x]:valueQuantity type slice (fixedCode /min) is ignored",
        "heart-rate-wrong-unit",
    ),
    _gap(
        changed(HEART_RATE, valueString="72", drop=["valueQuantity"]),
        [R4_HEART_RATE],
        "closed value[x] type slicing is ignored",
        "heart-rate-value-string",
    ),
    _gap(
        _with_bp_units("kPa"),
        [US_CORE_BP],
        "fixedCode on component:systolic.value[x].code is ignored",
        "us-core-bp-wrong-unit",
    ),
]


@pytest.mark.parametrize(("resource", "profiles"), KNOWN_GAPS)
def test_known_medplum_gaps(
    profile_validator: ProfileValidator, resource: dict[str, Any], profiles: list[str]
) -> None:
    assert errors_only(profile_validator.validate_one(resource, profiles))


@pytest.mark.xfail(
    strict=True, reason="medplum false positive: base R4 bp slices SystolicBP/DiastolicBP unmatched"
)
def test_valid_bp_passes_base_r4_bp_profile(profile_validator: ProfileValidator) -> None:
    assert errors_only(profile_validator.validate_one(BLOOD_PRESSURE, [R4_BP])) == []


# Which US Core profiles the Medplum bundle (fhir/r4/testing/uscore-v5.0.1-structuredefinitions.json)
# really holds: only 4 resource profiles (+ 4 extensions, which are not requestable here).
@pytest.mark.parametrize(
    ("name", "present"),
    [
        pytest.param("us-core-patient", True, id="patient"),
        pytest.param("us-core-blood-pressure", True, id="blood-pressure"),
        pytest.param("us-core-implantable-device", True, id="implantable-device"),
        pytest.param("us-core-medicationrequest", True, id="medicationrequest"),
        pytest.param("us-core-observation-screening-assessment", False, id="screening-assessment"),
        pytest.param("us-core-observation-survey", False, id="observation-survey"),
        pytest.param("us-core-heart-rate", False, id="heart-rate"),
        pytest.param("us-core-vital-signs", False, id="vital-signs"),
        pytest.param("us-core-encounter", False, id="encounter"),
        pytest.param("us-core-procedure", False, id="procedure"),
        pytest.param("us-core-practitioner", False, id="practitioner"),
        pytest.param("us-core-organization", False, id="organization"),
        pytest.param("us-core-provenance", False, id="provenance"),
        pytest.param("us-core-questionnaireresponse", False, id="questionnaireresponse"),
    ],
)
def test_us_core_profile_availability(profile_validator: ProfileValidator, name: str, present: bool) -> None:
    assert (US_CORE + name in profile_validator.profiles) is present


def test_us_core_profiles_constant_matches_loaded_bundle(profile_validator: ProfileValidator) -> None:
    loaded = {url for url in profile_validator.profiles if url.startswith(US_CORE)}
    assert loaded == US_CORE_PROFILES


def test_batches_keep_order_and_survive_bad_requests(profile_validator: ProfileValidator) -> None:
    bad = changed(HEART_RATE, drop=["code"])
    requests = [(bad if i % 3 == 0 else HEART_RATE, []) for i in range(1_201)]
    requests[5] = ({"no": "resourceType"}, [])
    results = profile_validator.validate(requests)
    assert len(results) == len(requests)
    assert [bool(errors_only(r)) for r in results] == [i % 3 == 0 or i == 5 for i in range(1_201)]
    assert results[5][0].message == "Missing resource type"


def test_extra_structure_definitions_are_loaded(tmp_path: Path) -> None:
    """A project profile passed on the command line is requestable (here: base Patient + birthDate 1..1)."""
    require_validator()
    bundle = json.loads((DEFINITIONS_DIR / "profiles-resources.json").read_text(encoding="utf-8"))
    [base] = [e["resource"] for e in bundle["entry"] if e["resource"].get("url") == R4_CORE + "Patient"]
    url = "http://example.org/fhir/StructureDefinition/kap-patient"
    elements = [
        dict(e, min=1) if e["path"] == "Patient.birthDate" else e for e in base["snapshot"]["element"]
    ]
    profile = {
        **base,
        "url": url,
        "name": "KapPatient",
        "derivation": "constraint",
        "baseDefinition": R4_CORE + "Patient",
        "snapshot": {"element": elements},
    }
    path = tmp_path / "kap-patient.json"
    path.write_text(json.dumps(profile), encoding="utf-8")
    with ProfileValidator(extra_structure_definitions=[path]) as validator:
        assert url in validator.profiles
        ok, missing = validator.validate([(PATIENT, [url]), (changed(PATIENT, drop=["birthDate"]), [url])])
    assert errors_only(ok) == []
    assert [(i.path, i.profile) for i in errors_only(missing)] == [("Patient.birthDate", url)]


def test_schema_is_cut_back_to_r4() -> None:
    require_validator(need_node=False)
    types = r4_resource_types()
    assert {"Patient", "Observation", "QuestionnaireResponse", "Provenance", "Bundle"} <= types
    assert not {"Project", "User", "SubscriptionStatus", "ViewDefinition"} & types
    assert json_schema_errors({"resourceType": "Project", "name": "x"}) == [
        "<root>: resourceType 'Project' is not a FHIR R4 resource type"
    ]
    contained = changed(PATIENT, contained=[{"resourceType": "Project", "id": "p"}])
    assert any(e.startswith("Patient.contained[0]") for e in json_schema_errors(contained))


@pytest.mark.parametrize(
    ("ci", "outcome"),
    [
        pytest.param("true", pytest.fail.Exception, id="ci-fails"),
        pytest.param("", pytest.skip.Exception, id="local-skips"),
    ],
)
def test_missing_validator_skips_locally_and_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ci: str, outcome: type[BaseException]
) -> None:
    import support.fhir_validator as module

    monkeypatch.setattr(module, "SCHEMA_PATH", tmp_path / "absent" / "fhir.schema.json")
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="npm ci --prefix tools/fhir-validator"):
        require_validator()
