"""C-SSRS screener (Columbia Suicide Severity Rating Scale, screen version, recent), LOINC panel 93373-9.

Sources (docs/codes.md, LOINC: C-SSRS screener): HL7/us-behavioral-health-profiles ``C-SSRS-example-1.xml``
(item codes, 93374-7, LA9194-7 "Low"; V); cdn.loinc.org/93245-9/panel (Yes/No answers LA33-6 / LA32-8; V); panel 93373-9
and its LHC-Forms Questionnaire ``http://loinc.org/q/93373-9`` seen only in public SMART-app code (P).

Items ``"1"``..``"6"`` and ``"6b"`` (6b, "within the past 3 months?", follows a Yes on item 6; it keeps the
screener's own numbering instead of becoming ``"7"``). Every item is Yes = 1 / No = 0.

Scoring choice — the "total" is the **risk level as an ordinal**, not a sum:

====  =========  =======================================================  ==============================
total band key   rule (first match wins)                                  band code
====  =========  =======================================================  ==============================
3     high       item 4 or 5 Yes, or item 6 Yes with 6b Yes               local ``cssrs-risk-high``
2     moderate   item 3 Yes, or item 6 Yes with 6b No (> 3 months ago)    local ``cssrs-risk-moderate``
1     low        item 1 or 2 Yes                                          LOINC LA9194-7 "Low" (V)
0     none       all No                                                   local ``cssrs-risk-none``
====  =========  =======================================================  ==============================

so ``band(total)`` is the risk level and the total's code is 93374-7 "Suicide risk level" (an ordinal in
LOINC). Only LA9194-7 is verified; the moderate/high (and none) answers have no verified LA codes and use
local codes. "Item 6 Yes, more than 3 months ago → moderate" follows the screener's published triage points.
The number of Yes answers on items 1-6 is reported as subscore ``yes-count``.

The screener skips items 3-5 when item 2 is No and asks 6b only after a Yes on 6. The total (and
``yes-count``) is therefore computed when items 1, 2 and 6 are answered, plus 3-5 if item 2 is Yes and 6b if
item 6 is Yes; otherwise it is ``None``. Answers to skipped items are accepted and count if Yes.

Safety flags: any Yes on items 1-6 → ``suicidal-ideation`` (item 1, the wish to be dead, is passive ideation,
as PHQ-9 item 9 > 0 is); risk high (item 4 or 5 Yes, or 6 and 6b Yes) → also ``high-suicide-risk``. With a
partial form and a given total the flags come from every completion of the answers that reaches that risk level
(flags all of them raise are certain, see ``base.Safety``): ``{"1": 0}`` with total 3 (high) is certainly
``suicidal-ideation`` and ``high-suicide-risk``. A total is accepted only if some completion reaches it. The
safety items are the items the screener requires (:func:`required_items`): all of them are suicide items.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import product

from mappings.instruments.base import (
    HIGH_SUICIDE_RISK,
    SUICIDAL_IDEATION,
    AnswerOption,
    Band,
    FlagRule,
    Instrument,
    Item,
    Safety,
    local,
    loinc,
    loinc_form_url,
)

YES_NO = (
    AnswerOption(0, loinc("LA32-8", "No"), "No"),
    AnswerOption(1, loinc("LA33-6", "Yes"), "Yes"),
)
"""LOINC answer list LL5384-4 as scores: No = 0, Yes = 1."""

ITEM_TABLE: tuple[tuple[str, str, str], ...] = (
    ("1", "93246-7", "Have you wished you were dead or wished you could go to sleep and not wake up?"),
    ("2", "93247-5", "Have you actually had any thoughts of killing yourself?"),
    ("3", "93248-3", "Have you been thinking about how you might do this?"),
    ("4", "93249-1", "Have you had these thoughts and had some intention of acting on them?"),
    (
        "5",
        "93250-9",
        "Have you started to work out or worked out the details of how to kill yourself? "
        "Do you intend to carry out this plan?",
    ),
    (
        "6",
        "93267-3",
        "Have you ever done anything, started to do anything, or prepared to do anything to end your life?",
    ),
    ("6b", "93269-9", "Was this within the past 3 months?"),
)

ITEMS = tuple(Item(key, loinc(code, ""), text, 0, 1, YES_NO) for key, code, text in ITEM_TABLE)
"""Item codings carry no display: the LOINC long common names of 93246-7 .. 93269-9 were not found in any
stored source (U), and the question wording is not the LOINC display; the wording travels as item ``text``."""

NONE, LOW, MODERATE, HIGH = range(4)

BANDS = (
    Band(NONE, NONE, "none", "No risk identified", local("cssrs-risk-none", "C-SSRS: no risk identified")),
    Band(LOW, LOW, "low", "Low risk", loinc("LA9194-7", "Low")),
    Band(
        MODERATE, MODERATE, "moderate", "Moderate risk", local("cssrs-risk-moderate", "C-SSRS: moderate risk")
    ),
    Band(HIGH, HIGH, "high", "High risk", local("cssrs-risk-high", "C-SSRS: high risk")),
)

_COUNTED = ("1", "2", "3", "4", "5", "6")


def _yes(values: Mapping[str, int], *keys: str) -> bool:
    return any(values.get(key) == 1 for key in keys)


def required_items(values: Mapping[str, int]) -> tuple[str, ...]:
    """Items that must be answered for a risk level, given the skip logic and the answers so far."""
    required = ["1", "2"]
    if _yes(values, "2"):
        required += ["3", "4", "5"]
    required.append("6")
    if _yes(values, "6"):
        required.append("6b")
    return tuple(required)


def is_high_risk(values: Mapping[str, int]) -> bool:
    return _yes(values, "4", "5") or (_yes(values, "6") and _yes(values, "6b"))


def risk_level(values: Mapping[str, int]) -> int:
    """Risk ordinal 0-3 (see the module docstring); assumes the required items are answered."""
    if is_high_risk(values):
        return HIGH
    if _yes(values, "3", "6"):
        return MODERATE
    if _yes(values, "1", "2"):
        return LOW
    return NONE


@dataclass(frozen=True)
class CssrsInstrument(Instrument):
    """C-SSRS screener: the total is the risk-level ordinal instead of a sum."""

    def _total_range(self) -> tuple[int, int]:
        return NONE, HIGH

    def _complete(self, values: Mapping[str, int]) -> bool:
        return all(key in values for key in required_items(values))

    def _required(self, values: Mapping[str, int]) -> tuple[str, ...]:
        return required_items(values)

    def _completions(self, values: Mapping[str, int]) -> Iterator[dict[str, int]]:
        """Every way the screener could have been finished: No/Yes for each unanswered item it would ask (at most
        2**7), answered items kept; an unanswered item the skip logic skips in that completion counts as No."""
        open_keys = [item.key for item in self.items if item.key not in values]
        for answers in product((0, 1), repeat=len(open_keys)):
            completion = {**values, **dict(zip(open_keys, answers, strict=True))}
            asked = required_items(completion)
            if all(completion[key] == 0 or key in asked for key in open_keys):
                yield completion

    def _total_bounds(self, values: Mapping[str, int]) -> tuple[int, int]:
        levels = [risk_level(completion) for completion in self._completions(values)]
        return min(levels), max(levels)

    def _total_possible(self, values: Mapping[str, int], total: int) -> bool:
        return any(risk_level(completion) == total for completion in self._completions(values))

    def _safety_items(self, values: Mapping[str, int]) -> tuple[str, ...]:
        return required_items(values)

    def _safety(self, values: Mapping[str, int], total: int | None) -> Safety:
        outcomes = [
            self._flags(completion)
            for completion in self._completions(values)
            if total is None or risk_level(completion) == total
        ]
        if not outcomes:  # an impossible total (refused by check_total): fall back to the answers
            outcomes = [self._flags(values)]
        order = [flag for flags in outcomes for flag in flags]
        certain = [flag for flag in dict.fromkeys(order) if all(flag in flags for flags in outcomes)]
        missing = tuple(key for key in required_items(values) if key not in values)
        return Safety(tuple(certain), tuple(dict.fromkeys(order)), missing)

    def _total(self, values: Mapping[str, int]) -> int | None:
        return risk_level(values) if self._complete(values) else None

    def _flags(self, values: Mapping[str, int]) -> tuple[str, ...]:
        flags = super()._flags(values)
        return (*flags, HIGH_SUICIDE_RISK) if is_high_risk(values) else flags

    def _subscores(self, values: Mapping[str, int]) -> dict[str, int]:
        if not self._complete(values):
            return {}
        return {"yes-count": sum(values.get(key, 0) for key in _COUNTED)}


CSSRS = CssrsInstrument(
    key="cssrs",
    title="Columbia Suicide Severity Rating Scale screener, recent (C-SSRS)",
    panel=loinc("93373-9", "Columbia - suicide severity rating scale screener - recent [C-SSRS]"),
    total_code=loinc("93374-7", "Suicide risk level"),
    items=ITEMS,
    bands=BANDS,
    min_total=NONE,
    max_total=HIGH,
    questionnaire_url=loinc_form_url("93373-9"),
    flag_rules=tuple(FlagRule(SUICIDAL_IDEATION, key, 1) for key in ("1", "2", "3", "4", "5", "6")),
)
