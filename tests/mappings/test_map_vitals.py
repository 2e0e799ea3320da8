"""Vitals → US Core vital-sign Observations: goldens, code table, properties, profile validation."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.fhir_validator import (
    R4_CORE,
    US_CORE,
    ProfileValidator,
    errors_only,
    json_schema_errors,
    require_validator,
)

from mappings.records import VITAL_BOUNDS, VitalsRecord
from mappings.vitals import VITAL_PARTS, VITALS, to_fhir_vitals
from tests.mappings.conftest import assert_golden, load_clinic_fixture, make_context
from tests.mappings.outbound_checks import EXTERNAL_ID

GOLDEN = ["vitals-dosing-baseline", "vitals-bp-only"]
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"

#: declared US Core 6.1 profile → what the offline validator checks instead when it lacks that profile. Its US
#: Core 5.0.1 subset has us-core-blood-pressure only; the other measures fall back to the base R4 vital-sign
#: profiles, which fix the same LOINC codes and UCUM units (except that R4 oxygensat needs only 2708-6, where
#: US Core pulse-oximetry needs 59408-5 too — asserted in test_single_measure). The base R4 ``bp`` profile is
#: not used: @medplum/core cannot evaluate its component discriminator (``code.coding.code`` through a nested
#: slice) and reports both component slices missing even for conforming data.
OFFLINE_PROFILES: dict[str, list[str]] = {
    US_CORE + "us-core-blood-pressure": [US_CORE + "us-core-blood-pressure"],
    US_CORE + "us-core-heart-rate": [R4_CORE + "heartrate"],
    US_CORE + "us-core-respiratory-rate": [R4_CORE + "resprate"],
    US_CORE + "us-core-pulse-oximetry": [R4_CORE + "oxygensat"],
    US_CORE + "us-core-body-temperature": [R4_CORE + "bodytemp"],
    US_CORE + "us-core-body-weight": [R4_CORE + "bodyweight"],
}


def _dicts(resources: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(r.model_dump_json(exclude_none=True)) for r in resources]


def _map_fixture(name: str) -> list[Any]:
    fixture = load_clinic_fixture(name)
    record = VitalsRecord.model_validate(fixture["record"])
    return to_fhir_vitals(record, external_id=fixture["id"], ctx=make_context())


def _record(**measures: Any) -> VitalsRecord:
    return VitalsRecord(patient_id="pat-1", taken_at="2026-10-05T09:00:00-07:00", **measures)


# --- goldens ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [pytest.param(name, id=name) for name in GOLDEN])
def test_golden(name: str) -> None:
    assert_golden(name, _map_fixture(name))


@pytest.mark.parametrize("name", [pytest.param(name, id=name) for name in GOLDEN])
def test_golden_passes_profiles(name: str, profile_validator: ProfileValidator) -> None:
    resources = _dicts(_map_fixture(name))
    requests = []
    for resource in resources:
        [declared] = resource["meta"]["profile"]
        profiles = [declared] if declared in profile_validator.profiles else OFFLINE_PROFILES[declared]
        requests.append((resource, profiles))
    results = profile_validator.validate(requests)
    assert [[str(issue) for issue in errors_only(issues)] for issues in results] == [[] for _ in resources]


# --- code table -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("measure", "value", "part", "profile", "codes", "unit"),
    [
        pytest.param(
            "heart_rate",
            72,
            "heart-rate",
            "us-core-heart-rate",
            ["8867-4"],
            ("/min", "beats/minute"),
            id="hr",
        ),
        pytest.param(
            "resp_rate",
            14,
            "resp-rate",
            "us-core-respiratory-rate",
            ["9279-1"],
            ("/min", "breaths/minute"),
            id="rr",
        ),
        pytest.param(
            "spo2", 97, "spo2", "us-core-pulse-oximetry", ["59408-5", "2708-6"], ("%", "%"), id="spo2"
        ),
        pytest.param(
            "temperature_c",
            36.9,
            "temperature",
            "us-core-body-temperature",
            ["8310-5"],
            ("Cel", "C"),
            id="temp",
        ),
        pytest.param(
            "weight_kg", 70.25, "weight", "us-core-body-weight", ["29463-7"], ("kg", "kg"), id="weight"
        ),
    ],
)
def test_single_measure(
    measure: str, value: float, part: str, profile: str, codes: list[str], unit: tuple[str, str]
) -> None:
    ctx = make_context()
    [observation] = _dicts(to_fhir_vitals(_record(**{measure: value}), external_id="v-1", ctx=ctx))
    assert VITAL_PARTS[measure] == part
    assert observation["id"] == ctx.id_of("vitals", "v-1", part)
    assert observation["identifier"] == [{"system": ctx.identifier_system("vitals"), "value": f"v-1#{part}"}]
    assert observation["meta"] == {"profile": [US_CORE + profile]}
    assert [(c["system"], c["code"]) for c in observation["code"]["coding"]] == [
        (LOINC, code) for code in codes
    ]
    assert observation["valueQuantity"] == {"value": value, "unit": unit[1], "system": UCUM, "code": unit[0]}
    assert observation["category"][0]["coding"] == [
        {
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "vital-signs",
            "display": "Vital Signs",
        }
    ]
    assert observation["status"] == "final"
    assert observation["effectiveDateTime"] == "2026-10-05T09:00:00-07:00"
    assert "encounter" not in observation and "extension" not in observation


def test_blood_pressure_panel() -> None:
    [bp] = _dicts(
        to_fhir_vitals(_record(systolic=131, diastolic=84.5), external_id="v-1", ctx=make_context())
    )
    assert bp["code"]["coding"][0]["code"] == "85354-9"
    assert "valueQuantity" not in bp
    assert [(c["code"]["coding"][0]["code"], c["valueQuantity"]) for c in bp["component"]] == [
        ("8480-6", {"value": 131, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}),
        ("8462-4", {"value": 84.5, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}),
    ]


@pytest.mark.parametrize("phase", [pytest.param(p, id=p) for p in ("baseline", "during", "post")])
def test_phase_and_session(phase: str) -> None:
    ctx = make_context()
    record = _record(heart_rate=90, spo2=95, session_id="ses-1", phase=phase)
    for observation in _dicts(to_fhir_vitals(record, external_id="v-1", ctx=ctx)):
        assert observation["extension"] == [
            {"url": "https://kap-gateway.org/fhir/StructureDefinition/dosing-phase", "valueCode": phase}
        ]
        assert observation["encounter"] == ctx.reference("sessions", "ses-1")
        assert observation["subject"] == ctx.reference("patients", "pat-1")


def test_one_observation_per_measure_with_distinct_ids() -> None:
    record = _record(
        **{measure: low for measure, (low, _high) in VITAL_BOUNDS.items() if measure != "systolic"},
        systolic=41,
    )
    observations = to_fhir_vitals(record, external_id="v-1", ctx=make_context())
    assert [o.meta.profile[0].rsplit("/", 1)[1] for o in observations] == [
        VITALS[part].profile.rsplit("/", 1)[1]
        for part in ("bp", "heart-rate", "resp-rate", "spo2", "temperature", "weight")
    ]
    assert len({o.id for o in observations}) == len(observations)
    assert to_fhir_vitals(record, external_id="v-1", ctx=make_context()) == observations


# --- properties -----------------------------------------------------------------------------------------

OFFSETS = st.integers(-12 * 4, 14 * 4).map(lambda quarters: timezone(timedelta(minutes=15 * quarters)))


def _bounded(measure: str) -> st.SearchStrategy[float | None]:
    low, high = VITAL_BOUNDS[measure]
    return st.none() | st.floats(low, high, allow_nan=False).map(lambda v: round(v, 1))


@st.composite
def vitals_records(draw: st.DrawFn) -> VitalsRecord:
    measures = {m: draw(_bounded(m)) for m in VITAL_BOUNDS if m not in ("systolic", "diastolic")}
    if draw(st.booleans()) or not any(v is not None for v in measures.values()):
        diastolic = draw(st.floats(*VITAL_BOUNDS["diastolic"]).map(lambda v: round(v, 1)))
        high = VITAL_BOUNDS["systolic"][1]
        measures["systolic"] = draw(
            st.floats(max(diastolic + 1, VITAL_BOUNDS["systolic"][0]), high).map(round)
        )
        measures["diastolic"] = diastolic
    taken_at = draw(st.datetimes(datetime(2020, 1, 1), datetime(2035, 1, 1), timezones=OFFSETS))
    return VitalsRecord(
        patient_id=draw(EXTERNAL_ID),
        taken_at=taken_at,
        session_id=draw(st.none() | st.just("ses-1")),
        phase=draw(st.none() | st.sampled_from(["baseline", "during", "post"])),
        **{k: v for k, v in measures.items() if v is not None},
    )


@settings(max_examples=50, deadline=None)
@given(record=vitals_records())
def test_any_record_maps_to_valid_fhir(record: VitalsRecord) -> None:
    require_validator(need_node=False)
    observations = to_fhir_vitals(record, external_id="v-1", ctx=make_context())
    assert sorted(o.id for o in observations) == sorted(
        make_context().id_of("vitals", "v-1", part) for part in {VITAL_PARTS[m] for m in record.measures()}
    )
    for observation in observations:
        assert type(observation).model_validate(observation.model_dump()) == observation
        resource = json.loads(observation.model_dump_json(exclude_none=True))
        assert json_schema_errors(resource) == []
        # the record's offset is kept
        assert datetime.fromisoformat(resource["effectiveDateTime"]) == record.taken_at
        assert (
            datetime.fromisoformat(resource["effectiveDateTime"]).utcoffset() == record.taken_at.utcoffset()
        )


@pytest.mark.parametrize(
    ("part", "path", "bad"),
    [
        pytest.param("weight", ("code", "coding", 0, "code"), "3141-9", id="weight-code"),
        pytest.param("spo2", ("code", "coding", 1, "code"), "59408-5", id="spo2-without-2708-6"),
        pytest.param("bp", ("component", 1, "code", "coding", 0, "code"), "8480-6", id="bp-two-systolic"),
        # @medplum/core does not check fixed values inside Quantity under value[x] / component.value[x], so
        # the UCUM codes are asserted directly in test_single_measure / test_blood_pressure_panel instead
        pytest.param(
            "heart-rate",
            ("valueQuantity", "code"),
            "{beats}/min",
            id="hr-unit",
            marks=pytest.mark.xfail(strict=True, reason="validator does not check Quantity fixed values"),
        ),
        pytest.param(
            "bp",
            ("component", 0, "valueQuantity", "code"),
            "mmHg",
            id="bp-unit",
            marks=pytest.mark.xfail(strict=True, reason="validator does not check Quantity fixed values"),
        ),
    ],
)
def test_profile_check_is_not_vacuous(
    part: str,
    path: tuple[str | int, ...],
    bad: str,
    profile_validator: ProfileValidator,
) -> None:
    [resource] = [
        r
        for r in _dicts(_map_fixture("vitals-dosing-baseline"))
        if r["identifier"][0]["value"].endswith(part)
    ]
    target: Any = resource
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = bad
    [declared] = resource["meta"]["profile"]
    assert errors_only(profile_validator.validate_one(resource, OFFLINE_PROFILES[declared]))
