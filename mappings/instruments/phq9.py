"""PHQ-9 (Patient Health Questionnaire-9), LOINC panel 44249-1.

Sources (docs/codes.md, LOINC: PHQ-9; all status V): cdn.loinc.org/44261-6; loinc.org/LL358-3;
loinc.org/LL382-3; US Core 7.0.0 ``Questionnaire-phq-9-example``; HL7/pco-ig ``Questionnaire-PHQ9.json``; LOINC form
``http://loinc.org/q/44249-1``.

* Items 1-9 score 0-3 with the LOINC answer list LL358-3 (defined here and shared with PHQ-2 and GAD-7, which
  use the same list); total 0-27 (44261-6).
* Item 10 (69722-7, difficulty, answer list LL359-1) is optional and not scored; its stored "score" is the
  answer's position 0-3 in LL359-1 so it can be validated and coded like the others.
* Bands 0-4 none (minimal), 5-9 mild, 10-14 moderate, 15-19 moderately severe, 20-27 severe, coded with
  LL382-3 answers (LL382-3 belongs to the deprecated 44262-4, so these codes go in ``Observation.interpretation``
  only) with LOINC's displays: "None", "Mild depression", "Moderate depression", "Moderately severe depression",
  "Severe depression" (loinc.org/LL382-3, v2.78; V).
* Item codings carry the LOINC long common name as display; the question wording is the item ``text``.
* Safety: item 9 (44260-8) > 0 raises ``suicidal-ideation`` (route to clinician); with a total and item 9
  unanswered, ``total - items 1-8 answered - max of the other unanswered`` bounds item 9 from below.
"""

from mappings.instruments.base import (
    SUICIDAL_IDEATION,
    AnswerOption,
    Band,
    FlagRule,
    Instrument,
    Item,
    loinc,
    loinc_form_url,
)


def _options(rows: tuple[tuple[str, str], ...]) -> tuple[AnswerOption, ...]:
    return tuple(
        AnswerOption(score, loinc(code, display), display) for score, (code, display) in enumerate(rows)
    )


LL358_3 = _options(
    (
        ("LA6568-5", "Not at all"),
        ("LA6569-3", "Several days"),
        ("LA6570-1", "More than half the days"),
        ("LA6571-9", "Nearly every day"),
    )
)
"""LOINC answer list LL358-3 (scores 0-3), shared by PHQ-9, PHQ-2 and GAD-7."""

LL359_1 = _options(
    (
        ("LA6572-7", "Not difficult at all"),
        ("LA6573-5", "Somewhat difficult"),
        ("LA6575-0", "Very difficult"),
        ("LA6574-3", "Extremely difficult"),
    )
)
"""LOINC answer list LL359-1 (PHQ difficulty item; not scored)."""

REPORTED_2W = " in last 2 weeks [Reported.PHQ]"

ITEM_TABLE: tuple[tuple[str, str, str], ...] = (
    # (LOINC code, LOINC long common name = Coding.display, question text = item text)
    (
        "44250-9",
        "Little interest or pleasure in doing things in last 2 weeks",
        "Little interest or pleasure in doing things",
    ),
    (
        "44255-8",
        "Feeling down, depressed, or hopeless in last 2 weeks",
        "Feeling down, depressed, or hopeless",
    ),
    (
        "44259-0",
        "Trouble falling or staying asleep, or sleeping too much" + REPORTED_2W,
        "Trouble falling or staying asleep, or sleeping too much",
    ),
    (
        "44254-1",
        "Feeling tired or having little energy" + REPORTED_2W,
        "Feeling tired or having little energy",
    ),
    ("44251-7", "Poor appetite or overeating" + REPORTED_2W, "Poor appetite or overeating"),
    (
        "44258-2",
        "Feeling bad about yourself - or that you are a failure or have let yourself or your family down"
        + REPORTED_2W,
        "Feeling bad about yourself-or that you are a failure or have let yourself or your family down",
    ),
    (
        "44252-5",
        "Trouble concentrating on things, such as reading the newspaper or watching television" + REPORTED_2W,
        "Trouble concentrating on things, such as reading the newspaper or watching television",
    ),
    (
        "44253-3",
        "Moving or speaking so slowly that other people could have noticed. Or the opposite - being so fidgety "
        "or restless that you have been moving around a lot more than usual" + REPORTED_2W,
        "Moving or speaking so slowly that other people could have noticed. Or the opposite - being so "
        "fidgety or restless that you have been moving around a lot more than usual",
    ),
    (
        "44260-8",
        "Thoughts that you would be better off dead, or of hurting yourself in some way" + REPORTED_2W,
        "Thoughts that you would be better off dead, or of hurting yourself in some way",
    ),
)
"""(LOINC code, long common name, question text) of the scored items 1-9, in form order. Long common names:
loinc.org/LL358-3 (terms using the list; V) for items 4-9; items 1-3 are not listed there (P: HL7 PACIO IG FSH
sources, a public HL7-validator report quoting tx.fhir.org for 44255-8, NLM CDE repository tests for 44259-0)."""

SCORED_ITEMS = tuple(
    Item(str(number), loinc(code, name), text, 0, 3, LL358_3)
    for number, (code, name, text) in enumerate(ITEM_TABLE, start=1)
)

_DIFFICULTY_TEXT = (
    "How difficult have these problems made it for you to do your work, take care of things at home, "
    "or get along with other people?"
)
#: long common name of 69722-7 as loinc.org/LL359-1 lists it (V)
_DIFFICULTY_NAME = (
    "How difficult have these made it for you to do your work, take care of things at home, or get along with "
    "other people [Reported.PHQ]"
)
DIFFICULTY_ITEM = Item(
    "10", loinc("69722-7", _DIFFICULTY_NAME), _DIFFICULTY_TEXT, 0, 3, LL359_1, scored=False
)

PHQ9 = Instrument(
    key="phq9",
    title="Patient Health Questionnaire-9 (PHQ-9)",
    panel=loinc("44249-1", "PHQ-9 quick depression assessment panel [Reported.PHQ]"),
    total_code=loinc("44261-6", "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]"),
    items=(*SCORED_ITEMS, DIFFICULTY_ITEM),
    bands=(
        # displays exactly as loinc.org/LL382-3 (v2.78) publishes them; the band text is the same display
        Band(0, 4, "minimal", "None", loinc("LA6708-7", "None")),
        Band(5, 9, "mild", "Mild depression", loinc("LA6709-5", "Mild depression")),
        Band(10, 14, "moderate", "Moderate depression", loinc("LA6710-3", "Moderate depression")),
        Band(
            15,
            19,
            "moderately-severe",
            "Moderately severe depression",
            loinc("LA6711-1", "Moderately severe depression"),
        ),
        Band(20, 27, "severe", "Severe depression", loinc("LA6712-9", "Severe depression")),
    ),
    min_total=0,
    max_total=27,
    questionnaire_url=loinc_form_url("44249-1"),
    flag_rules=(FlagRule(SUICIDAL_IDEATION, "9", 1),),
)
