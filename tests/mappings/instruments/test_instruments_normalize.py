"""Answer normalization, lookups and range checks for mappings.instruments."""

from collections.abc import Mapping

import pytest

from mappings.instruments import INSTRUMENTS, InstrumentError, get_instrument


@pytest.mark.parametrize(
    ("key", "answers", "expected"),
    [
        pytest.param("phq9", {"1": 2}, {"1": 2}, id="item-key"),
        pytest.param("phq9", {"44250-9": 2}, {"1": 2}, id="loinc-code"),
        pytest.param("phq9", {"/44250-9": 2}, {"1": 2}, id="loinc-linkid"),
        pytest.param("phq9", {" 1 ": 2}, {"1": 2}, id="key-whitespace"),
        pytest.param(
            "phq9", {"9": 0, "44250-9": 1, "69722-7": 3}, {"1": 1, "9": 0, "10": 3}, id="item-order"
        ),
        pytest.param("phq9", {"1": "LA6571-9"}, {"1": 3}, id="answer-code"),
        pytest.param("phq9", {"10": "LA6574-3"}, {"10": 3}, id="difficulty-answer-code"),
        pytest.param("phq2", {"44255-8": "LA6569-3"}, {"2": 1}, id="phq2-codes"),
        pytest.param("gad7", {"2": "LA18938-3"}, {"2": 2}, id="gad7-item2-form-code"),
        pytest.param("gad7", {"68509-9": "LA6570-1"}, {"2": 2}, id="gad7-item2-ll358-code"),
        pytest.param("gad7", {"1": "LA6570-1"}, {"1": 2}, id="gad7-item1-ll358-code"),
        pytest.param("madrs", {"madrs-item-10": 6}, {"10": 6}, id="local-code"),
        pytest.param("pcl5", {"pcl5-item-3": 4, "20": 0}, {"3": 4, "20": 0}, id="pcl5-local-code"),
        pytest.param("cssrs", {"93269-9": "LA33-6", "6": 1}, {"6": 1, "6b": 1}, id="cssrs-6b"),
        pytest.param("cssrs", {"1": "LA32-8"}, {"1": 0}, id="cssrs-no"),
    ],
)
def test_normalize_accepts(key: str, answers: Mapping[str, int | str], expected: dict[str, int]) -> None:
    instrument = get_instrument(key)
    normalized = instrument.normalize(answers)
    assert normalized == expected
    assert list(normalized) == list(expected)
    assert instrument.normalize(normalized) == normalized


@pytest.mark.parametrize(
    ("key", "answers", "bad_keys", "fragment"),
    [
        pytest.param("phq9", {"1": 1, "44250-9": 1}, ["1", "44250-9"], "more than once", id="duplicate"),
        pytest.param(
            "phq9", {"1": 1, "/44250-9": 1}, ["1", "/44250-9"], "more than once", id="duplicate-link"
        ),
        pytest.param("phq9", {"3": 4}, ["3"], "out of range 0-3", id="phq9-4"),
        pytest.param("phq9", {"3": -1}, ["3"], "out of range", id="negative"),
        pytest.param("phq9", {"11": 1}, ["11"], "unknown item", id="unknown-key"),
        pytest.param("phq9", {"44249-1": 1}, ["44249-1"], "unknown item", id="panel-code-is-not-an-item"),
        pytest.param("phq9", {"1": "LA9999-9"}, ["1"], "not an answer code", id="unknown-answer-code"),
        pytest.param("phq9", {"1": "LA18938-3"}, ["1"], "not an answer code", id="gad7-code-on-phq9"),
        pytest.param("phq9", {"1": "2"}, ["1"], "not an answer code", id="numeric-string"),
        pytest.param("phq9", {"1": True}, ["1"], "integer", id="bool"),
        pytest.param("phq9", {"1": 1.0}, ["1"], "integer", id="float"),
        pytest.param("phq9", {"10": 4}, ["10"], "out of range 0-3", id="difficulty-range"),
        pytest.param("cssrs", {"6b": 2}, ["6b"], "out of range 0-1", id="cssrs-yes-no"),
        pytest.param("madrs", {"1": 7}, ["1"], "out of range 0-6", id="madrs-7"),
        pytest.param("cadss", {"24": 0}, ["24"], "unknown item", id="cadss-24-items"),
        pytest.param("pcl5", {"pcl5-item-21": 0}, ["pcl5-item-21"], "unknown item", id="pcl5-item-21"),
    ],
)
def test_normalize_rejects(
    key: str, answers: Mapping[str, int | str], bad_keys: list[str], fragment: str
) -> None:
    with pytest.raises(InstrumentError) as caught:
        get_instrument(key).normalize(answers)
    assert [k for k, _ in caught.value.errors] == bad_keys
    assert all(fragment in message for _, message in caught.value.errors)


def test_normalize_lists_every_error_in_input_order() -> None:
    answers = {"1": 1, "zz": 0, "2": 9, "44250-9": 2, "9": -3, "5": 2}
    with pytest.raises(InstrumentError) as caught:
        get_instrument("phq9").normalize(answers)
    assert [key for key, _ in caught.value.errors] == ["1", "zz", "2", "44250-9", "9"]
    assert "zz" in str(caught.value)


def test_error_messages_do_not_echo_answer_values() -> None:
    with pytest.raises(InstrumentError) as caught:
        get_instrument("madrs").normalize({"1": 987654})
    assert "987654" not in str(caught.value)


def test_score_validates_its_input() -> None:
    with pytest.raises(InstrumentError):
        get_instrument("gad7").score({"1": 5})


@pytest.mark.parametrize(
    ("key", "total", "ok"),
    [
        pytest.param("phq9", 0, True, id="phq9-0"),
        pytest.param("phq9", 27, True, id="phq9-27"),
        pytest.param("phq9", 28, False, id="phq9-28"),
        pytest.param("phq9", -1, False, id="phq9-neg"),
        pytest.param("phq2", 6, True, id="phq2-6"),
        pytest.param("phq2", 7, False, id="phq2-7"),
        pytest.param("gad7", 21, True, id="gad7-21"),
        pytest.param("gad7", 22, False, id="gad7-22"),
        pytest.param("pcl5", 80, True, id="pcl5-80"),
        pytest.param("pcl5", 81, False, id="pcl5-81"),
        pytest.param("madrs", 60, True, id="madrs-60"),
        pytest.param("madrs", 61, False, id="madrs-61"),
        pytest.param("cadss", 92, True, id="cadss-92"),
        pytest.param("cadss", 93, False, id="cadss-93"),
        pytest.param("cssrs", 3, True, id="cssrs-3"),
        pytest.param("cssrs", 4, False, id="cssrs-4"),
        pytest.param("phq9", True, False, id="bool"),
        pytest.param("phq9", 9.5, False, id="float"),
    ],
)
def test_check_total(key: str, total: int, ok: bool) -> None:
    instrument = get_instrument(key)
    if ok:
        instrument.check_total(total)
    else:
        with pytest.raises(InstrumentError) as caught:
            instrument.check_total(total)
        assert caught.value.errors[0][0] == "total"


@pytest.mark.parametrize(
    ("key", "lookup", "item_key"),
    [
        pytest.param("phq9", "9", "9", id="key"),
        pytest.param("phq9", "44260-8", "9", id="loinc"),
        pytest.param("phq9", "69722-7", "10", id="difficulty"),
        pytest.param("gad7", "68509-9", "2", id="gad7"),
        pytest.param("cssrs", "93269-9", "6b", id="cssrs-6b"),
        pytest.param("pcl5", "pcl5-item-3", "3", id="local"),
    ],
)
def test_item_lookup(key: str, lookup: str, item_key: str) -> None:
    assert get_instrument(key).item(lookup).key == item_key


@pytest.mark.parametrize(
    ("key", "lookup"),
    [
        pytest.param("phq9", "0", id="zero"),
        pytest.param("phq9", "44261-6", id="total-code"),
        pytest.param("phq2", "3", id="phq2-3"),
        pytest.param("phq2", "44259-0", id="phq9-only-item"),
        pytest.param("madrs", "pcl5-item-1", id="other-instrument"),
    ],
)
def test_item_lookup_unknown(key: str, lookup: str) -> None:
    with pytest.raises(KeyError):
        get_instrument(key).item(lookup)


def test_get_instrument() -> None:
    assert set(INSTRUMENTS) == {"phq9", "phq2", "gad7", "pcl5", "cssrs", "madrs", "cadss"}
    assert all(get_instrument(key) is instrument for key, instrument in INSTRUMENTS.items())
    with pytest.raises(KeyError):
        get_instrument("bdi2")


@pytest.mark.parametrize(
    ("item_key", "code", "score"),
    [
        pytest.param("2", "LA18938-3", 2, id="form-code"),
        pytest.param("2", "LA6570-1", 2, id="ll358-code"),
        pytest.param("2", "LA6571-9", 3, id="nearly-every-day"),
        pytest.param("1", "LA6570-1", 2, id="other-item"),
    ],
)
def test_gad7_score_for_code(item_key: str, code: str, score: int) -> None:
    assert get_instrument("gad7").item(item_key).score_for_code(code) == score


def test_score_for_unknown_code() -> None:
    with pytest.raises(KeyError):
        get_instrument("gad7").item("1").score_for_code("LA18938-3")
