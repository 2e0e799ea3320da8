"""CPT codes (AMA) used for KAP session encounters and procedures.

System URI: docs/codes.md, Code system URIs (V: US Core 7.0.0 procedure-code VS and encounter-example-1.json).
Every row names its status and source (docs/codes.md, CPT); displays are abridged descriptors, not AMA's full
text.
"""

from __future__ import annotations

from typing import Final

CPT: Final = "http://www.ama-assn.org/go/cpt"

# --- sessions: encounter type and procedure codes (mappings/encounter.py) ---------------------------

#: V — VSAC "Psych Visit Diagnostic Evaluation" 2.16.840.1.113883.3.526.3.1492
PSYCHIATRIC_DIAGNOSTIC_EVALUATION: Final = {
    "system": CPT,
    "code": "90791",
    "display": "Psychiatric diagnostic evaluation",
}
#: V — VSAC "Psych Visit - Psychotherapy" 2.16.840.1.113883.3.526.3.1496 (time rule ≥16/≥38/≥53 min is P:
#: openpayer BCBSIL policy)
PSYCHOTHERAPY_30: Final = {
    "system": CPT,
    "code": "90832",
    "display": "Psychotherapy, 30 minutes with patient",
}
PSYCHOTHERAPY_45: Final = {
    "system": CPT,
    "code": "90834",
    "display": "Psychotherapy, 45 minutes with patient",
}
PSYCHOTHERAPY_60: Final = {
    "system": CPT,
    "code": "90837",
    "display": "Psychotherapy, 60 minutes with patient",
}
#: (minimum psychotherapy minutes, code), highest first; below 16 minutes no psychotherapy code is billable
PSYCHOTHERAPY_BY_MINUTES: Final = ((53, PSYCHOTHERAPY_60), (38, PSYCHOTHERAPY_45), (16, PSYCHOTHERAPY_30))
#: P — rvuedge.com/cpt-codes/category-iii/0820T; openpayer.com 0820T (Category III, effective 2024-01-01)
PSYCHEDELIC_THERAPY_MONITORING: Final = {
    "system": CPT,
    "code": "0820T",
    "display": "Continuous in-person monitoring and intervention during psychedelic medication therapy",
}
#: P — codingahead.com/cpt/codes/96365 (infusion > 15 min; ≤ 15 min would be 96374, not used here)
IV_INFUSION_INITIAL_HOUR: Final = {
    "system": CPT,
    "code": "96365",
    "display": "Intravenous infusion, for therapy, prophylaxis, or diagnosis; initial, up to 1 hour",
}


def psychotherapy_code(minutes: int | None) -> dict[str, str] | None:
    """The time-based psychotherapy code for ``minutes`` of psychotherapy (None below 16 or when unknown)."""
    if minutes is None:
        return None
    for threshold, code in PSYCHOTHERAPY_BY_MINUTES:
        if minutes >= threshold:
            return code
    return None
