"""Clinic adverse-event record -> AdverseEvent (base R4; no US Core profile).

Spec: https://hl7.org/fhir/R4/adverseevent.html (R4 AdverseEvent: identifier 0..1, actuality 1..1,
event, subject 1..1, encounter, date, seriousness, severity, outcome, suspectEntity.instance).

  * event: the gateway's local code system (``mappings/codes/kap_adverse_events.py``) with the record's
    ``event`` value as code — no SNOMED CT codes for these findings are verified, so none are sent
    (docs/codes.md, Deliberately not used (unverified));
    ``event.text`` is the display, except for kind "other", where it is the clinic's ``note`` (the only
    place the free-text note goes: R4 AdverseEvent has no note element and no extension is added);
  * date = onset; ``detected`` and ``recordedDate`` are not sent (the record has no separate times);
  * seriousness = R4 4.0.1 adverse-event-seriousness ``Serious`` / ``Non-serious`` (see codes/hl7.py);
  * severity = adverse-event-severity mild / moderate / severe;
  * outcome = adverse-event-outcome ``resolved`` when resolved_at is given, else ``ongoing`` (R4 has no
    element for the resolution time, so ``resolved_at`` itself is not sent);
  * suspectEntity.instance = the dose's MedicationAdministration when ``dose_id`` is given.
"""

from __future__ import annotations

from typing import Any

from mappings.codes.hl7 import AE_NON_SERIOUS, AE_ONGOING, AE_RESOLVED, AE_SERIOUS, AE_SEVERITY_CODES
from mappings.codes.kap_adverse_events import ADVERSE_EVENT_DISPLAY, adverse_event_coding
from mappings.context import MappingContext
from mappings.fhir import AdverseEvent, validated
from mappings.fhir_text import fhir_string
from mappings.records import AdverseEventKind, AdverseEventRecord

KIND = "adverse-events"
RELATED: dict[str, str] = {}


def related_keys(record: AdverseEventRecord) -> list[tuple[str, str]]:
    return []


def to_fhir_adverse_event(
    record: AdverseEventRecord, *, external_id: str, ctx: MappingContext
) -> AdverseEvent:
    """The adverse event's AdverseEvent (id part ""), with a single identifier (0..1 in R4)."""
    text = (
        fhir_string(record.note)
        if record.event is AdverseEventKind.other and record.note
        else ADVERSE_EVENT_DISPLAY[record.event.value]
    )
    resource: dict[str, Any] = {
        "resourceType": "AdverseEvent",
        "id": ctx.id_of(KIND, external_id),
        "identifier": ctx.identifier(KIND, external_id),
        "actuality": "actual",
        "event": {"coding": [adverse_event_coding(record.event.value)], "text": text},
        "subject": ctx.reference("patients", record.patient_id),
        "date": record.onset,
        "seriousness": {"coding": [AE_SERIOUS if record.serious else AE_NON_SERIOUS]},
        "severity": {"coding": [AE_SEVERITY_CODES[record.severity.value]]},
        "outcome": {"coding": [AE_RESOLVED if record.resolved_at is not None else AE_ONGOING]},
    }
    if record.session_id is not None:
        resource["encounter"] = ctx.reference("sessions", record.session_id)
    if record.dose_id is not None:
        resource["suspectEntity"] = [{"instance": ctx.reference("doses", record.dose_id)}]
    return validated(AdverseEvent, resource)
