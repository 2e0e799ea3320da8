"""MADRS (Montgomery-Åsberg Depression Rating Scale), clinician-rated; no LOINC codes.

Sources (docs/codes.md, kap-instruments): LOINC panel/total "none found" (U) → local codes and the gateway's
own Questionnaire; structure and bands (P) from
https://en.wikipedia.org/wiki/Montgomery%E2%80%93%C3%85sberg_Depression_Rating_Scale.

* 10 items scored 0-6 (anchors are defined at even scores; odd scores lie between), total 0-60.
* Local codes: panel ``madrs-panel``, total ``madrs-total``, items ``madrs-item-<n>``; answers are plain
  integers (no answer codes). Item labels are the short item names, not the rating guidance.
* Bands 0-6 normal, 7-19 mild, 20-34 moderate, 35-60 severe (local codes ``madrs-band-<key>``).
* Safety: item 10 (suicidal thoughts) >= 2 raises ``suicidal-ideation``. The item's anchors (Montgomery &
  Åsberg 1979, reproduced in PMC3025994 table 1 and PMC4350518 table 1 (GENDEP); P) are 0 "enjoys life or takes it as it comes",
  2 "weary of life; only fleeting suicidal thoughts", 4 "probably better off dead; suicidal thoughts are common",
  6 "explicit plans for suicide"; 2 is the first anchor that names suicidal thoughts, 3 lies between 2 and 4.
* Clinician-rated: the rater (``rater_id``) is the QuestionnaireResponse author/source and Observation performer.
"""

from mappings.instruments.base import (
    SUICIDAL_IDEATION,
    FlagRule,
    Instrument,
    local,
    local_bands,
    local_items,
    local_questionnaire_url,
    numeric_options,
)

ANSWERS = numeric_options(str(score) for score in range(7))

ITEM_LABELS = (
    "apparent sadness",
    "reported sadness",
    "inner tension",
    "reduced sleep",
    "reduced appetite",
    "concentration difficulties",
    "lassitude",
    "inability to feel",
    "pessimistic thoughts",
    "suicidal thoughts",
)

ITEMS = local_items("madrs", "MADRS", ITEM_LABELS, ANSWERS)

MADRS = Instrument(
    key="madrs",
    title="Montgomery-Åsberg Depression Rating Scale (MADRS)",
    panel=local("madrs-panel", "MADRS panel"),
    total_code=local("madrs-total", "MADRS total score"),
    items=ITEMS,
    bands=local_bands(
        "madrs",
        "MADRS",
        (
            (0, 6, "normal", "Normal"),
            (7, 19, "mild", "Mild"),
            (20, 34, "moderate", "Moderate"),
            (35, 60, "severe", "Severe"),
        ),
    ),
    min_total=0,
    max_total=60,
    questionnaire_url=local_questionnaire_url("madrs"),
    flag_rules=(FlagRule(SUICIDAL_IDEATION, "10", 2),),
    clinician_rated=True,
)
