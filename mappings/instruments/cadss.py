"""CADSS (Clinician-Administered Dissociative States Scale), 23-item version; no LOINC codes.

Sources (docs/codes.md, kap-instruments): LOINC "none found (expected)" (U) → local codes and the gateway's
own Questionnaire; structure (P) from Bremner's CADSS instructions (scribd 333420920) and the 23-item validation abstract
(discovery.researcher.life); used for esketamine dissociation monitoring (Spravato PI §5.2).

* 23 items scored 0-4 ("Not at all" … "Extremely"), total 0-92. The 23-item version (subjective items, as used
  in ketamine/esketamine studies) is defined, not the 28-item original with observer items.
* No published severity bands → ``bands`` is empty and ``Score.band`` is always ``None``.
* Item labels are only "CADSS item <n>": item-to-content order differs between published versions and was not
  verified, so no content labels are attached. Subscales (depersonalization, derealization, amnesia) are
  omitted for the same reason.
* Local codes: panel ``cadss-panel``, total ``cadss-total``, items ``cadss-item-<n>``.
* Clinician-administered: the rater (``rater_id``) is the QuestionnaireResponse author/source and Observation
  performer. No safety flags (no suicide item).
"""

from mappings.instruments.base import Instrument, local, local_items, local_questionnaire_url, numeric_options

ITEM_COUNT = 23

ANSWERS = numeric_options(("Not at all", "Slightly", "Moderately", "Considerably", "Extremely"))

ITEMS = local_items("cadss", "CADSS", ("",) * ITEM_COUNT, ANSWERS)

CADSS = Instrument(
    key="cadss",
    title="Clinician-Administered Dissociative States Scale (CADSS), 23-item version",
    panel=local("cadss-panel", "CADSS panel"),
    total_code=local("cadss-total", "CADSS total score"),
    items=ITEMS,
    bands=(),
    min_total=0,
    max_total=4 * ITEM_COUNT,
    questionnaire_url=local_questionnaire_url("cadss"),
    clinician_rated=True,
)
