"""AssessmentRecord validation (mappings/records.py): totals the items cannot reach, the rater (issue 7)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from mappings.records import AssessmentRecord


def _record(
    instrument: str, items: dict[str, Any] | None, total: int | None, **fields: Any
) -> AssessmentRecord:
    return AssessmentRecord(
        patient_id="pat-1",
        instrument=instrument,
        taken_at="2026-10-05T09:00:00-07:00",
        items=items,
        total=total,
        **fields,
    )


@pytest.mark.parametrize(
    ("instrument", "items", "total"),
    [
        pytest.param("phq9", {"1": 0}, 27, id="phq9-issue-example"),
        pytest.param("phq9", {"1": 3, "2": 3}, 5, id="phq9-below-answered-sum"),
        pytest.param("phq2", {"1": 0}, 4, id="phq2"),
        pytest.param("gad7", {"1": 0, "2": 0}, 16, id="gad7"),
        pytest.param("pcl5", {"1": 0}, 77, id="pcl5"),
        pytest.param("madrs", {"10": 6}, 5, id="madrs"),
        pytest.param("cadss", {"1": 0}, 89, id="cadss"),
        pytest.param("cssrs", {"1": 1}, 0, id="cssrs-yes-cannot-be-none"),
        pytest.param("cssrs", {"4": 1}, 1, id="cssrs-intent-cannot-be-low"),
    ],
)
def test_impossible_total_is_refused_at_total(instrument: str, items: dict[str, int], total: int) -> None:
    with pytest.raises(ValidationError) as raised:
        _record(instrument, items, total)
    [error] = raised.value.errors()
    assert (error["loc"], error["type"]) == (("total",), "total_mismatch")
    assert str(total) not in error["msg"]


@pytest.mark.parametrize(
    ("instrument", "items", "total"),
    [
        pytest.param("phq9", {"1": 0}, 24, id="phq9-upper-bound"),
        pytest.param("phq9", {"1": 3}, 3, id="phq9-lower-bound"),
        pytest.param("cssrs", {"1": 0}, 3, id="cssrs-high-reachable"),
        pytest.param("madrs", None, 60, id="total-only"),
    ],
)
def test_reachable_total_is_accepted(instrument: str, items: dict[str, int] | None, total: int) -> None:
    assert _record(instrument, items, total).total == total


def test_invalid_items_report_only_the_items() -> None:
    with pytest.raises(ValidationError) as raised:
        _record("phq9", {"1": 9}, 27)
    assert [e["loc"] for e in raised.value.errors()] == [("items",)]


def test_out_of_range_total_is_total_range() -> None:
    with pytest.raises(ValidationError) as raised:
        _record("phq9", None, 28)
    assert [(e["loc"], e["type"]) for e in raised.value.errors()] == [(("total",), "total_range")]


def test_rater_is_a_practitioner_reference() -> None:
    assert AssessmentRecord.references["rater_id"] == "practitioners"
    assert _record("madrs", None, 20, rater_id="dr-1").rater_id == "dr-1"


def test_score_flags_include_what_the_total_implies() -> None:
    score = _record("phq9", {str(n): 3 for n in range(1, 9)}, 27).score()
    assert score is not None and score.total is None and score.flags == ("suicidal-ideation",)
