"""LOINC codes (system ``http://loinc.org``; docs/codes.md, Code system URIs; V) used by the mappings, one
section per table.

Each section names its docs/codes.md section and status; only V/P rows appear here. Instrument item, answer
and total codes live with their instruments in :mod:`mappings.instruments`.
"""

from __future__ import annotations

from typing import Final

LOINC: Final = "http://loinc.org"

# --- vital signs (mappings/vitals.py; docs/codes.md, LOINC: vital signs; all V; sources: US Core 6.1.0/7.0.0
# --- vital-sign StructureDefinitions, hl7.org/fhir/R4B/valueset-observation-vitalsignresult.html) ---------

BP_PANEL: Final = {
    "system": LOINC,
    "code": "85354-9",
    "display": "Blood pressure panel with all children optional",
}
SYSTOLIC_BP: Final = {"system": LOINC, "code": "8480-6", "display": "Systolic blood pressure"}
DIASTOLIC_BP: Final = {"system": LOINC, "code": "8462-4", "display": "Diastolic blood pressure"}
HEART_RATE: Final = {"system": LOINC, "code": "8867-4", "display": "Heart rate"}
RESPIRATORY_RATE: Final = {"system": LOINC, "code": "9279-1", "display": "Respiratory rate"}
SPO2_PULSE_OXIMETRY: Final = {
    "system": LOINC,
    "code": "59408-5",
    "display": "Oxygen saturation in Arterial blood by Pulse oximetry",
}
SPO2_ARTERIAL: Final = {"system": LOINC, "code": "2708-6", "display": "Oxygen saturation in Arterial blood"}
BODY_TEMPERATURE: Final = {"system": LOINC, "code": "8310-5", "display": "Body temperature"}
BODY_WEIGHT: Final = {"system": LOINC, "code": "29463-7", "display": "Body weight"}
