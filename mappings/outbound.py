"""One entry point from a clinic record to the FHIR resources it maps to (DESIGN §5).

``map_record`` dispatches to the ``to_fhir_*`` function of the record's kind. ``related_keys`` names
the other records a mapping needs (a dose needs its session to know the patient); the gateway looks
them up and passes them in ``MappingContext.related``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mappings.adverse_event import to_fhir_adverse_event
from mappings.assessment import to_fhir_assessment
from mappings.context import MappingContext
from mappings.encounter import to_fhir_session
from mappings.fhir import FHIRResourceModel
from mappings.medication_administration import to_fhir_dose
from mappings.patient import to_fhir_patient
from mappings.practitioner import to_fhir_practitioner
from mappings.records import DoseRecord, RecordModel
from mappings.referrals import to_fhir_allergy, to_fhir_condition, to_fhir_medication_request
from mappings.vitals import to_fhir_vitals

Mapper = Callable[..., FHIRResourceModel | Sequence[FHIRResourceModel]]

MAPPERS: dict[str, Mapper] = {
    "patients": to_fhir_patient,
    "practitioners": to_fhir_practitioner,
    "sessions": to_fhir_session,
    "doses": to_fhir_dose,
    "vitals": to_fhir_vitals,
    "assessments": to_fhir_assessment,
    "adverse-events": to_fhir_adverse_event,
    "conditions": to_fhir_condition,
    "medications": to_fhir_medication_request,
    "allergies": to_fhir_allergy,
}


def related_keys(kind: str, record: RecordModel) -> list[tuple[str, str]]:
    if isinstance(record, DoseRecord):
        return [("sessions", record.session_id)]
    return []


def map_record(
    kind: str, external_id: str, record: RecordModel, ctx: MappingContext
) -> list[FHIRResourceModel]:
    mapped = MAPPERS[kind](record, external_id=external_id, ctx=ctx)
    return list(mapped) if isinstance(mapped, Sequence) else [mapped]
