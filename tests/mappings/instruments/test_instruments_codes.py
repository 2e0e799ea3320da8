"""Code tables of mappings.instruments: systems, formats, uniqueness, emitted answer codes, URLs."""

import re

import pytest

from mappings.instruments import INSTRUMENTS, LOCAL_SYSTEM, LOINC, Instrument, get_instrument

LOINC_TERM = re.compile(r"\d{1,7}-\d")
LOINC_ANSWER = re.compile(r"LA\d{1,6}-\d")
LOCAL_CODE = re.compile(r"[a-z0-9]+(-[a-z0-9]+)+")

ALL = [pytest.param(instrument, id=key) for key, instrument in INSTRUMENTS.items()]


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
        assert code.display.strip() == code.display and code.display
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
