"""Clinic patient record -> US Core Patient.

Profile: http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient (US Core 6.1.0,
https://hl7.org/fhir/us/core/STU6.1/StructureDefinition-us-core-patient.html).
"""

from __future__ import annotations

from typing import Any

from mappings.codes.hl7 import MEDICAL_RECORD_NUMBER
from mappings.context import MappingContext
from mappings.fhir import Patient, validated
from mappings.fhir_text import fhir_string
from mappings.records import Address, PatientRecord

KIND = "patients"
PROFILE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"
#: other records this mapping needs (none: the record is self-contained)
RELATED: dict[str, str] = {}
#: ContactPoint.use of the one phone number a clinic gives: the number a clinic keeps for reminders and
#: safety follow-up after dosing is the patient's own mobile number (the record has no use of its own).
PHONE_USE = "mobile"


def related_keys(record: PatientRecord) -> list[tuple[str, str]]:
    return []


def to_fhir_patient(record: PatientRecord, *, external_id: str, ctx: MappingContext) -> Patient:
    """The patient's Patient (id part ""): the gateway identifier first, then the record's identifiers.

    The record's ``identifiers`` are hospital medical record numbers (DESIGN §4), so each gets type
    v2-0203 ``MR``; no identifier carries ``use`` (an EHR matches on system + value).
    """
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": ctx.id_of(KIND, external_id),
        "meta": {"profile": [PROFILE]},
        "identifier": [
            ctx.identifier(KIND, external_id),
            *(
                {
                    "type": {"coding": [MEDICAL_RECORD_NUMBER]},
                    "system": i.system,
                    "value": fhir_string(i.value),
                }
                for i in record.identifiers
            ),
        ],
        "name": [
            {
                "use": "official",
                "family": fhir_string(record.family_name),
                "given": [fhir_string(record.given_name)],
            }
        ],
        "gender": record.sex.value,
        "birthDate": record.birth_date,
        "managingOrganization": ctx.organization_reference(),
    }
    telecom = []
    if record.phone:
        telecom.append({"system": "phone", "value": record.phone, "use": PHONE_USE})
    if record.email:
        telecom.append({"system": "email", "value": record.email})
    if telecom:
        resource["telecom"] = telecom
    if record.address is not None:
        resource["address"] = [_address(record.address)]
    return validated(Patient, resource)


def _address(address: Address) -> dict[str, Any]:
    fields = {
        "line": [fhir_string(line) for line in address.line] if address.line else None,
        "city": fhir_string(address.city) if address.city else None,
        "state": address.state,
        "postalCode": address.postal_code,
        "country": address.country,
    }
    return {key: value for key, value in fields.items() if value is not None}
