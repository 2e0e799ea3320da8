"""Imported referral records -> US Core Condition, MedicationRequest and AllergyIntolerance.

Referral data that ``mappings.inbound`` imported from a hospital EHR is served by the gateway's FHIR server
with these functions. Profiles (US Core 6.1.0, https://hl7.org/fhir/us/core/STU6.1/):

* Condition: ``us-core-condition-problems-health-concerns`` (category problem-list-item / health-concern)
  and/or ``us-core-condition-encounter-diagnosis`` (category encounter-diagnosis), chosen by category;
* MedicationRequest: ``us-core-medicationrequest``;
* AllergyIntolerance: ``us-core-allergyintolerance``.

Each record maps to one resource, id part "" of its kind ("conditions", "medications", "allergies").
The EHR resource a record came from (``RecordSource``) travels in ``meta.source`` as
``urn:kapgw:ehr[:<connection>]#<ResourceType>/<id>[/_history/<version>]`` (hl7.org/fhir/R4/resource.html#Meta:
"a uri that identifies the source system of the resource"), so that
``from_fhir_*(to_fhir_*(record).model_dump()) == record``. The EHR's own codings, texts and dates are
passed through unchanged; the only codes this module adds are the HL7 status and category codes in
``mappings/codes/hl7_referrals.py``.
"""

from __future__ import annotations

import re
from typing import Any

from mappings.codes.hl7_referrals import (
    ALLERGY_CLINICAL_CODES,
    ALLERGY_VERIFICATION_CODES,
    CONDITION_CATEGORY_CODES,
    CONDITION_CLINICAL_CODES,
    CONDITION_VER_STATUS_CODES,
    DATA_ABSENT_REASON,
)
from mappings.context import MappingContext
from mappings.fhir import AllergyIntolerance, Condition, MedicationRequest, validated
from mappings.records import (
    AllergyRecord,
    ConditionCategory,
    ConditionRecord,
    MedicationRecord,
    RecordCoding,
    RecordSource,
)

US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
PROBLEMS_PROFILE = US_CORE + "us-core-condition-problems-health-concerns"
ENCOUNTER_DIAGNOSIS_PROFILE = US_CORE + "us-core-condition-encounter-diagnosis"
MEDICATION_REQUEST_PROFILE = US_CORE + "us-core-medicationrequest"
ALLERGY_PROFILE = US_CORE + "us-core-allergyintolerance"

#: other records these mappings need: none (the patient reference is built from ``patient_id``)
RELATED: dict[str, list[str]] = {"conditions": [], "medications": [], "allergies": []}

SOURCE_PREFIX = "urn:kapgw:ehr"
_SOURCE_PATTERN = re.compile(
    r"^urn:kapgw:ehr(?::(?P<ehr>[A-Za-z0-9._-]{1,64}))?"
    r"#(?P<resource_type>[A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/(?P<version>[A-Za-z0-9\-.]{1,64}))?$"
)


def related_keys(record: ConditionRecord | MedicationRecord | AllergyRecord) -> list[tuple[str, str]]:
    return []


def source_uri(source: RecordSource) -> str:
    """``meta.source`` naming the EHR resource a record was imported from."""
    ehr = f":{source.ehr}" if source.ehr else ""
    version = f"/_history/{source.version}" if source.version else ""
    return f"{SOURCE_PREFIX}{ehr}#{source.resource_type}/{source.id}{version}"


def parse_source_uri(uri: Any) -> dict[str, str | None] | None:
    """The ``RecordSource`` fields in a ``meta.source`` written by :func:`source_uri`, else None."""
    if not isinstance(uri, str) or (match := _SOURCE_PATTERN.match(uri)) is None:
        return None
    return match.groupdict()


def to_fhir_condition(record: ConditionRecord, *, external_id: str, ctx: MappingContext) -> Condition:
    """The record's Condition, profiled by category (a record may carry both US Core Condition profiles)."""
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        **_common("conditions", external_id, record.source, _condition_profiles(record), ctx),
        "category": [{"coding": [CONDITION_CATEGORY_CODES[c.value]]} for c in record.category],
        "code": _concept(record.codes, record.text),
        "subject": ctx.reference("patients", record.patient_id),
    }
    if record.clinical_status is not None:
        resource["clinicalStatus"] = {"coding": [CONDITION_CLINICAL_CODES[record.clinical_status.value]]}
    if record.verification_status is not None:
        resource["verificationStatus"] = {
            "coding": [CONDITION_VER_STATUS_CODES[record.verification_status.value]]
        }
    _put(resource, "onsetDateTime", record.onset)
    _put(resource, "abatementDateTime", record.abatement)
    _put(resource, "recordedDate", record.recorded_date)
    return validated(Condition, resource)


def to_fhir_medication_request(
    record: MedicationRecord, *, external_id: str, ctx: MappingContext
) -> MedicationRequest:
    """The record's MedicationRequest; the medication is always a CodeableConcept (codes and text).

    US Core (5.0.1 and 6.1.0) requires ``requester``: when the EHR named no prescriber it carries a
    data-absent-reason ``unknown`` (US Core "Missing Data" guidance). The hospital's prescriber is not a
    resource of this server, so the requester is a display-only Reference.
    """
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        **_common("medications", external_id, record.source, [MEDICATION_REQUEST_PROFILE], ctx),
        "status": record.status.value,
        "intent": record.intent.value,
        "medicationCodeableConcept": _concept(record.codes, record.text),
        "subject": ctx.reference("patients", record.patient_id),
        "requester": (
            {"display": record.requester_display}
            if record.requester_display is not None
            else {"extension": [{"url": DATA_ABSENT_REASON, "valueCode": "unknown"}]}
        ),
    }
    _put(resource, "reportedBoolean", record.reported)
    _put(resource, "authoredOn", record.authored_on)
    if record.dosage_text is not None:
        resource["dosageInstruction"] = [{"text": record.dosage_text}]
    return validated(MedicationRequest, resource)


def to_fhir_allergy(record: AllergyRecord, *, external_id: str, ctx: MappingContext) -> AllergyIntolerance:
    """The record's AllergyIntolerance."""
    resource: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        **_common("allergies", external_id, record.source, [ALLERGY_PROFILE], ctx),
        "clinicalStatus": {"coding": [ALLERGY_CLINICAL_CODES[record.clinical_status.value]]},
        "code": _concept(record.codes, record.text),
        "patient": ctx.reference("patients", record.patient_id),
    }
    if record.verification_status is not None:
        resource["verificationStatus"] = {
            "coding": [ALLERGY_VERIFICATION_CODES[record.verification_status.value]]
        }
    _put(resource, "type", record.type.value if record.type else None)
    if record.category:
        resource["category"] = [c.value for c in record.category]
    _put(resource, "criticality", record.criticality.value if record.criticality else None)
    _put(resource, "onsetDateTime", record.onset)
    _put(resource, "recordedDate", record.recorded_date)
    if record.reactions:
        resource["reaction"] = [
            {
                "manifestation": [_concept(m.codes, m.text) for m in reaction.manifestations],
                **({"severity": reaction.severity.value} if reaction.severity else {}),
            }
            for reaction in record.reactions
        ]
    return validated(AllergyIntolerance, resource)


# --------------------------------------------------------------------------- helpers


def _common(
    kind: str, external_id: str, source: RecordSource, profiles: list[str], ctx: MappingContext
) -> dict[str, Any]:
    return {
        "id": ctx.id_of(kind, external_id),
        "meta": {"profile": profiles, "source": source_uri(source)},
        "identifier": [ctx.identifier(kind, external_id)],
    }


def _condition_profiles(record: ConditionRecord) -> list[str]:
    profiles = []
    if {ConditionCategory.problem_list_item, ConditionCategory.health_concern} & set(record.category):
        profiles.append(PROBLEMS_PROFILE)
    if ConditionCategory.encounter_diagnosis in record.category:
        profiles.append(ENCOUNTER_DIAGNOSIS_PROFILE)
    return profiles


def _concept(codes: list[RecordCoding], text: str | None) -> dict[str, Any]:
    concept: dict[str, Any] = {}
    if codes:
        concept["coding"] = [c.model_dump(exclude_none=True) for c in codes]
    if text is not None:
        concept["text"] = text
    return concept


def _put(resource: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        resource[key] = value
