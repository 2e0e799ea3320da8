"""The gateway's own code systems and extensions for vitals and assessments (base ``https://kap-gateway.org/fhir``).

Fixed canonicals, independent of a deployment's host (like ``mappings.instruments.LOCAL_SYSTEM``); the
gateway's CapabilityStatement and its published CodeSystem / StructureDefinition resources declare them.
"""

from __future__ import annotations

from typing import Final

KAP_BASE: Final = "https://kap-gateway.org/fhir"

# --- vitals: dosing phase (mappings/vitals.py) -----------------------------------------------------------
# Which part of a dosing session a reading belongs to. LOINC has no verified code for pre-/intra-/post-dose
# timing (docs/codes.md, Extension: dosing-phase: label peri-dose readings by effectiveDateTime, not by
# separate codes), so the clinic's phase travels as an Observation extension with valueCode = the record's
# value.

DOSING_PHASE_EXTENSION: Final = f"{KAP_BASE}/StructureDefinition/dosing-phase"

# --- assessments: safety flags (mappings/assessment.py) ---------------------------------------------------
# One code per mappings.instruments flag (SUICIDAL_IDEATION, HIGH_SUICIDE_RISK), sent as an extra
# Observation.interpretation so a receiver can route flagged results to a clinician.

KAP_FLAGS: Final = f"{KAP_BASE}/CodeSystem/kap-flags"
FLAG_CODINGS: Final = {
    "suicidal-ideation": {"system": KAP_FLAGS, "code": "suicidal-ideation", "display": "Suicidal ideation"},
    "high-suicide-risk": {"system": KAP_FLAGS, "code": "high-suicide-risk", "display": "High suicide risk"},
}

#: docs/codes.md, kap-flags: the flag the patient safety Flag names when both are raised (most severe first)
FLAG_SEVERITY_ORDER: Final = ("high-suicide-risk", "suicidal-ideation")
