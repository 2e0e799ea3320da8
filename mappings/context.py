"""What a mapping needs besides the record, passed in by the gateway (no I/O, clock or settings here)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mappings.records import RecordModel

#: (record kind, external id, part) -> FHIR resource id. The gateway passes a deterministic factory
#: (uuid5 of clinic, kind, external id and part), so re-mapping a record yields the same ids.
IdFactory = Callable[[str, str, str], str]

#: FHIR resource type each record kind's primary resource has (for references between records)
PRIMARY_TYPE: dict[str, str] = {
    "patients": "Patient",
    "practitioners": "Practitioner",
    "sessions": "Encounter",
    "doses": "MedicationAdministration",
    "adverse-events": "AdverseEvent",
    "conditions": "Condition",
    "medications": "MedicationRequest",
    "allergies": "AllergyIntolerance",
}
# vitals and assessments map to several resources and have no primary one: name the type and part.


@dataclass(frozen=True)
class MappingContext:
    clinic_slug: str
    clinic_name: str
    #: base of identifier systems: <identifier_base>/<clinic>/<kind>
    identifier_base: str
    resource_id: IdFactory
    #: the time of this write (Provenance.recorded); never read from a clock inside mappings
    recorded: datetime
    #: records this record refers to, looked up by the gateway: (kind, external id) -> record
    related: Mapping[tuple[str, str], RecordModel] = field(default_factory=dict)

    def identifier_system(self, kind: str) -> str:
        return f"{self.identifier_base.rstrip('/')}/{self.clinic_slug}/{kind}"

    def identifier(self, kind: str, external_id: str) -> dict[str, Any]:
        return {"system": self.identifier_system(kind), "value": external_id}

    def id_of(self, kind: str, external_id: str, part: str = "") -> str:
        return self.resource_id(kind, external_id, part)

    def reference(
        self, kind: str, external_id: str, part: str = "", resource_type: str | None = None
    ) -> dict[str, str]:
        """A relative literal reference ``Type/id`` to the resource another record maps to."""
        return {"reference": f"{resource_type or PRIMARY_TYPE[kind]}/{self.id_of(kind, external_id, part)}"}

    def organization_id(self) -> str:
        return self.resource_id("clinic", self.clinic_slug, "")

    def organization_reference(self) -> dict[str, str]:
        return {"reference": f"Organization/{self.organization_id()}", "display": self.clinic_name}

    def related_record(self, kind: str, external_id: str) -> RecordModel:
        """A referenced record the gateway must have supplied (KeyError names what is missing)."""
        return self.related[(kind, external_id)]
