"""Scoring tables for mappings.instruments (totals, bands, flags, subscores)."""

import pytest

from mappings.instruments import LOCAL_SYSTEM, LOINC, InstrumentError, get_instrument

PHQ9_EXAMPLE = {str(n): v for n, v in enumerate([1, 2, 1, 2, 1, 1, 0, 1, 0], start=1)}


def _answers(values: list[int]) -> dict[str, int]:
    return {str(n): v for n, v in enumerate(values, start=1)}


def test_phq9_example_total_band_and_code() -> None:
    phq9 = get_instrument("phq9")
    score = phq9.score(PHQ9_EXAMPLE)
    assert score.total == 9
    assert score.band is not None and score.band.key == "mild"
    assert score.band.code is not None and score.band.code.code == "LA6709-5"
    assert score.flags == ()
    assert (phq9.total_code.system, phq9.total_code.code) == (LOINC, "44261-6")


@pytest.mark.parametrize(
    ("key", "values", "total"),
    [
        pytest.param("phq9", [0] * 9, 0, id="phq9-min"),
        pytest.param("phq9", [3] * 9, 27, id="phq9-max"),
        pytest.param("phq2", [3, 3], 6, id="phq2-max"),
        pytest.param("gad7", [3] * 7, 21, id="gad7-max"),
        pytest.param("pcl5", [4] * 20, 80, id="pcl5-max"),
        pytest.param("madrs", [6] * 10, 60, id="madrs-max"),
        pytest.param("cadss", [4] * 23, 92, id="cadss-max"),
        pytest.param("cadss", [1] * 23, 23, id="cadss-ones"),
    ],
)
def test_sum_totals(key: str, values: list[int], total: int) -> None:
    assert get_instrument(key).score(_answers(values)).total == total


@pytest.mark.parametrize(
    ("answers", "total", "band"),
    [
        pytest.param({**PHQ9_EXAMPLE, "10": 3}, 9, "mild", id="difficulty-not-counted"),
        pytest.param({k: v for k, v in PHQ9_EXAMPLE.items() if k != "5"}, None, None, id="missing-item"),
        pytest.param({"10": 2}, None, None, id="only-difficulty"),
        pytest.param({}, None, None, id="empty"),
    ],
)
def test_phq9_partial_and_unscored(answers: dict[str, int], total: int | None, band: str | None) -> None:
    score = get_instrument("phq9").score(answers)
    assert score.total == total
    assert (score.band.key if score.band else None) == band


@pytest.mark.parametrize(
    ("key", "total", "band"),
    [
        pytest.param("phq9", 0, "minimal", id="phq9-0"),
        pytest.param("phq9", 4, "minimal", id="phq9-4"),
        pytest.param("phq9", 5, "mild", id="phq9-5"),
        pytest.param("phq9", 9, "mild", id="phq9-9"),
        pytest.param("phq9", 10, "moderate", id="phq9-10"),
        pytest.param("phq9", 14, "moderate", id="phq9-14"),
        pytest.param("phq9", 15, "moderately-severe", id="phq9-15"),
        pytest.param("phq9", 19, "moderately-severe", id="phq9-19"),
        pytest.param("phq9", 20, "severe", id="phq9-20"),
        pytest.param("phq9", 27, "severe", id="phq9-27"),
        pytest.param("phq9", 28, None, id="phq9-out-of-range"),
        pytest.param("phq2", 0, "negative", id="phq2-0"),
        pytest.param("phq2", 2, "negative", id="phq2-2"),
        pytest.param("phq2", 3, "positive", id="phq2-3"),
        pytest.param("phq2", 6, "positive", id="phq2-6"),
        pytest.param("gad7", 0, "minimal", id="gad7-0"),
        pytest.param("gad7", 4, "minimal", id="gad7-4"),
        pytest.param("gad7", 5, "mild", id="gad7-5"),
        pytest.param("gad7", 9, "mild", id="gad7-9"),
        pytest.param("gad7", 10, "moderate", id="gad7-10"),
        pytest.param("gad7", 14, "moderate", id="gad7-14"),
        pytest.param("gad7", 15, "severe", id="gad7-15"),
        pytest.param("gad7", 21, "severe", id="gad7-21"),
        pytest.param("pcl5", 0, "below-threshold", id="pcl5-0"),
        pytest.param("pcl5", 32, "below-threshold", id="pcl5-32"),
        pytest.param("pcl5", 33, "probable-ptsd", id="pcl5-33"),
        pytest.param("pcl5", 80, "probable-ptsd", id="pcl5-80"),
        pytest.param("madrs", 0, "normal", id="madrs-0"),
        pytest.param("madrs", 6, "normal", id="madrs-6"),
        pytest.param("madrs", 7, "mild", id="madrs-7"),
        pytest.param("madrs", 19, "mild", id="madrs-19"),
        pytest.param("madrs", 20, "moderate", id="madrs-20"),
        pytest.param("madrs", 34, "moderate", id="madrs-34"),
        pytest.param("madrs", 35, "severe", id="madrs-35"),
        pytest.param("madrs", 60, "severe", id="madrs-60"),
        pytest.param("cadss", 0, None, id="cadss-no-bands-0"),
        pytest.param("cadss", 92, None, id="cadss-no-bands-92"),
        pytest.param("cssrs", 0, "none", id="cssrs-0"),
        pytest.param("cssrs", 1, "low", id="cssrs-1"),
        pytest.param("cssrs", 2, "moderate", id="cssrs-2"),
        pytest.param("cssrs", 3, "high", id="cssrs-3"),
    ],
)
def test_band_edges(key: str, total: int, band: str | None) -> None:
    found = get_instrument(key).band(total)
    assert (found.key if found else None) == band


@pytest.mark.parametrize(
    ("key", "answers", "flags"),
    [
        pytest.param("phq9", {**PHQ9_EXAMPLE, "9": 1}, ("suicidal-ideation",), id="phq9-item9-1"),
        pytest.param("phq9", {**PHQ9_EXAMPLE, "9": 3}, ("suicidal-ideation",), id="phq9-item9-3"),
        pytest.param("phq9", {"9": 2}, ("suicidal-ideation",), id="phq9-item9-partial-form"),
        pytest.param("phq9", {"44260-8": 1}, ("suicidal-ideation",), id="phq9-item9-by-code"),
        pytest.param("phq9", PHQ9_EXAMPLE, (), id="phq9-item9-0"),
        pytest.param("phq9", _answers([3] * 8 + [0]), (), id="phq9-severe-without-item9"),
        pytest.param("phq2", {"1": 3, "2": 3}, (), id="phq2-never-flags"),
        pytest.param("madrs", {"10": 1}, (), id="madrs-item10-1"),
        pytest.param("madrs", {"10": 2}, ("suicidal-ideation",), id="madrs-item10-2-fleeting-thoughts"),
        pytest.param("madrs", {"10": 3}, ("suicidal-ideation",), id="madrs-item10-3"),
        pytest.param("madrs", {"10": 4}, ("suicidal-ideation",), id="madrs-item10-4"),
        pytest.param("madrs", {"10": 6}, ("suicidal-ideation",), id="madrs-item10-6"),
        pytest.param("madrs", {"9": 6}, (), id="madrs-item9-6"),
    ],
)
def test_flags(key: str, answers: dict[str, int], flags: tuple[str, ...]) -> None:
    instrument = get_instrument(key)
    assert instrument.flags(answers) == flags
    assert instrument.score(answers).flags == flags


def _cssrs(**yes: int) -> dict[str, int]:
    """C-SSRS answers: items 1, 2, 6 default to No; ``i6b`` stands for item 6b."""
    answers = {"1": 0, "2": 0, "6": 0}
    answers.update({key.removeprefix("i"): value for key, value in yes.items()})
    return answers


@pytest.mark.parametrize(
    ("answers", "risk", "flags", "yes_count"),
    [
        pytest.param(_cssrs(), "none", (), 0, id="all-no"),
        pytest.param(_cssrs(i1=1), "low", ("suicidal-ideation",), 1, id="wish-dead-only-is-passive-ideation"),
        pytest.param(
            _cssrs(i1=1, i2=1, i3=0, i4=0, i5=0), "low", ("suicidal-ideation",), 2, id="thoughts-only"
        ),
        pytest.param(_cssrs(i2=1, i3=1, i4=0, i5=0), "moderate", ("suicidal-ideation",), 2, id="method"),
        pytest.param(
            _cssrs(i1=1, i2=1, i3=1, i4=1, i5=0),
            "high",
            ("suicidal-ideation", "high-suicide-risk"),
            4,
            id="intent",
        ),
        pytest.param(
            _cssrs(i1=1, i2=1, i3=1, i4=0, i5=1),
            "high",
            ("suicidal-ideation", "high-suicide-risk"),
            4,
            id="plan",
        ),
        pytest.param(
            _cssrs(i6=1, i6b=1), "high", ("suicidal-ideation", "high-suicide-risk"), 1, id="behaviour-recent"
        ),
        pytest.param(
            _cssrs(i6=1, i6b=0), "moderate", ("suicidal-ideation",), 1, id="behaviour-over-3-months"
        ),
        pytest.param(_cssrs(i1=1, i6b=0), "low", ("suicidal-ideation",), 1, id="6b-no-without-6"),
    ],
)
def test_cssrs_risk(answers: dict[str, int], risk: str, flags: tuple[str, ...], yes_count: int) -> None:
    cssrs = get_instrument("cssrs")
    score = cssrs.score(answers)
    assert score.band is not None and score.band.key == risk
    assert score.total == {"none": 0, "low": 1, "moderate": 2, "high": 3}[risk]
    assert score.flags == flags
    assert score.subscores == {"yes-count": yes_count}


@pytest.mark.parametrize(
    ("risk", "system", "code"),
    [
        pytest.param("low", LOINC, "LA9194-7", id="low-loinc"),
        pytest.param("moderate", LOCAL_SYSTEM, "cssrs-risk-moderate", id="moderate-local"),
        pytest.param("high", LOCAL_SYSTEM, "cssrs-risk-high", id="high-local"),
    ],
)
def test_cssrs_risk_codes(risk: str, system: str, code: str) -> None:
    cssrs = get_instrument("cssrs")
    band = next(b for b in cssrs.bands if b.key == risk)
    assert band.code is not None and (band.code.system, band.code.code) == (system, code)
    assert (cssrs.total_code.code, cssrs.panel and cssrs.panel.code) == ("93374-7", "93373-9")


@pytest.mark.parametrize(
    ("answers", "flags"),
    [
        pytest.param({"1": 1}, ("suicidal-ideation",), id="only-item1"),
        pytest.param({"1": 1, "2": 1}, ("suicidal-ideation",), id="skip-logic-unanswered"),
        pytest.param({"2": 1, "3": 1, "6": 0}, ("suicidal-ideation",), id="missing-item1"),
        pytest.param({"6": 1}, ("suicidal-ideation",), id="6-without-6b"),
        pytest.param(
            {"4": 1}, ("suicidal-ideation", "high-suicide-risk"), id="intent-alone-still-flags-high"
        ),
    ],
)
def test_cssrs_incomplete_has_no_total_but_flags(answers: dict[str, int], flags: tuple[str, ...]) -> None:
    score = get_instrument("cssrs").score(answers)
    assert (score.total, score.band, score.subscores) == (None, None, {})
    assert score.flags == flags


@pytest.mark.parametrize(
    ("values", "subscores", "total", "band"),
    [
        pytest.param([0] * 20, {"B": 0, "C": 0, "D": 0, "E": 0}, 0, "below-threshold", id="zeros"),
        pytest.param([4] * 20, {"B": 20, "C": 8, "D": 28, "E": 24}, 80, "probable-ptsd", id="max"),
        pytest.param(
            [1] * 5 + [2] * 2 + [3] * 7 + [0] * 6,
            {"B": 5, "C": 4, "D": 21, "E": 0},
            30,
            "below-threshold",
            id="mix",
        ),
        pytest.param(
            [2] * 13 + [1] * 7, {"B": 10, "C": 4, "D": 13, "E": 6}, 33, "probable-ptsd", id="at-cut-point"
        ),
    ],
)
def test_pcl5_subscores(values: list[int], subscores: dict[str, int], total: int, band: str) -> None:
    score = get_instrument("pcl5").score(_answers(values))
    assert score.subscores == subscores
    assert score.total == total
    assert score.band is not None and score.band.key == band


def test_pcl5_partial_answers_give_complete_clusters_only() -> None:
    answers = {str(n): 3 for n in range(1, 8)}  # clusters B and C complete, D and E not
    score = get_instrument("pcl5").score(answers)
    assert score.subscores == {"B": 15, "C": 6}
    assert score.total is None


@pytest.mark.parametrize(
    ("values", "total", "band"),
    [
        pytest.param([0] * 10, 0, "normal", id="normal"),
        pytest.param([2] * 5 + [0] * 5, 10, "mild", id="mild"),
        pytest.param([3] * 8 + [0, 0], 24, "moderate", id="moderate"),
        pytest.param([4] * 9 + [0], 36, "severe", id="severe"),
    ],
)
def test_madrs_scores(values: list[int], total: int, band: str) -> None:
    score = get_instrument("madrs").score(_answers(values))
    assert score.total == total
    assert score.band is not None and score.band.key == band
    assert score.band.code is not None and score.band.code.system == LOCAL_SYSTEM


def test_cadss_has_no_band() -> None:
    score = get_instrument("cadss").score(_answers([2] * 23))
    assert (score.total, score.band, score.flags, score.subscores) == (46, None, (), {})


# --- flags from the items and the total; impossible totals ---------------------------------------------

PHQ9_1_TO_8_MAX = _answers([3] * 8)


@pytest.mark.parametrize(
    ("key", "answers", "total", "certain", "unknown", "missing"),
    [
        pytest.param(
            "phq9", PHQ9_1_TO_8_MAX, 27, ("suicidal-ideation",), (), ("9",), id="phq9-27-forces-item9"
        ),
        pytest.param("phq9", PHQ9_1_TO_8_MAX, 24, (), (), ("9",), id="phq9-24-forces-item9-zero"),
        pytest.param(
            "phq9", PHQ9_1_TO_8_MAX, None, (), ("suicidal-ideation",), ("9",), id="phq9-item9-skipped"
        ),
        pytest.param("phq9", {"1": 0}, 20, (), ("suicidal-ideation",), ("9",), id="phq9-partial-20-unknown"),
        pytest.param("phq9", {"1": 0, "2": 0}, 20, ("suicidal-ideation",), (), ("9",), id="phq9-partial-20"),
        pytest.param("phq9", {}, 25, ("suicidal-ideation",), (), ("9",), id="phq9-total-only-25"),
        pytest.param("phq9", {}, 10, (), ("suicidal-ideation",), ("9",), id="phq9-total-only-10"),
        pytest.param("phq9", {}, 0, (), (), ("9",), id="phq9-total-only-0"),
        pytest.param("phq9", {"9": 0}, 24, (), (), (), id="phq9-item9-zero-answered"),
        pytest.param(
            "madrs", {}, 56, ("suicidal-ideation",), (), ("10",), id="madrs-total-56-forces-item10-2"
        ),
        pytest.param("madrs", {}, 55, (), ("suicidal-ideation",), ("10",), id="madrs-total-55"),
        pytest.param(
            "cssrs",
            {"1": 0},
            3,
            ("suicidal-ideation", "high-suicide-risk"),
            (),
            ("2", "6"),
            id="cssrs-item1-no-total-high",
        ),
        pytest.param("cssrs", {}, 1, ("suicidal-ideation",), (), ("1", "2", "6"), id="cssrs-total-low"),
        pytest.param("cssrs", {}, 0, (), (), ("1", "2", "6"), id="cssrs-total-none"),
        pytest.param(
            "cssrs",
            {"1": 0},
            None,
            (),
            ("suicidal-ideation", "high-suicide-risk"),
            ("2", "6"),
            id="cssrs-ideation-items-missing",
        ),
        pytest.param("cssrs", _cssrs(), None, (), (), (), id="cssrs-complete-all-no"),
        pytest.param("gad7", {}, 21, (), (), (), id="gad7-has-no-safety-items"),
    ],
)
def test_safety_from_items_and_total(
    key: str,
    answers: dict[str, int],
    total: int | None,
    certain: tuple[str, ...],
    unknown: tuple[str, ...],
    missing: tuple[str, ...],
) -> None:
    instrument = get_instrument(key)
    if total is not None:
        instrument.check_total(total, answers)  # every case is a possible total
    safety = instrument.safety(answers, total)
    assert (safety.certain, safety.unknown, safety.missing) == (certain, unknown, missing)
    assert instrument.flags(answers, total) == certain


@pytest.mark.parametrize(
    ("key", "answers", "total", "ok"),
    [
        pytest.param("phq9", {"1": 0}, 27, False, id="phq9-1-zero-27"),
        pytest.param("phq9", {"1": 0}, 24, True, id="phq9-1-zero-24"),
        pytest.param("phq9", {"1": 0}, 25, False, id="phq9-1-zero-25"),
        pytest.param("phq9", {"1": 3}, 2, False, id="phq9-below-answered-sum"),
        pytest.param("phq9", {"1": 3}, 3, True, id="phq9-at-answered-sum"),
        pytest.param("phq9", {"10": 3}, 27, True, id="phq9-unscored-item-does-not-count"),
        pytest.param("phq9", PHQ9_1_TO_8_MAX, 27, True, id="phq9-item9-missing-27"),
        pytest.param("phq9", PHQ9_EXAMPLE, 9, True, id="phq9-complete-equal"),
        pytest.param("phq9", PHQ9_EXAMPLE, 10, False, id="phq9-complete-unequal"),
        pytest.param("gad7", {"1": 3, "2": 3}, 5, False, id="gad7-below"),
        pytest.param("pcl5", {"1": 0}, 77, False, id="pcl5-above"),
        pytest.param("pcl5", {"1": 0}, 76, True, id="pcl5-at-max"),
        pytest.param("madrs", {"1": 6, "2": 6}, 11, False, id="madrs-below"),
        pytest.param("cadss", {str(n): 4 for n in range(1, 23)}, 87, False, id="cadss-below"),
        pytest.param("phq2", {"1": 0}, 4, False, id="phq2-above"),
        pytest.param("cssrs", {"1": 0}, 3, True, id="cssrs-high-reachable"),
        pytest.param("cssrs", {"1": 1}, 0, False, id="cssrs-none-unreachable-after-yes"),
        pytest.param("cssrs", {"4": 1}, 2, False, id="cssrs-intent-cannot-be-moderate"),
        pytest.param("cssrs", {"1": 0, "2": 0, "3": 0, "5": 0}, 1, False, id="cssrs-low-unreachable"),
        pytest.param("cssrs", _cssrs(), 3, False, id="cssrs-complete-unequal"),
    ],
)
def test_check_total_against_partial_items(key: str, answers: dict[str, int], total: int, ok: bool) -> None:
    instrument = get_instrument(key)
    if ok:
        instrument.check_total(total, answers)
    else:
        with pytest.raises(InstrumentError) as raised:
            instrument.check_total(total, answers)
        assert [key for key, _ in raised.value.errors] == ["total"]
        assert str(total) not in raised.value.errors[0][1]


@pytest.mark.parametrize(
    ("key", "answers", "bounds"),
    [
        pytest.param("phq9", {"1": 2}, (2, 26), id="phq9"),
        pytest.param("phq9", {}, (0, 27), id="phq9-empty"),
        pytest.param("cssrs", {"1": 1}, (1, 3), id="cssrs"),
        pytest.param("cssrs", _cssrs(), (0, 0), id="cssrs-complete"),
    ],
)
def test_total_bounds(key: str, answers: dict[str, int], bounds: tuple[int, int]) -> None:
    assert get_instrument(key).total_bounds(answers) == bounds


@pytest.mark.parametrize(
    ("key", "answers", "missing"),
    [
        pytest.param("phq9", PHQ9_1_TO_8_MAX, ("9",), id="phq9-item9"),
        pytest.param("phq9", PHQ9_EXAMPLE, (), id="phq9-item10-is-optional"),
        pytest.param("cssrs", {"1": 0, "2": 1, "6": 0}, ("3", "4", "5"), id="cssrs-yes-on-2-needs-3-5"),
        pytest.param("cssrs", {"1": 0, "2": 0, "6": 1}, ("6b",), id="cssrs-yes-on-6-needs-6b"),
        pytest.param("cssrs", _cssrs(), (), id="cssrs-complete"),
    ],
)
def test_missing_required(key: str, answers: dict[str, int], missing: tuple[str, ...]) -> None:
    assert get_instrument(key).missing_required(answers) == missing
