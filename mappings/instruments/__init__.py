"""Rating-scale instrument definitions (PHQ-9, PHQ-2, GAD-7, PCL-5, C-SSRS screener, MADRS, CADSS).

Pure Python — plain frozen dataclasses, no I/O, clock, settings, database or ``fhir.resources``. Codes, ranges
and bands are listed with status and source in docs/codes.md (LOINC; kap-instruments); each instrument module
names its sources.

``LOCAL_SYSTEM`` (``https://kap-gateway.org/fhir/CodeSystem/kap-instruments``) is the canonical URI of the
gateway's own CodeSystem for codes without a verified LOINC code (MADRS, CADSS, PCL-5 items, band codes,
C-SSRS moderate/high risk). It is fixed rather than derived from the deployment's domain so codes are stable
everywhere; the CapabilityStatement / published CodeSystem declares it. It lives in :mod:`.base` (the
instrument modules need it) and is re-exported here. Local Questionnaires use
``https://kap-gateway.org/fhir/Questionnaire/<key>``.

Usage::

    from mappings.instruments import get_instrument

    phq9 = get_instrument("phq9")
    answers = phq9.normalize({"44250-9": 1, "2": "LA6570-1", ...})   # InstrumentError(.errors) if invalid
    score = phq9.score(answers)      # Score(total, band, flags, subscores); total None if incomplete
"""

from mappings.instruments.base import (
    HIGH_SUICIDE_RISK,
    LOCAL_SYSTEM,
    LOINC,
    SUICIDAL_IDEATION,
    AnswerOption,
    Band,
    Code,
    FlagRule,
    Instrument,
    InstrumentError,
    Item,
    Safety,
    Score,
    Subscale,
)
from mappings.instruments.cadss import CADSS
from mappings.instruments.cssrs import CSSRS
from mappings.instruments.gad7 import GAD7
from mappings.instruments.madrs import MADRS
from mappings.instruments.pcl5 import PCL5
from mappings.instruments.phq2 import PHQ2
from mappings.instruments.phq9 import PHQ9

INSTRUMENTS: dict[str, Instrument] = {
    instrument.key: instrument for instrument in (PHQ9, PHQ2, GAD7, PCL5, CSSRS, MADRS, CADSS)
}
"""Every instrument by key: ``phq9``, ``phq2``, ``gad7``, ``pcl5``, ``cssrs``, ``madrs``, ``cadss``."""


def get_instrument(key: str) -> Instrument:
    """The instrument with this key; ``KeyError`` if unknown."""
    try:
        return INSTRUMENTS[key]
    except KeyError:
        raise KeyError(f"unknown instrument {key!r}; known: {', '.join(INSTRUMENTS)}") from None


__all__ = [
    "HIGH_SUICIDE_RISK",
    "INSTRUMENTS",
    "LOCAL_SYSTEM",
    "LOINC",
    "SUICIDAL_IDEATION",
    "AnswerOption",
    "Band",
    "Code",
    "FlagRule",
    "Instrument",
    "InstrumentError",
    "Item",
    "Safety",
    "Score",
    "Subscale",
    "get_instrument",
]
