"""GAD-7 (Generalized Anxiety Disorder 7-item scale), LOINC panel 69737-5.

Sources (docs/codes.md, LOINC: GAD-7): HL7/pco-ig ``Questionnaire-GAD7.json`` (LOINC form 69737-5; items V);
loinc.org/69729-2 (total 70274-6; V); loinc.org/LL358-3 (answers; V); bands from rdrr.io cliot gad7 and
form.jotform.com/221654279772061 (P).

* Items 1-7 score 0-3 with LL358-3 (shared with PHQ-9); total 0-21 (70274-6).
* Quirk: in the LOINC form item 2 (68509-9) offers LA18938-3 "More days than not" for score 2 instead of
  LA6570-1 "More than half the days". Item 2 emits LA18938-3 and accepts LA6570-1 as an alternate on input.
* Bands 0-4 minimal, 5-9 mild, 10-14 moderate, 15-21 severe (no verified LOINC answer codes → local codes).
* The difficulty item (69726-8) is unverified (U) and not part of the LOINC form, so it is not defined here.
"""

from mappings.instruments.base import AnswerOption, Instrument, Item, local_bands, loinc, loinc_form_url
from mappings.instruments.phq9 import LL358_3

_MORE_DAYS_THAN_NOT = AnswerOption(
    2,
    loinc("LA18938-3", "More days than not"),
    "More days than not",
    alternate_codes=(loinc("LA6570-1", "More than half the days"),),
)
ITEM_2_ANSWERS = (*LL358_3[:2], _MORE_DAYS_THAN_NOT, *LL358_3[3:])
"""LL358-3 as the LOINC form uses it for item 2 (68509-9)."""

ITEM_TABLE: tuple[tuple[str, str, str], ...] = (
    # (LOINC code, long common name = Coding.display, question text)
    ("69725-0", "Feeling nervous, anxious or on edge in last 2 weeks", "Feeling nervous, anxious or on edge"),
    (
        "68509-9",
        "Not able to stop or control worrying in the last 2 weeks",
        "Over the past 2 weeks have you not been able to stop or control worrying",
    ),
    (
        "69733-4",
        "Worrying too much about different things in last 2 weeks [Reported.PHQ]",
        "Worrying too much about different things",
    ),
    ("69734-2", "Trouble relaxing in last 2 weeks [Reported.PHQ]", "Trouble relaxing"),
    (
        "69735-9",
        "Being so restless that it is hard to sit still in last 2 weeks [Reported.PHQ]",
        "Being so restless that it is hard to sit still",
    ),
    (
        "69689-8",
        "Becoming easily annoyed or irritable in last 4 weeks [Reported.PHQ]",
        "Becoming easily annoyed or irritable",
    ),
    (
        "69736-7",
        "Feeling afraid as if something awful might happen in last 2 weeks [Reported.PHQ]",
        "Feeling afraid as if something awful might happen",
    ),
)
"""(LOINC code, long common name, question text) of items 1-7, in form order. Long common names of items 5-7:
loinc.org/LL358-3 (V); items 1-4: P (public HL7 FSH Questionnaire sources; healthassure.in for 69734-2)."""

ITEMS = tuple(
    Item(str(number), loinc(code, name), text, 0, 3, ITEM_2_ANSWERS if number == 2 else LL358_3)
    for number, (code, name, text) in enumerate(ITEM_TABLE, start=1)
)


GAD7 = Instrument(
    key="gad7",
    title="Generalized Anxiety Disorder 7-item scale (GAD-7)",
    panel=loinc("69737-5", "Generalized anxiety disorder 7 item (GAD-7)"),
    total_code=loinc("70274-6", "Generalized anxiety disorder 7 item (GAD-7) total score [Reported.PHQ]"),
    items=ITEMS,
    bands=local_bands(
        "gad7",
        "GAD-7",
        (
            (0, 4, "minimal", "Minimal"),
            (5, 9, "mild", "Mild"),
            (10, 14, "moderate", "Moderate"),
            (15, 21, "severe", "Severe"),
        ),
    ),
    min_total=0,
    max_total=21,
    questionnaire_url=loinc_form_url("69737-5"),
)
