"""The Patient compartment as the search index sees it (https://hl7.org/fhir/R4/compartmentdefinition-patient.html).

A resource belongs to a patient's compartment when one of its compartment parameters references that
Patient; the ``search_reference`` index holds those references, so membership is an index lookup, never a
JSON parse. Only the parameters the store indexes (``gateway.store.search_params``) are listed.
"""

from __future__ import annotations

from gateway.store.search_params import SEARCH_PARAMS

#: R4 Patient compartment parameters per resource type, limited to those the store indexes
_R4_PATIENT_COMPARTMENT: dict[str, tuple[str, ...]] = {
    "AdverseEvent": ("subject",),
    "AllergyIntolerance": ("patient", "recorder", "asserter"),
    "Condition": ("patient", "asserter"),
    "Encounter": ("patient",),
    "Flag": ("patient",),
    "MedicationAdministration": ("patient", "performer", "subject"),
    "MedicationRequest": ("subject",),
    "Observation": ("subject", "performer"),
    "Procedure": ("patient", "performer"),
    "Provenance": ("patient",),
    "QuestionnaireResponse": ("subject", "author"),
}

PATIENT_COMPARTMENT: dict[str, tuple[str, ...]] = {
    resource_type: tuple(p for p in params if p in SEARCH_PARAMS.get(resource_type, {}))
    for resource_type, params in _R4_PATIENT_COMPARTMENT.items()
}

#: every type the store holds and an export may name
EXPORTABLE_TYPES: tuple[str, ...] = tuple(sorted(SEARCH_PARAMS))

#: types a Patient or Group export writes by default: the patients and their compartments
COMPARTMENT_TYPES: tuple[str, ...] = ("Patient", *sorted(t for t, p in PATIENT_COMPARTMENT.items() if p))
