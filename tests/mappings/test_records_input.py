"""The record models' input rules, pure (no database, no clock): strict types, text without control
characters, timestamp and date ranges, ids, dose bounds, and the clock rules at a fixed "now"."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.clinic_api.examples import RECORD_EXAMPLES
from mappings.records import (
    RECORD_KINDS,
    ConditionRecord,
    DoseRecord,
    PatientRecord,
    VitalsRecord,
    forbidden_character,
)

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


def example(kind: str, **change: Any) -> dict[str, Any]:
    record = {**copy.deepcopy(RECORD_EXAMPLES[kind][1]), **change}
    return {k: v for k, v in record.items() if v is not None}


def errors(kind: str, record: dict[str, Any]) -> dict[tuple, str]:
    with pytest.raises(ValidationError) as caught:
        RECORD_KINDS[kind].model_validate(record)
    return {tuple(e["loc"]): e["type"] for e in caught.value.errors()}


@pytest.mark.parametrize(
    ("text", "found"),
    [
        pytest.param("plain", None, id="plain"),
        pytest.param("tab\tnew\nline\r\n", None, id="tab-lf-cr"),
        pytest.param("nbsp\u00a0and\u3000ideographic", None, id="unicode-spaces"),
        pytest.param("nul\x00", "U+0000", id="nul"),
        pytest.param("\x1b[31m", "U+001B", id="escape"),
        pytest.param("del\x7f", "U+007F", id="del"),
        pytest.param("nel\x85", "U+0085", id="c1"),
        pytest.param("lone\ud800", "U+D800", id="surrogate"),
    ],
)
def test_forbidden_character(text, found) -> None:
    assert forbidden_character(text) == found


def test_every_text_error_is_reported_with_its_path() -> None:
    record = example(
        "patients",
        given_name="A\x00",
        identifiers=[{"system": "urn:x", "value": "M\x07"}],
        address={"line": ["1 Way", "2\x1b"]},
    )
    assert errors("patients", record) == {
        ("given_name",): "control_character",
        ("identifiers", 0, "value"): "control_character",
        ("address", "line", 1): "control_character",
    }


@pytest.mark.parametrize(
    ("value", "type_"),
    [
        pytest.param(1700000000, "datetime_format", id="seconds"),
        pytest.param(1.7e12, "datetime_format", id="milliseconds-float"),
        pytest.param("1700000000", "datetime_format", id="seconds-text"),
        pytest.param("2026-11-02T09:00:00", "datetime_format", id="naive"),
        pytest.param("0001-01-01T00:00:00+01:00", "datetime_range", id="year-1"),
        pytest.param("9999-12-31T23:59:59-01:00", "datetime_range", id="year-9999"),
        pytest.param("2200-01-01T00:00:00Z", "datetime_range", id="2200"),
        pytest.param("2026-11-02T09:00:00+14:01", "datetime_offset", id="offset"),
        pytest.param("2026-11-02T09:00:00-23:00", "datetime_offset", id="offset-23"),
    ],
)
def test_timestamps(value, type_) -> None:
    assert errors("vitals", example("vitals", taken_at=value)) == {("taken_at",): type_}


def test_python_callers_may_pass_datetime_and_date_objects() -> None:
    vitals = VitalsRecord.model_validate(
        example("vitals", taken_at=datetime(2026, 11, 2, 9, tzinfo=timezone(timedelta(hours=-8))))
    )
    assert vitals.taken_at.utcoffset() == timedelta(hours=-8)
    assert (
        PatientRecord.model_validate(example("patients", birth_date=date(1984, 3, 12))).birth_date.year
        == 1984
    )
    assert errors("patients", example("patients", birth_date=datetime(1984, 3, 12, tzinfo=UTC))) == {
        ("birth_date",): "date_format"
    }


@pytest.mark.parametrize(
    ("kind", "change", "type_"),
    [
        pytest.param(
            "doses",
            {"dose_mg": True, "weight_kg": None, "dose_mg_per_kg": None},
            "float_type",
            id="bool-for-number",
        ),
        pytest.param("doses", {"dose_mg": "35"}, "float_type", id="text-for-number"),
        pytest.param("doses", {"infusion_minutes": 40.0}, "int_type", id="float-for-integer"),
        pytest.param("adverse-events", {"serious": 0}, "bool_type", id="zero-for-boolean"),
        pytest.param("adverse-events", {"serious": "false"}, "bool_type", id="text-for-boolean"),
        pytest.param("assessments", {"total": "9"}, "int_type", id="text-for-total"),
    ],
)
def test_strict_types(kind, change, type_) -> None:
    (field,) = (name for name in change if change[name] is not None)
    assert errors(kind, example(kind, **change)) == {(field,): type_}


def test_integers_are_accepted_for_numbers() -> None:
    dose = DoseRecord.model_validate(example("doses", dose_mg=35, weight_kg=70))
    assert dose.dose_mg == 35.0 and isinstance(dose.dose_mg, float)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param({"dose_mg": 1e-320, "weight_kg": None, "dose_mg_per_kg": None}, "dose_mg", id="dose"),
        pytest.param({"dose_mg_per_kg": 5e-324}, "dose_mg_per_kg", id="per-kg"),
        pytest.param(
            {
                "unit_strength_mg": 5e-324,
                "form": "troche",
                "route": "sublingual",
                "infusion_minutes": None,
                "end": None,
            },
            "unit_strength_mg",
            id="unit-strength",
        ),
    ],
)
def test_dose_lower_bounds(change, field) -> None:
    assert errors("doses", example("doses", **change)) == {(field,): "greater_than_equal"}


def test_dose_weight_message() -> None:
    with pytest.raises(ValidationError) as caught:
        DoseRecord.model_validate(example("doses", dose_mg=52.5))
    message = (
        "dose_mg 52.5 does not match weight_kg * dose_mg_per_kg = 35.0 (they must agree to within 5% or 1 mg)"
    )
    assert {(tuple(e["loc"]), e["msg"]) for e in caught.value.errors()} == {
        (("dose_mg",), message),
        (("dose_mg_per_kg",), message),
    }


@pytest.mark.parametrize("value", [".", "..", "...", "." * 64])
def test_ids_of_only_dots_are_refused(value) -> None:
    assert errors("sessions", example("sessions", patient_id=value)) == {
        ("patient_id",): "string_pattern_mismatch"
    }


@pytest.mark.parametrize(
    ("kind", "change", "found"),
    [
        pytest.param("vitals", {"taken_at": "2031-12-03T07:59:59Z"}, [], id="5-years-ahead"),
        pytest.param("vitals", {"taken_at": "2031-12-03T08:00:01Z"}, ["taken_at"], id="past-5-years"),
        pytest.param(
            "sessions",
            {"start": "2031-12-06T09:00:00+14:00", "end": "2031-12-06T10:00:00+14:00"},
            ["start", "end"],
            id="both",
        ),
        pytest.param("patients", {"birth_date": "2026-12-03"}, [], id="born-today"),
        pytest.param("patients", {"birth_date": "2026-12-04"}, ["birth_date"], id="born-tomorrow"),
    ],
)
def test_clock_rules_take_now_as_an_argument(kind, change, found) -> None:
    model = RECORD_KINDS[kind].model_validate(example(kind, **change))
    assert [e.field for e in model.clock_errors(NOW)] == found


def test_birth_date_of_tomorrow_in_utc_is_today_at_utc_plus_14() -> None:
    late = datetime(2026, 12, 3, 10, 30, tzinfo=UTC)  # 2026-12-04 00:30 at UTC+14
    patient = PatientRecord.model_validate(example("patients", birth_date="2026-12-04"))
    assert patient.clock_errors(late) == []
    assert [e.field for e in patient.clock_errors(late - timedelta(hours=1))] == ["birth_date"]


def test_imported_dates_are_bounded_too() -> None:
    base = {
        "patient_id": "pat-001",
        "text": "Major depressive disorder",
        "category": ["problem-list-item"],
        "source": {"resource_type": "Condition", "id": "c-1"},
    }
    assert ConditionRecord.model_validate({**base, "onset": "2019-03-04T10:00:00+05:30"}).onset is not None
    with pytest.raises(ValidationError):
        ConditionRecord.model_validate({**base, "onset": "2019-03-04T10:00:00+15:00"})
    with pytest.raises(ValidationError):
        ConditionRecord.model_validate({**base, "onset": "0001-01-01"})
