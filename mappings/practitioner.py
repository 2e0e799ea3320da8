"""Clinic practitioner record -> US Core Practitioner.

Profile: http://hl7.org/fhir/us/core/StructureDefinition/us-core-practitioner (US Core 6.1.0,
https://hl7.org/fhir/us/core/STU6.1/StructureDefinition-us-core-practitioner.html): identifier 1..*
(NPI slice system http://hl7.org/fhir/sid/us-npi), name 1..* with family 1..1.
"""

from __future__ import annotations

from typing import Any

from mappings.codes.hl7 import NPI_SYSTEM
from mappings.context import MappingContext
from mappings.fhir import Practitioner, validated
from mappings.fhir_text import fhir_string
from mappings.records import PractitionerRecord

KIND = "practitioners"
PROFILE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-practitioner"
RELATED: dict[str, str] = {}


def related_keys(record: PractitionerRecord) -> list[tuple[str, str]]:
    return []


def family_name(record: PractitionerRecord) -> str:
    """``family_name``, else the last word of ``name`` before any comma.

    "Jane Doe" and "Jane Doe, MD" give "Doe"; "Doe, Jane" (family name first) gives "Doe" too.
    """
    if record.family_name:
        return record.family_name
    words = record.name.split(",", 1)[0].split() or record.name.split()
    return words[-1]


def to_fhir_practitioner(
    record: PractitionerRecord, *, external_id: str, ctx: MappingContext
) -> Practitioner:
    """The practitioner's Practitioner (id part ""): gateway identifier, then the NPI when given.

    ``name.text`` keeps the clinic's display name as given; ``given`` comes only from ``given_name`` (no
    guessing first names out of free text that may hold titles). ``qualification`` becomes text only.
    """
    identifiers: list[dict[str, Any]] = [ctx.identifier(KIND, external_id)]
    if record.npi:
        identifiers.append({"system": NPI_SYSTEM, "value": record.npi})
    name: dict[str, Any] = {
        "use": "official",
        "text": fhir_string(record.name),
        "family": fhir_string(family_name(record)),
    }
    if record.given_name:
        name["given"] = [fhir_string(record.given_name)]
    resource: dict[str, Any] = {
        "resourceType": "Practitioner",
        "id": ctx.id_of(KIND, external_id),
        "meta": {"profile": [PROFILE]},
        "identifier": identifiers,
        "name": [name],
    }
    if record.qualification:
        resource["qualification"] = [{"code": {"text": fhir_string(record.qualification)}}]
    return validated(Practitioner, resource)
