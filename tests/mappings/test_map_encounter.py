"""Session -> Encounter (+ Procedure): golden pairs, decision tables, properties, US Core profiles."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mappings.encounter import PROCEDURE_PART, to_fhir_session
from mappings.records import SessionRecord
from tests.mappings.conftest import assert_golden, make_context
from tests.mappings.outbound_checks import (
    AWARE,
    EXTERNAL_ID,
    as_json,
    assert_valid,
    load_case,
    profile_errors,
)

GOLDEN = ["session-dosing-iv", "session-dosing-sublingual", "session-integration"]
CPT = "http://www.ama-assn.org/go/cpt"
SNOMED = "http://snomed.info/sct"


def session(**fields) -> SessionRecord:
    base = {"patient_id": "pt-1", "start": "2026-10-05T09:00:00-07:00", "practitioner_id": "dr-1"}
    return SessionRecord.model_validate({**base, **fields})


def codes(concept: dict) -> list[tuple[str, str]]:
    return [(c["system"], c["code"]) for c in concept.get("coding", [])]


def map_case(name: str) -> list:
    case = load_case(name)
    return to_fhir_session(case.record, external_id=case.external_id, ctx=case.ctx)


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in GOLDEN])
def test_golden(name: str) -> None:
    assert_golden(name, map_case(name))


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in GOLDEN])
def test_golden_passes_schema_and_profiles(name: str, profile_validator) -> None:
    for resource in map_case(name):
        assert profile_errors(profile_validator, assert_valid(resource)) == []


@pytest.mark.parametrize(
    ("status", "encounter_status"),
    [
        pytest.param("planned", "planned", id="planned"),
        pytest.param("in-progress", "in-progress", id="in-progress"),
        pytest.param("completed", "finished", id="completed"),
        pytest.param("cancelled", "cancelled", id="cancelled"),
    ],
)
def test_encounter_status(ctx, status: str, encounter_status: str) -> None:
    [encounter, *_] = to_fhir_session(session(kind="integration", status=status), external_id="s", ctx=ctx)
    assert encounter.status == encounter_status


@pytest.mark.parametrize(
    ("fields", "type_codes", "text"),
    [
        pytest.param({"kind": "preparation"}, [], "KAP preparation session", id="prep-minutes-unknown"),
        pytest.param(
            {"kind": "preparation", "psychotherapy_minutes": 15}, [], "KAP preparation session", id="15min"
        ),
        pytest.param(
            {"kind": "integration", "psychotherapy_minutes": 16}, [(CPT, "90832")], None, id="16min"
        ),
        pytest.param(
            {"kind": "integration", "psychotherapy_minutes": 37}, [(CPT, "90832")], None, id="37min"
        ),
        pytest.param(
            {"kind": "integration", "psychotherapy_minutes": 38}, [(CPT, "90834")], None, id="38min"
        ),
        pytest.param(
            {"kind": "integration", "psychotherapy_minutes": 52}, [(CPT, "90834")], None, id="52min"
        ),
        pytest.param(
            {"kind": "integration", "psychotherapy_minutes": 53}, [(CPT, "90837")], None, id="53min"
        ),
        pytest.param(
            {"kind": "preparation", "psychotherapy_minutes": 120}, [(CPT, "90837")], None, id="120min"
        ),
        pytest.param({"kind": "assessment"}, [(CPT, "90791")], "KAP assessment session", id="assessment"),
        pytest.param(
            {"kind": "dosing", "modality": "iv"}, [(CPT, "0820T")], "KAP dosing session", id="dosing"
        ),
        pytest.param(
            {"kind": "dosing", "psychotherapy_minutes": 60},
            [(CPT, "0820T")],
            "KAP dosing session",
            id="dosing-60min",
        ),
    ],
)
def test_encounter_type(ctx, fields: dict, type_codes: list, text: str | None) -> None:
    [encounter, *_] = to_fhir_session(session(**fields), external_id="s", ctx=ctx)
    [concept] = as_json(encounter)["type"]
    assert codes(concept) == type_codes
    assert concept["text"] == (text or f"KAP {fields['kind']} session")


PSYCHOTHERAPY = (SNOMED, "75516001")
MONITORING = (CPT, "0820T")


@pytest.mark.parametrize(
    ("fields", "procedure_codes"),
    [
        pytest.param({"kind": "integration"}, [PSYCHOTHERAPY], id="integration-minutes-unknown"),
        pytest.param({"kind": "integration", "psychotherapy_minutes": 0}, None, id="integration-0min"),
        pytest.param(
            {"kind": "integration", "psychotherapy_minutes": 10}, [PSYCHOTHERAPY], id="integration-10min"
        ),
        pytest.param(
            {"kind": "preparation", "psychotherapy_minutes": 45},
            [PSYCHOTHERAPY, (CPT, "90834")],
            id="prep-45min",
        ),
        pytest.param({"kind": "preparation", "status": "planned"}, None, id="planned"),
        pytest.param({"kind": "integration", "status": "cancelled"}, None, id="cancelled"),
        pytest.param(
            {"kind": "integration", "status": "in-progress", "psychotherapy_minutes": 30},
            [PSYCHOTHERAPY, (CPT, "90832")],
            id="in-progress",
        ),
        pytest.param({"kind": "assessment"}, None, id="assessment"),
        # dosing sessions: the session's 0820T monitoring (which includes any psychotherapy), never the
        # IV infusion (that is the dose's own Procedure) and never a separate psychotherapy code
        pytest.param({"kind": "dosing", "modality": "iv"}, [MONITORING], id="dosing-iv"),
        pytest.param(
            {"kind": "dosing", "modality": "iv", "psychotherapy_minutes": 0}, [MONITORING], id="iv-0min"
        ),
        pytest.param(
            {"kind": "dosing", "modality": "iv", "psychotherapy_minutes": 60},
            [MONITORING],
            id="dosing-iv-with-psychotherapy",
        ),
        pytest.param(
            {"kind": "dosing", "modality": "sublingual", "psychotherapy_minutes": 40},
            [MONITORING],
            id="dosing-sublingual-with-psychotherapy",
        ),
        pytest.param({"kind": "dosing", "modality": "intranasal"}, [MONITORING], id="dosing-intranasal"),
        pytest.param({"kind": "dosing"}, [MONITORING], id="dosing-modality-unknown"),
        pytest.param(
            {"kind": "dosing", "modality": "iv", "status": "in-progress"},
            [MONITORING],
            id="dosing-iv-in-progress",
        ),
        pytest.param(
            {"kind": "dosing", "modality": "iv", "status": "cancelled"}, None, id="dosing-iv-cancelled"
        ),
    ],
)
def test_which_sessions_get_a_procedure(ctx, fields: dict, procedure_codes: list | None) -> None:
    resources = to_fhir_session(session(**fields), external_id="s-1", ctx=ctx)
    if procedure_codes is None:
        assert [r.get_resource_type() for r in resources] == ["Encounter"]
        return
    encounter, procedure = (as_json(r) for r in resources)
    assert codes(procedure["code"]) == procedure_codes
    assert procedure["id"] == ctx.id_of("sessions", "s-1", PROCEDURE_PART)
    assert procedure["identifier"] == [
        {"system": "https://gateway.test/id/golden/sessions", "value": "s-1#procedure"}
    ]
    assert procedure["encounter"] == {"reference": f"Encounter/{encounter['id']}"}
    assert procedure["status"] == ("in-progress" if fields.get("status") == "in-progress" else "completed")
    assert procedure["performedPeriod"] == encounter["period"]


@pytest.mark.parametrize(
    ("fields", "note"),
    [
        pytest.param(
            {"kind": "dosing", "modality": "iv", "psychotherapy_minutes": 60},
            "Includes 60 minutes of psychotherapy during the dosing session, part of the 0820T monitoring "
            "and intervention (not a separate psychotherapy service).",
            id="dosing-60min",
        ),
        pytest.param(
            {"kind": "dosing", "modality": "sublingual", "psychotherapy_minutes": 120},
            "Includes 120 minutes of psychotherapy during the dosing session, part of the 0820T monitoring "
            "and intervention (not a separate psychotherapy service).",
            id="dosing-120min",
        ),
        pytest.param(
            {"kind": "dosing", "modality": "iv", "psychotherapy_minutes": 0}, None, id="dosing-0min"
        ),
        pytest.param({"kind": "dosing", "modality": "iv"}, None, id="dosing-minutes-unknown"),
        pytest.param({"kind": "integration", "psychotherapy_minutes": 60}, None, id="integration"),
    ],
)
def test_dosing_psychotherapy_minutes_are_part_of_0820t(ctx, fields: dict, note: str | None) -> None:
    resources = [as_json(r) for r in to_fhir_session(session(**fields), external_id="s", ctx=ctx)]
    procedures = [r for r in resources if r["resourceType"] == "Procedure"]
    [procedure] = procedures  # one Procedure per session: never a second one for the same minutes
    assert procedure.get("note") == ([{"text": note}] if note else None)
    if fields["kind"] == "dosing":
        coded = {c["code"] for c in procedure["code"]["coding"]}
        assert coded == {"0820T"}  # no 75516001 / 90832-90837 beside 0820T


def test_participant_and_performer_only_with_a_practitioner(ctx) -> None:
    record = session(kind="integration", practitioner_id=None)
    encounter, procedure = (as_json(r) for r in to_fhir_session(record, external_id="s", ctx=ctx))
    assert "participant" not in encounter
    assert "performer" not in procedure


def test_period_keeps_the_record_offsets(ctx) -> None:
    record = session(kind="integration", end="2026-10-05T10:00:00-07:00")
    [encounter, _] = (as_json(r) for r in to_fhir_session(record, external_id="s", ctx=ctx))
    assert encounter["period"] == {"start": "2026-10-05T09:00:00-07:00", "end": "2026-10-05T10:00:00-07:00"}


# --------------------------------------------------------------------------- properties


@st.composite
def sessions(draw) -> SessionRecord:
    kind = draw(st.sampled_from(["preparation", "dosing", "integration", "assessment"]))
    start = draw(AWARE)
    end = draw(st.none() | st.integers(0, 24 * 60).map(lambda m: start + timedelta(minutes=m)))
    modality = (
        draw(st.sampled_from(["iv", "im", "sublingual", "oral", "intranasal"])) if kind == "dosing" else None
    )
    return SessionRecord.model_validate(
        {
            "patient_id": draw(EXTERNAL_ID),
            "kind": kind,
            "start": start,
            "end": end,
            "practitioner_id": draw(st.none() | EXTERNAL_ID),
            "modality": draw(st.none() | st.just(modality)),
            "psychotherapy_minutes": draw(st.none() | st.integers(0, 600)),
            "status": draw(st.sampled_from(["planned", "in-progress", "completed", "cancelled"])),
        }
    )


@settings(max_examples=50, deadline=None)
@given(record=sessions(), external_id=EXTERNAL_ID)
def test_any_session_maps_to_valid_fhir(record: SessionRecord, external_id: str) -> None:
    resources = to_fhir_session(record, external_id=external_id, ctx=make_context())
    encounter, *rest = (assert_valid(r) for r in resources)
    assert encounter["resourceType"] == "Encounter"
    assert [r["resourceType"] for r in rest] in ([], ["Procedure"])
    if rest:
        assert record.status.value in ("completed", "in-progress")
        # a session never claims the IV infusion (96365 is the dose's, over the infusion's own period)
        assert "96365" not in {c["code"] for c in rest[0]["code"]["coding"]}
        if record.kind == "dosing":
            assert [c["code"] for c in rest[0]["code"]["coding"]] == ["0820T"]


@pytest.mark.parametrize(
    ("index", "drop"),
    [
        pytest.param(0, "type", id="encounter-type"),
        pytest.param(0, "class", id="encounter-class"),
        pytest.param(1, "code", id="procedure-code"),
        pytest.param(1, "performedPeriod", id="procedure-performed"),
    ],
)
def test_profile_check_is_not_vacuous(index: int, drop: str, profile_validator) -> None:
    data = as_json(map_case("session-dosing-iv")[index])
    del data[drop]
    assert profile_errors(profile_validator, data)
