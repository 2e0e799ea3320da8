"""CPT codes (AMA) used for KAP session encounters and procedures.

System URI: docs/codes.md, Code system URIs (V: US Core 7.0.0 procedure-code VS and encounter-example-1.json).
Every row names its status and source (docs/codes.md, CPT); displays are abridged descriptors, not AMA's full
text.
"""

from __future__ import annotations

from datetime import timedelta
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
#: P — AMA descriptor as quoted by codingahead.com (0821T/0822T pages): "Continuous in-person monitoring and
#: intervention (eg, psychotherapy, crisis intervention), as needed, during psychedelic medication therapy;
#: first physician or other qualified health care professional, each hour"; rvuedge.com, openpayer.com 0820T
#: (Category III, effective 2024-01-01). The psychotherapy given during the session is part of it: a dosing
#: session never gets a separate psychotherapy code. Add-ons +0821T (second physician/QHP, concurrent) and
#: +0822T (clinical staff under direction, concurrent), each hour, are not sent (the gateway does not know
#: who else was present).
PSYCHEDELIC_THERAPY_MONITORING: Final = {
    "system": CPT,
    "code": "0820T",
    "display": "Continuous in-person monitoring and intervention during psychedelic medication therapy",
}
#: P — codingahead.com/cpt/codes/96365; freecptcodefinder.com 96365 vs 96374. Time rule (docs/codes.md, CPT):
#: CPT defines an IV push as "an infusion of 15 minutes or less" (AAPC Coding Alert, quoting CPT; CMS IOM
#: 100-04 ch. 12 §30.5 as cited by clearcostestimate.com), so 96365 needs an infusion of more than 15 minutes;
#: one unit covers up to 90 minutes (+96366 for each further hour from 91 minutes, not sent).
IV_INFUSION_INITIAL_HOUR: Final = {
    "system": CPT,
    "code": "96365",
    "display": "Intravenous infusion, for therapy, prophylaxis, or diagnosis; initial, up to 1 hour",
}
#: an IV administration this long or shorter is a push (96374, not sent), not an infusion (96365)
IV_PUSH_MAX: Final = timedelta(minutes=15)


def iv_infusion_code(length: timedelta | None) -> dict[str, str] | None:
    """96365 for an IV infusion of known length over 15 minutes, else None (a push, or the length is unknown)."""
    if length is None or length <= IV_PUSH_MAX:
        return None
    return IV_INFUSION_INITIAL_HOUR


def psychotherapy_code(minutes: int | None) -> dict[str, str] | None:
    """The time-based psychotherapy code for ``minutes`` of psychotherapy (None below 16 or when unknown)."""
    if minutes is None:
        return None
    for threshold, code in PSYCHOTHERAPY_BY_MINUTES:
        if minutes >= threshold:
            return code
    return None
