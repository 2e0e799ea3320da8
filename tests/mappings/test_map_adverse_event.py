"""Adverse event -> AdverseEvent (base R4): golden pair, tables, properties."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mappings.adverse_event import to_fhir_adverse_event
from mappings.codes.kap_adverse_events import ADVERSE_EVENT_DISPLAY, KAP_ADVERSE_EVENTS
from mappings.records import AdverseEventKind, AdverseEventRecord
from tests.mappings.conftest import assert_golden, make_context
from tests.mappings.outbound_checks import (
    AWARE,
    EXTERNAL_ID,
    SHORT_TEXT,
    as_json,
    assert_valid,
    load_case,
    profile_errors,
)

SERIOUSNESS = "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness"
SEVERITY = "http://terminology.hl7.org/CodeSystem/adverse-event-severity"
OUTCOME = "http://terminology.hl7.org/CodeSystem/adverse-event-outcome"


def event(**fields) -> AdverseEventRecord:
    base = {"patient_id": "pt-1", "event": "nausea", "severity": "mild", "onset": "2026-10-05T09:45:00-07:00"}
    return AdverseEventRecord.model_validate({**base, **fields})


def map_event(record: AdverseEventRecord) -> dict:
    return as_json(to_fhir_adverse_event(record, external_id="ae-1", ctx=make_context()))


def map_case() -> list:
    case = load_case("adverse-event")
    return [to_fhir_adverse_event(case.record, external_id=case.external_id, ctx=case.ctx)]


def test_golden() -> None:
    assert_golden("adverse-event", map_case())


def test_golden_passes_schema_and_base_r4(profile_validator) -> None:
    [resource] = map_case()
    data = assert_valid(resource)
    assert "meta" not in data
    assert profile_errors(profile_validator, data) == []


def test_golden_keeps_the_note_out() -> None:
    case = load_case("adverse-event")
    assert case.record.note and case.record.note not in str(as_json(map_case()[0]))


@pytest.mark.parametrize("kind", [pytest.param(k.value, id=k.value) for k in AdverseEventKind])
def test_event_is_a_local_code_with_text(kind: str) -> None:
    resource = map_event(event(event=kind, note="Synthetic free text"))
    assert resource["event"]["coding"] == [
        {"system": KAP_ADVERSE_EVENTS, "code": kind, "display": ADVERSE_EVENT_DISPLAY[kind]}
    ]
    expected_text = "Synthetic free text" if kind == "other" else ADVERSE_EVENT_DISPLAY[kind]
    assert resource["event"]["text"] == expected_text
    assert ("Synthetic free text" in str(resource)) is (kind == "other")


@pytest.mark.parametrize(
    ("fields", "seriousness", "severity", "outcome"),
    [
        pytest.param({}, "Non-serious", "mild", "ongoing", id="defaults"),
        pytest.param({"serious": True, "severity": "severe"}, "Serious", "severe", "ongoing", id="serious"),
        pytest.param(
            {"severity": "moderate", "resolved_at": "2026-10-05T10:00:00-07:00"},
            "Non-serious",
            "moderate",
            "resolved",
            id="resolved",
        ),
    ],
)
def test_seriousness_severity_outcome(fields: dict, seriousness: str, severity: str, outcome: str) -> None:
    resource = map_event(event(**fields))
    assert [(c["system"], c["code"]) for c in resource["seriousness"]["coding"]] == [
        (SERIOUSNESS, seriousness)
    ]
    assert [(c["system"], c["code"]) for c in resource["severity"]["coding"]] == [(SEVERITY, severity)]
    assert [(c["system"], c["code"]) for c in resource["outcome"]["coding"]] == [(OUTCOME, outcome)]


@pytest.mark.parametrize(
    ("fields", "encounter", "suspect"),
    [
        pytest.param({}, False, False, id="neither"),
        pytest.param({"session_id": "s-1"}, True, False, id="session"),
        pytest.param({"session_id": "s-1", "dose_id": "d-1"}, True, True, id="session-and-dose"),
        pytest.param({"dose_id": "d-1"}, False, True, id="dose"),
    ],
)
def test_encounter_and_suspect_entity(fields: dict, encounter: bool, suspect: bool) -> None:
    ctx = make_context()
    resource = map_event(event(**fields))
    assert resource.get("encounter") == (ctx.reference("sessions", "s-1") if encounter else None)
    expected = (
        [{"instance": ctx.reference("doses", "d-1", "", "MedicationAdministration")}] if suspect else None
    )
    assert resource.get("suspectEntity") == expected


def test_identity() -> None:
    ctx = make_context()
    resource = map_event(event())
    assert resource["id"] == ctx.id_of("adverse-events", "ae-1")
    assert resource["identifier"] == {
        "system": "https://gateway.test/id/golden/adverse-events",
        "value": "ae-1",
    }
    assert (resource["actuality"], resource["date"]) == ("actual", "2026-10-05T09:45:00-07:00")
    assert resource["subject"] == ctx.reference("patients", "pt-1")


@st.composite
def adverse_events(draw) -> AdverseEventRecord:
    kind = draw(st.sampled_from([k.value for k in AdverseEventKind]))
    onset = draw(AWARE)
    return AdverseEventRecord.model_validate(
        {
            "patient_id": draw(EXTERNAL_ID),
            "event": kind,
            "severity": draw(st.sampled_from(["mild", "moderate", "severe"])),
            "onset": onset,
            "session_id": draw(st.none() | EXTERNAL_ID),
            "dose_id": draw(st.none() | EXTERNAL_ID),
            "serious": draw(st.booleans()),
            "resolved_at": draw(
                st.none() | st.integers(0, 10_000).map(lambda m: onset + timedelta(minutes=m))
            ),
            "note": draw(SHORT_TEXT if kind == "other" else st.none() | SHORT_TEXT),
        }
    )


@settings(max_examples=50, deadline=None)
@given(record=adverse_events(), external_id=EXTERNAL_ID)
def test_any_adverse_event_maps_to_valid_fhir(record: AdverseEventRecord, external_id: str) -> None:
    data = assert_valid(to_fhir_adverse_event(record, external_id=external_id, ctx=make_context()))
    assert data["event"]["coding"][0]["code"] == record.event.value
