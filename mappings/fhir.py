"""The single import point for fhir.resources models.

fhir.resources ships no plain R4 package; its R4B models match R4 4.0.1 for every resource the gateway
uses (DESIGN §1), and the CapabilityStatement says ``fhirVersion: 4.0.1``.
"""

import json
from typing import Any, TypeVar

import orjson
from fhir.resources.R4B.address import Address
from fhir.resources.R4B.adverseevent import AdverseEvent, AdverseEventSuspectEntity
from fhir.resources.R4B.allergyintolerance import AllergyIntolerance, AllergyIntoleranceReaction
from fhir.resources.R4B.annotation import Annotation
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.contactpoint import ContactPoint
from fhir.resources.R4B.encounter import Encounter, EncounterParticipant
from fhir.resources.R4B.extension import Extension
from fhir.resources.R4B.fhirresourcemodel import FHIRResourceModel
from fhir.resources.R4B.flag import Flag
from fhir.resources.R4B.humanname import HumanName
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.medication import Medication, MedicationBatch, MedicationIngredient
from fhir.resources.R4B.medicationadministration import (
    MedicationAdministration,
    MedicationAdministrationDosage,
    MedicationAdministrationPerformer,
)
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.meta import Meta
from fhir.resources.R4B.observation import Observation, ObservationComponent
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.period import Period
from fhir.resources.R4B.practitioner import Practitioner, PractitionerQualification
from fhir.resources.R4B.procedure import Procedure, ProcedurePerformer
from fhir.resources.R4B.provenance import Provenance, ProvenanceAgent
from fhir.resources.R4B.quantity import Quantity
from fhir.resources.R4B.questionnaire import Questionnaire, QuestionnaireItem, QuestionnaireItemAnswerOption
from fhir.resources.R4B.questionnaireresponse import (
    QuestionnaireResponse,
    QuestionnaireResponseItem,
    QuestionnaireResponseItemAnswer,
)
from fhir.resources.R4B.ratio import Ratio
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.resource import Resource

__all__ = [
    "Address",
    "AdverseEvent",
    "AdverseEventSuspectEntity",
    "AllergyIntolerance",
    "AllergyIntoleranceReaction",
    "Annotation",
    "CodeableConcept",
    "Coding",
    "Condition",
    "ContactPoint",
    "Encounter",
    "EncounterParticipant",
    "Extension",
    "FHIRResourceModel",
    "Flag",
    "HumanName",
    "Identifier",
    "Medication",
    "MedicationAdministration",
    "MedicationAdministrationDosage",
    "MedicationAdministrationPerformer",
    "MedicationBatch",
    "MedicationIngredient",
    "MedicationRequest",
    "Meta",
    "Observation",
    "ObservationComponent",
    "Organization",
    "Patient",
    "Period",
    "Practitioner",
    "PractitionerQualification",
    "Procedure",
    "ProcedurePerformer",
    "Provenance",
    "ProvenanceAgent",
    "Quantity",
    "Questionnaire",
    "QuestionnaireItem",
    "QuestionnaireItemAnswerOption",
    "QuestionnaireResponse",
    "QuestionnaireResponseItem",
    "QuestionnaireResponseItemAnswer",
    "Ratio",
    "Reference",
    "Resource",
    "resource_json",
    "validated",
]


_SOURCE_JSON = "_kapgw_source_json"


M = TypeVar("M", bound=FHIRResourceModel)


def validated(model_type: type[M], data: dict[str, Any]) -> M:
    """``model_type.model_validate(data)``, remembering ``data`` as the resource's JSON.

    Every mapping builds a JSON-shaped dict and validates it here. fhir.resources' serializer costs
    more than its validation (see bench/mapping.py), and the validated input already is the resource's
    JSON, so :func:`resource_json` hands it back instead of serializing the model again. Mappings never
    change a model after building it. tests/mappings/test_fhir_json.py checks, for the whole demo clinic,
    that this JSON equals what fhir.resources serializes.
    """
    model = model_type.model_validate(data)
    object.__setattr__(model, _SOURCE_JSON, data)
    return model


def resource_json(model: FHIRResourceModel) -> dict[str, Any]:
    """The resource as plain JSON: the validated source of :func:`validated`, else serialized."""
    source = model.__dict__.get(_SOURCE_JSON)
    if source is None:
        return json.loads(model.model_dump_json())
    return orjson.loads(orjson.dumps(source))  # dates and times to strings, no shared sub-objects
