"""The gateway's own code system for the clinic's adverse-event kinds (DESIGN §4 ``adverse-events.event``).

No SNOMED CT (or MedDRA) codes for these KAP findings (nausea, dissociation, ...) are verified (docs/codes.md,
Deliberately not used (unverified)), so
AdverseEvent.event carries this local system (declared in the CapabilityStatement) plus ``text``; the codes
are the record's ``event`` values verbatim.
"""

from __future__ import annotations

from typing import Final

KAP_ADVERSE_EVENTS: Final = "https://kap-gateway.org/fhir/CodeSystem/kap-adverse-events"

#: code (the record's ``event`` value) -> display
ADVERSE_EVENT_DISPLAY: Final = {
    "nausea": "Nausea",
    "vomiting": "Vomiting",
    "hypertension": "Hypertension",
    "tachycardia": "Tachycardia",
    "agitation": "Agitation",
    "excessive-sedation": "Excessive sedation",
    "dissociation": "Dissociation",
    "headache": "Headache",
    "other": "Other adverse event",
}


def adverse_event_coding(event: str) -> dict[str, str]:
    return {"system": KAP_ADVERSE_EVENTS, "code": event, "display": ADVERSE_EVENT_DISPLAY[event]}
