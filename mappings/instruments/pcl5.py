"""PCL-5 (PTSD Checklist for DSM-5), LOINC panel 101697-1.

Sources (docs/codes.md, LOINC: PCL-5; status P): healthassure.in and findacode.com pages for LOINC 101697-1
(panel) and 101698-9 (PCL-5 score); scoring from comorbidityguidelines.org.au (PCL-5 scoring).

* 20 items scored 0-4 ("Not at all" … "Extremely"), total 0-80 (101698-9).
* LOINC item codes and an LHC form are unverified (U), so items use local codes ``pcl5-item-<n>`` and the
  Questionnaire is the gateway's own. Item labels are short neutral paraphrases of the symptom each item
  covers, not the instrument's wording.
* No empirically derived severity ranges exist; the only band split is the provisional-PTSD cut-point (33
  used; the literature range is 31-33): 0-32 ``below-threshold``, 33-80 ``probable-ptsd`` (local codes).
* DSM-5 cluster subscores: ``B`` items 1-5, ``C`` 6-7, ``D`` 8-14, ``E`` 15-20.
"""

from mappings.instruments.base import (
    Instrument,
    Subscale,
    local_bands,
    local_items,
    local_questionnaire_url,
    loinc,
    numeric_options,
)

ANSWERS = numeric_options(("Not at all", "A little bit", "Moderately", "Quite a bit", "Extremely"))

ITEM_LABELS = (
    "intrusive memories",
    "distressing dreams",
    "flashbacks",
    "upset by reminders",
    "physical reactions to reminders",
    "avoiding internal reminders",
    "avoiding external reminders",
    "trouble remembering parts of the event",
    "strong negative beliefs",
    "blaming self or others",
    "strong negative feelings",
    "loss of interest in activities",
    "feeling distant or cut off",
    "trouble having positive feelings",
    "irritability or angry outbursts",
    "risky or self-destructive behaviour",
    "being superalert or on guard",
    "easily startled",
    "difficulty concentrating",
    "trouble sleeping",
)
"""Neutral labels (own wording) of items 1-20."""

ITEMS = local_items("pcl5", "PCL-5", ITEM_LABELS, ANSWERS)

CLUSTERS = {"B": range(1, 6), "C": range(6, 8), "D": range(8, 15), "E": range(15, 21)}
"""DSM-5 symptom clusters by item number."""

PCL5 = Instrument(
    key="pcl5",
    title="PTSD Checklist for DSM-5 (PCL-5)",
    panel=loinc("101697-1", "Post traumatic stress disorder checklist - civilian version DSM-5 [PCL-5]"),
    total_code=loinc("101698-9", "PTSD PCL-5 score [PCL-5]"),
    items=ITEMS,
    bands=local_bands(
        "pcl5",
        "PCL-5",
        ((0, 32, "below-threshold", "Below threshold"), (33, 80, "probable-ptsd", "Probable PTSD")),
    ),
    min_total=0,
    max_total=80,
    questionnaire_url=local_questionnaire_url("pcl5"),
    subscales=tuple(Subscale(name, tuple(str(n) for n in numbers)) for name, numbers in CLUSTERS.items()),
)
