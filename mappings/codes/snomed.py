"""SNOMED CT codes, each with its status and source (docs/codes.md, SNOMED CT).

System URI: docs/codes.md, Code system URIs (V: US Core 7.0.0 valueset-us-core-procedure-code.json).
"""

from __future__ import annotations

from typing import Final

SNOMED: Final = "http://snomed.info/sct"

# --- sessions and doses (mappings/encounter.py, mappings/medication_administration.py) ---------------

#: V — docs/codes.md, SNOMED CT: VSAC "Psych Visit - Psychotherapy" (canvas v2022 encounter.py)
PSYCHOTHERAPY: Final = {"system": SNOMED, "code": "75516001", "display": "Psychotherapy"}

#: Route of administration (descendants of 284009009), docs/codes.md, SNOMED CT; all V:
#: QI-Core STU5 MedicationAdministration example (47625008); public FHIR code / fhir_models R4 route list;
#: hl7.org/fhir route-codes expansion (26643006)
ROUTE_INTRAVENOUS: Final = {"system": SNOMED, "code": "47625008", "display": "Intravenous route"}
ROUTE_INTRAMUSCULAR: Final = {"system": SNOMED, "code": "78421000", "display": "Intramuscular route"}
ROUTE_SUBLINGUAL: Final = {"system": SNOMED, "code": "37839007", "display": "Sublingual route"}
ROUTE_BUCCAL: Final = {"system": SNOMED, "code": "54471007", "display": "Buccal route"}
ROUTE_ORAL: Final = {"system": SNOMED, "code": "26643006", "display": "Oral route"}
ROUTE_NASAL: Final = {"system": SNOMED, "code": "46713006", "display": "Nasal route"}

#: Not coded (unverified; docs/codes.md, Deliberately not used (unverified)): ketamine / esketamine substance
#: codes, any "ketamine therapy" procedure, troche/lozenge dose forms, and SNOMED findings for the KAP adverse
#: events (nausea, dissociation, ...).

# --- assessments: safety Flag (mappings/assessment.py) ------------------------------------------------

#: V — docs/codes.md, SNOMED CT: VSAC "Mental Behavioral and Neurodevelopmental Disorders"
#: 2.16.840.1.113883.3.464.1003.105.12.1203 (canvas-plugins v2026 export); display as exported there.
#: Flag.code (with kap-flags#suicidal-ideation) of the patient safety Flag an assessment raises.
SUICIDAL_THOUGHTS: Final = {"system": SNOMED, "code": "6471006", "display": "Suicidal thoughts (finding)"}
