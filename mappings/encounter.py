"""Clinic session record -> US Core Encounter (+ US Core Procedure for what was performed).

Profiles: http://hl7.org/fhir/us/core/StructureDefinition/us-core-encounter and
http://hl7.org/fhir/us/core/StructureDefinition/us-core-procedure (US Core 6.1.0,
https://hl7.org/fhir/us/core/STU6.1/StructureDefinition-us-core-encounter.html,
https://hl7.org/fhir/us/core/STU6.1/StructureDefinition-us-core-procedure.html).
Codes: docs/codes.md, CPT and SNOMED CT.

Encounter (id part ""), always:
  * status: planned -> planned, in-progress -> in-progress, completed -> finished, cancelled -> cancelled
  * class v3-ActCode AMB; type (1..*, always with ``text``) coded by session kind:
      - preparation / integration: CPT 90832 / 90834 / 90837 by ``psychotherapy_minutes`` (≥16 / ≥38 / ≥53);
        no CPT coding when the minutes are unknown or under 16 (not billable as psychotherapy)
      - assessment: CPT 90791 (psychiatric diagnostic evaluation)
      - dosing: CPT 0820T (P: continuous monitoring during psychedelic medication therapy)

Procedure (id part "procedure"), only for sessions that took place (status completed or in-progress):
  * preparation / integration sessions, unless ``psychotherapy_minutes`` is 0: psychotherapy,
    SNOMED 75516001 plus the time-based CPT code as a second coding when the minutes give one;
  * dosing sessions: the session's monitoring, CPT 0820T (P), over the session's period. 0820T includes the
    psychotherapy given during the session ("monitoring and intervention (eg, psychotherapy, crisis
    intervention), as needed"), so a dosing session never gets a psychotherapy Procedure or a 9083x code:
    its ``psychotherapy_minutes`` go into ``Procedure.note`` as part of the 0820T service;
  * nothing for assessment sessions (the evaluation is the Encounter's type) or planned / cancelled sessions.
The IV infusion (CPT 96365) is not the session's: it is the dose's own Procedure, over the infusion's period
(mappings/medication_administration.py).
"""

from __future__ import annotations

from typing import Any

from mappings.codes.cpt import (
    PSYCHEDELIC_THERAPY_MONITORING,
    PSYCHIATRIC_DIAGNOSTIC_EVALUATION,
    psychotherapy_code,
)
from mappings.codes.hl7 import AMBULATORY, PRIMARY_PERFORMER
from mappings.codes.snomed import PSYCHOTHERAPY
from mappings.context import MappingContext
from mappings.fhir import Encounter, Procedure, validated
from mappings.records import SessionKind, SessionRecord, SessionStatus

KIND = "sessions"
PROCEDURE_PART = "procedure"
ENCOUNTER_PROFILE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-encounter"
PROCEDURE_PROFILE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-procedure"
RELATED: dict[str, str] = {}

ENCOUNTER_STATUS: dict[SessionStatus, str] = {
    SessionStatus.planned: "planned",
    SessionStatus.in_progress: "in-progress",
    SessionStatus.completed: "finished",
    SessionStatus.cancelled: "cancelled",
}
#: Procedure.status (R4 event-status) of the sessions that get a Procedure
PROCEDURE_STATUS: dict[SessionStatus, str] = {
    SessionStatus.in_progress: "in-progress",
    SessionStatus.completed: "completed",
}
TYPE_TEXT: dict[SessionKind, str] = {
    SessionKind.preparation: "KAP preparation session",
    SessionKind.dosing: "KAP dosing session",
    SessionKind.integration: "KAP integration session",
    SessionKind.assessment: "KAP assessment session",
}
PSYCHOTHERAPY_KINDS = frozenset({SessionKind.preparation, SessionKind.integration})
MONITORING_TEXT = "Continuous in-person monitoring and intervention during the dosing session"


def related_keys(record: SessionRecord) -> list[tuple[str, str]]:
    return []


def encounter_type(record: SessionRecord) -> dict[str, Any]:
    """Encounter.type by session kind (always with text; CPT coding where one applies)."""
    coding: dict[str, str] | None
    if record.kind in PSYCHOTHERAPY_KINDS:
        coding = psychotherapy_code(record.psychotherapy_minutes)
    elif record.kind is SessionKind.assessment:
        coding = PSYCHIATRIC_DIAGNOSTIC_EVALUATION
    else:
        coding = PSYCHEDELIC_THERAPY_MONITORING
    concept: dict[str, Any] = {"text": TYPE_TEXT[record.kind]}
    if coding is not None:
        concept["coding"] = [coding]
    return concept


def procedure_code(record: SessionRecord) -> dict[str, Any] | None:
    """Procedure.code for a session that took place, or None when the session gets no Procedure."""
    if record.status not in PROCEDURE_STATUS:
        return None
    minutes = record.psychotherapy_minutes
    if record.kind in PSYCHOTHERAPY_KINDS and minutes != 0:
        cpt = psychotherapy_code(minutes)
        return {"coding": [PSYCHOTHERAPY, *([cpt] if cpt else [])], "text": "Psychotherapy"}
    if record.kind is SessionKind.dosing:
        return {"coding": [PSYCHEDELIC_THERAPY_MONITORING], "text": MONITORING_TEXT}
    return None


def procedure_note(record: SessionRecord) -> str | None:
    """The psychotherapy minutes of a dosing session, reported within 0820T (None when there are none)."""
    minutes = record.psychotherapy_minutes
    if record.kind is not SessionKind.dosing or not minutes:
        return None
    return (
        f"Includes {minutes} minutes of psychotherapy during the dosing session, part of the 0820T monitoring "
        "and intervention (not a separate psychotherapy service)."
    )


def to_fhir_session(
    record: SessionRecord, *, external_id: str, ctx: MappingContext
) -> list[Encounter | Procedure]:
    """The session's Encounter, followed by its Procedure when it gets one (see the module docstring)."""
    period = _period(record)
    subject = ctx.reference("patients", record.patient_id)
    practitioner = (
        ctx.reference("practitioners", record.practitioner_id) if record.practitioner_id is not None else None
    )
    encounter: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": ctx.id_of(KIND, external_id),
        "meta": {"profile": [ENCOUNTER_PROFILE]},
        "identifier": [ctx.identifier(KIND, external_id)],
        "status": ENCOUNTER_STATUS[record.status],
        "class": AMBULATORY,
        "type": [encounter_type(record)],
        "subject": subject,
        "period": period,
        "serviceProvider": ctx.organization_reference(),
    }
    if practitioner is not None:
        encounter["participant"] = [
            {"type": [{"coding": [PRIMARY_PERFORMER]}], "period": period, "individual": practitioner}
        ]
    resources: list[Encounter | Procedure] = [validated(Encounter, encounter)]

    code = procedure_code(record)
    if code is not None:
        procedure: dict[str, Any] = {
            "resourceType": "Procedure",
            "id": ctx.id_of(KIND, external_id, PROCEDURE_PART),
            "meta": {"profile": [PROCEDURE_PROFILE]},
            "identifier": [_part_identifier(ctx, external_id, PROCEDURE_PART)],
            "status": PROCEDURE_STATUS[record.status],
            "code": code,
            "subject": subject,
            "encounter": ctx.reference(KIND, external_id),
            "performedPeriod": period,
        }
        if practitioner is not None:
            procedure["performer"] = [{"actor": practitioner}]
        note = procedure_note(record)
        if note is not None:
            procedure["note"] = [{"text": note}]
        resources.append(validated(Procedure, procedure))
    return resources


def _period(record: SessionRecord) -> dict[str, Any]:
    period: dict[str, Any] = {"start": record.start}
    if record.end is not None:
        period["end"] = record.end
    return period


def _part_identifier(ctx: MappingContext, external_id: str, part: str) -> dict[str, Any]:
    identifier = ctx.identifier(KIND, external_id)
    identifier["value"] = f"{external_id}#{part}"
    return identifier
