"""Code tables of mappings.instruments: systems, formats, uniqueness, emitted answer codes, URLs."""

import re

import pytest

from mappings.instruments import INSTRUMENTS, LOCAL_SYSTEM, LOINC, Instrument, get_instrument

LOINC_TERM = re.compile(r"\d{1,7}-\d")
LOINC_ANSWER = re.compile(r"LA\d{1,6}-\d")
LOCAL_CODE = re.compile(r"[a-z0-9]+(-[a-z0-9]+)+")

ALL = [pytest.param(instrument, id=key) for key, instrument in INSTRUMENTS.items()]

#: LOINC codes sent without a display: their long common names were not found in any source (docs/codes.md,
#: LOINC: C-SSRS screener); the question wording travels as the item text
DISPLAY_LEFT_OUT = ("93246-7", "93247-5", "93248-3", "93249-1", "93250-9", "93267-3", "93269-9")


def _loinc_check_digit(number: str) -> int:
    """LOINC mod-10 check digit of a term code's numeric part."""
    digits = number[::-1]
    doubled = str(int(digits[0::2][::-1]) * 2)
    total = sum(int(d) for d in digits[1::2][::-1] + doubled)
    return (10 - total % 10) % 10


@pytest.mark.parametrize("instrument", ALL)
def test_codes_well_formed(instrument: Instrument) -> None:
    for code in instrument.codes():
        assert code.system in {LOINC, LOCAL_SYSTEM}
        assert code.display.strip() == code.display
        assert bool(code.display) != (code.code in DISPLAY_LEFT_OUT), code
        if code.system == LOCAL_SYSTEM:
            assert LOCAL_CODE.fullmatch(code.code), code
            assert code.code.startswith(f"{instrument.key}-"), code
        elif code.code.startswith("LA"):
            assert LOINC_ANSWER.fullmatch(code.code), code
        else:
            assert LOINC_TERM.fullmatch(code.code), code
            number, check = code.code.split("-")
            assert _loinc_check_digit(number) == int(check), code


@pytest.mark.parametrize("instrument", ALL)
def test_structure(instrument: Instrument) -> None:
    keys = [item.key for item in instrument.items]
    expected = [str(n) for n in range(1, len(keys) + 1)]
    if instrument.key == "cssrs":
        expected[-1] = "6b"
    assert keys == expected
    scored = [item for item in instrument.items if item.scored]
    if instrument.key != "cssrs":  # C-SSRS total is a risk ordinal, not a sum
        assert instrument.min_total == sum(item.min_score for item in scored)
        assert instrument.max_total == sum(item.max_score for item in scored)
    for item in instrument.items:
        assert [a.score for a in item.answers] == list(range(item.min_score, item.max_score + 1))
        assert item.text
    previous = instrument.min_total - 1
    for band in instrument.bands:
        assert band.low == previous + 1
        previous = band.high
    assert previous in (instrument.max_total, instrument.min_total - 1)  # bands cover the range, or no bands


def test_local_codes_unique_across_instruments() -> None:
    owners: dict[str, set[str]] = {}
    for instrument in INSTRUMENTS.values():
        for code in instrument.codes():
            if code.system == LOCAL_SYSTEM:
                owners.setdefault(code.code, set()).add(instrument.key)
    assert all(len(keys) == 1 for keys in owners.values())


@pytest.mark.parametrize(
    ("key", "panel", "total"),
    [
        pytest.param("phq9", (LOINC, "44249-1"), (LOINC, "44261-6"), id="phq9"),
        pytest.param("phq2", (LOINC, "55757-9"), (LOINC, "55758-7"), id="phq2"),
        pytest.param("gad7", (LOINC, "69737-5"), (LOINC, "70274-6"), id="gad7"),
        pytest.param("pcl5", (LOINC, "101697-1"), (LOINC, "101698-9"), id="pcl5"),
        pytest.param("cssrs", (LOINC, "93373-9"), (LOINC, "93374-7"), id="cssrs"),
        pytest.param("madrs", (LOCAL_SYSTEM, "madrs-panel"), (LOCAL_SYSTEM, "madrs-total"), id="madrs"),
        pytest.param("cadss", (LOCAL_SYSTEM, "cadss-panel"), (LOCAL_SYSTEM, "cadss-total"), id="cadss"),
    ],
)
def test_panel_and_total_codes(key: str, panel: tuple[str, str], total: tuple[str, str]) -> None:
    instrument = get_instrument(key)
    assert instrument.panel is not None
    assert (instrument.panel.system, instrument.panel.code) == panel
    assert (instrument.total_code.system, instrument.total_code.code) == total


@pytest.mark.parametrize(
    ("key", "url"),
    [
        pytest.param("phq9", "http://loinc.org/q/44249-1", id="phq9"),
        pytest.param("phq2", "http://loinc.org/q/55757-9", id="phq2"),
        pytest.param("gad7", "http://loinc.org/q/69737-5", id="gad7"),
        pytest.param("cssrs", "http://loinc.org/q/93373-9", id="cssrs"),
        pytest.param("pcl5", "https://kap-gateway.org/fhir/Questionnaire/pcl5", id="pcl5"),
        pytest.param("madrs", "https://kap-gateway.org/fhir/Questionnaire/madrs", id="madrs"),
        pytest.param("cadss", "https://kap-gateway.org/fhir/Questionnaire/cadss", id="cadss"),
    ],
)
def test_questionnaire_url(key: str, url: str) -> None:
    assert get_instrument(key).questionnaire_url == url


@pytest.mark.parametrize(
    ("key", "item_key", "score", "code"),
    [
        pytest.param("phq9", "1", 0, "LA6568-5", id="phq9-0"),
        pytest.param("phq9", "44260-8", 3, "LA6571-9", id="phq9-by-item-code"),
        pytest.param("phq9", "10", 2, "LA6575-0", id="phq9-difficulty-very"),
        pytest.param("phq9", "10", 3, "LA6574-3", id="phq9-difficulty-extremely"),
        pytest.param("phq2", "2", 1, "LA6569-3", id="phq2-1"),
        pytest.param("gad7", "2", 2, "LA18938-3", id="gad7-item2-emits-form-code"),
        pytest.param("gad7", "3", 2, "LA6570-1", id="gad7-item3"),
        pytest.param("cssrs", "6b", 1, "LA33-6", id="cssrs-yes"),
        pytest.param("cssrs", "2", 0, "LA32-8", id="cssrs-no"),
        pytest.param("phq9", "1", 4, None, id="out-of-range"),
        pytest.param("madrs", "1", 3, None, id="madrs-uncoded"),
        pytest.param("pcl5", "1", 3, None, id="pcl5-uncoded"),
    ],
)
def test_answer_code(key: str, item_key: str, score: int, code: str | None) -> None:
    found = get_instrument(key).answer_code(item_key, score)
    assert (found.code if found else None) == code
    if found is not None:
        assert found.system == LOINC


def test_phq9_band_codes_are_ll382_3() -> None:
    codes = [band.code.code for band in get_instrument("phq9").bands if band.code]
    assert codes == ["LA6708-7", "LA6709-5", "LA6710-3", "LA6711-1", "LA6712-9"]


def test_phq9_difficulty_item_is_unscored() -> None:
    phq9 = get_instrument("phq9")
    assert [item.key for item in phq9.items if not item.scored] == ["10"]
    assert phq9.item("10").code.code == "69722-7"


def test_phq2_items_are_phq9_items_1_and_2() -> None:
    assert get_instrument("phq2").items == get_instrument("phq9").items[:2]


@pytest.mark.parametrize("instrument", ALL)
def test_codes_listed_once(instrument: Instrument) -> None:
    codes = instrument.codes()
    assert len(codes) == len(set(codes))
    assert instrument.total_code in codes


REPORTED_2W = " in last 2 weeks [Reported.PHQ]"

#: every LOINC code the instruments send, with the display LOINC publishes (long common name for terms, the
#: answer text of its answer list for LA codes); sources per row in docs/codes.md (LOINC)
LOINC_DISPLAYS: dict[str, str] = {
    # PHQ-9 / PHQ-2 items (long common names)
    "44250-9": "Little interest or pleasure in doing things in last 2 weeks",
    "44255-8": "Feeling down, depressed, or hopeless in last 2 weeks",
    "44259-0": "Trouble falling or staying asleep, or sleeping too much" + REPORTED_2W,
    "44254-1": "Feeling tired or having little energy" + REPORTED_2W,
    "44251-7": "Poor appetite or overeating" + REPORTED_2W,
    "44258-2": "Feeling bad about yourself - or that you are a failure or have let yourself or your family down"
    + REPORTED_2W,
    "44252-5": "Trouble concentrating on things, such as reading the newspaper or watching television"
    + REPORTED_2W,
    "44253-3": "Moving or speaking so slowly that other people could have noticed. Or the opposite - being so "
    "fidgety or restless that you have been moving around a lot more than usual" + REPORTED_2W,
    "44260-8": "Thoughts that you would be better off dead, or of hurting yourself in some way" + REPORTED_2W,
    "69722-7": "How difficult have these made it for you to do your work, take care of things at home, or get "
    "along with other people [Reported.PHQ]",
    # GAD-7 items
    "69725-0": "Feeling nervous, anxious or on edge in last 2 weeks",
    "68509-9": "Not able to stop or control worrying in the last 2 weeks",
    "69733-4": "Worrying too much about different things" + REPORTED_2W,
    "69734-2": "Trouble relaxing" + REPORTED_2W,
    "69735-9": "Being so restless that it is hard to sit still" + REPORTED_2W,
    "69689-8": "Becoming easily annoyed or irritable in last 4 weeks [Reported.PHQ]",
    "69736-7": "Feeling afraid as if something awful might happen" + REPORTED_2W,
    # panels and totals
    "44249-1": "PHQ-9 quick depression assessment panel [Reported.PHQ]",
    "44261-6": "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]",
    "55757-9": "Patient Health Questionnaire 2 item (PHQ-2) [Reported]",
    "55758-7": "Patient Health Questionnaire 2 item (PHQ-2) total score [Reported]",
    "69737-5": "Generalized anxiety disorder 7 item (GAD-7)",
    "70274-6": "Generalized anxiety disorder 7 item (GAD-7) total score [Reported.PHQ]",
    "101697-1": "Post traumatic stress disorder checklist - civilian version DSM-5 [PCL-5]",
    "101698-9": "PTSD PCL-5 score [PCL-5]",
    "93373-9": "Columbia - suicide severity rating scale screener - recent [C-SSRS]",
    "93374-7": "Suicide risk level",
    # answer list LL358-3
    "LA6568-5": "Not at all",
    "LA6569-3": "Several days",
    "LA6570-1": "More than half the days",
    "LA6571-9": "Nearly every day",
    "LA18938-3": "More days than not",
    # LL359-1
    "LA6572-7": "Not difficult at all",
    "LA6573-5": "Somewhat difficult",
    "LA6575-0": "Very difficult",
    "LA6574-3": "Extremely difficult",
    # LL382-3 (PHQ-9 severity), loinc.org/LL382-3 v2.78
    "LA6708-7": "None",
    "LA6709-5": "Mild depression",
    "LA6710-3": "Moderate depression",
    "LA6711-1": "Moderately severe depression",
    "LA6712-9": "Severe depression",
    # LL5384-4 (C-SSRS Yes/No) and the risk level
    "LA32-8": "No",
    "LA33-6": "Yes",
    "LA9194-7": "Low",
    **dict.fromkeys(DISPLAY_LEFT_OUT, ""),
}


def _loinc_codes() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for instrument in INSTRUMENTS.values():
        for code in instrument.codes():
            if code.system == LOINC:
                found.setdefault(code.code, set()).add(code.display)
    return found


@pytest.mark.parametrize(("code", "display"), [pytest.param(c, d, id=c) for c, d in LOINC_DISPLAYS.items()])
def test_loinc_display_is_as_published(code: str, display: str) -> None:
    assert _loinc_codes()[code] == {display}


def test_every_loinc_code_has_its_published_display_checked() -> None:
    assert set(_loinc_codes()) == set(LOINC_DISPLAYS)


@pytest.mark.parametrize(
    ("key", "item_key", "text"),
    [
        pytest.param("phq9", "1", "Little interest or pleasure in doing things", id="phq9-1"),
        pytest.param(
            "phq9",
            "9",
            "Thoughts that you would be better off dead, or of hurting yourself in some way",
            id="phq9-9",
        ),
        pytest.param(
            "phq9",
            "10",
            "How difficult have these problems made it for you to do your work, take care of things at home, or "
            "get along with other people?",
            id="phq9-10",
        ),
        pytest.param("gad7", "4", "Trouble relaxing", id="gad7-4"),
        pytest.param(
            "cssrs",
            "1",
            "Have you wished you were dead or wished you could go to sleep and not wake up?",
            id="cssrs-1",
        ),
    ],
)
def test_question_text_stays_in_text(key: str, item_key: str, text: str) -> None:
    assert get_instrument(key).item(item_key).text == text


def test_phq9_band_text_is_the_loinc_display() -> None:
    for band in get_instrument("phq9").bands:
        assert band.code is not None and band.display == band.code.display
