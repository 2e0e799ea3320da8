"""PHQ-2 (Patient Health Questionnaire-2), LOINC panel 55757-9.

Sources (docs/codes.md, LOINC: PHQ-2): cdn.loinc.org/55757-9 (panel, items 44250-9 and 44255-8, total
55758-7; V); loinc.org/LL358-3 (answers; V); cut-off >= 3 from hindawi.com/journals/cpn/2013/695925/tab1 (P).

The two items are PHQ-9 items 1 and 2 (same LOINC codes and LL358-3 answers), reused from :mod:`.phq9`.
Total 0-6; bands 0-2 negative, 3-6 positive screen. No safety flags (the PHQ-2 has no suicide item).
"""

from mappings.instruments.base import Instrument, local_bands, loinc, loinc_form_url
from mappings.instruments.phq9 import SCORED_ITEMS as PHQ9_ITEMS

PHQ2 = Instrument(
    key="phq2",
    title="Patient Health Questionnaire-2 (PHQ-2)",
    panel=loinc("55757-9", "Patient Health Questionnaire 2 item (PHQ-2) [Reported]"),
    total_code=loinc("55758-7", "Patient Health Questionnaire 2 item (PHQ-2) total score [Reported]"),
    items=PHQ9_ITEMS[:2],
    bands=local_bands(
        "phq2", "PHQ-2", ((0, 2, "negative", "Negative screen"), (3, 6, "positive", "Positive screen"))
    ),
    min_total=0,
    max_total=6,
    questionnaire_url=loinc_form_url("55757-9"),
)
