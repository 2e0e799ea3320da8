"""What a stored resource becomes when its clinic record is deleted (DESIGN §4: DELETE marks the FHIR
resources ``entered-in-error`` and propagates).

Status value sets (FHIR R4 4.0.1, hl7.org/fhir/R4/valueset-*.html; all checked to contain
``entered-in-error``): encounter-status, event-status (Procedure), medication-admin-status,
observation-status, questionnaire-answers-status, medicationrequest-status, medicationdispense-status,
medication-statement-status, diagnostic-report-status, document-reference-status, immunization-status,
request-status (ServiceRequest, CarePlan), flag-status (Flag). Condition and AllergyIntolerance have no ``status``: their
``verificationStatus`` becomes entered-in-error and ``clinicalStatus`` is removed, as invariants con-5 and
ait-2 require. Everything else (Patient, Practitioner, Organization, AdverseEvent, Provenance, ...) has
no such status and is deleted instead (None).
"""

from __future__ import annotations

import copy
from typing import Any

from mappings.codes.hl7 import ALLERGY_ENTERED_IN_ERROR, CONDITION_ENTERED_IN_ERROR

ENTERED_IN_ERROR = "entered-in-error"

#: resource types whose ``status`` (required binding) includes entered-in-error
STATUS_TYPES = frozenset(
    {
        "Encounter",
        "Procedure",
        "MedicationAdministration",
        "Observation",
        "QuestionnaireResponse",
        "MedicationRequest",
        "MedicationDispense",
        "MedicationStatement",
        "DiagnosticReport",
        "DocumentReference",
        "Immunization",
        "ServiceRequest",
        "CarePlan",
        "Flag",
    }
)
#: resource types marked through ``verificationStatus`` -> the entered-in-error coding
VERIFICATION_TYPES: dict[str, dict[str, str]] = {
    "Condition": CONDITION_ENTERED_IN_ERROR,
    "AllergyIntolerance": ALLERGY_ENTERED_IN_ERROR,
}


def entered_in_error(resource: dict[str, Any]) -> dict[str, Any] | None:
    """The version to write when the resource's record is deleted, or None: delete the resource.

    Pure: ``resource`` (stored JSON) is never mutated; the answer is a deep copy with the status changed.
    """
    resource_type = resource.get("resourceType")
    if resource_type in STATUS_TYPES:
        marked = copy.deepcopy(resource)
        marked["status"] = ENTERED_IN_ERROR
        return marked
    if resource_type in VERIFICATION_TYPES:
        marked = copy.deepcopy(resource)
        marked["verificationStatus"] = {"coding": [dict(VERIFICATION_TYPES[resource_type])]}
        marked.pop("clinicalStatus", None)
        return marked
    return None
