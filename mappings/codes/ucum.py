"""UCUM units (http://unitsofmeasure.org), each with its status (docs/codes.md, UCUM)."""

from __future__ import annotations

from typing import Final

UCUM: Final = "http://unitsofmeasure.org"

# --- doses (mappings/medication_administration.py) ----------------------------------------------------

MG: Final = "mg"  # V — QI-Core example
MG_PER_KG_PER_HOUR: Final = "mg/kg/h"  # P — valid UCUM syntax
MG_PER_HOUR: Final = "mg/h"  # P — valid UCUM syntax
#: UCUM annotations ({...} is a unit of 1) for "per troche" / "per tablet" strengths of compounded products
TROCHE: Final = "{troche}"
TABLET: Final = "{tablet}"


def quantity(value: float, code: str, unit: str | None = None) -> dict[str, object]:
    """A UCUM Quantity (``unit`` defaults to the code)."""
    return {"value": value, "unit": unit or code, "system": UCUM, "code": code}


# --- vital signs and scores (mappings/vitals.py, assessment.py; docs/codes.md, UCUM; all V) -------------
# (UCUM code, Quantity.unit display); displays as in the US Core vital-sign examples.

MM_HG: Final = ("mm[Hg]", "mmHg")
BEATS_PER_MINUTE: Final = ("/min", "beats/minute")
BREATHS_PER_MINUTE: Final = ("/min", "breaths/minute")
PERCENT: Final = ("%", "%")
CELSIUS: Final = ("Cel", "C")  # required binding ucum-bodytemp (Cel | [degF])
KILOGRAM: Final = ("kg", "kg")  # required binding ucum-bodyweight (kg | g | [lb_av])
SCORE: Final = ("{score}", "{score}")  # LOINC example unit of 44261-6 (docs/codes.md, UCUM)
