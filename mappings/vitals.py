"""Vital-sign records → one US Core vital-sign Observation per measure.

Specs: US Core 6.1.0 vital-sign profiles (http://hl7.org/fhir/us/core/STU6.1/observation-vitalsigns.html) on
the FHIR R4 vital signs profile (http://hl7.org/fhir/R4/observation-vitalsigns.html). Codes: docs/codes.md,
LOINC: vital signs (all V).

* Blood pressure is one panel Observation (85354-9, us-core-blood-pressure) with systolic/diastolic
  components; the record allows systolic and diastolic only together. Every other measure is its own
  Observation.
* SpO2 carries both codings the US Core pulse-oximetry profile requires (59408-5 and 2708-6).
* ``phase`` (baseline / during / post) is kept machine-readable as the gateway extension
  ``https://kap-gateway.org/fhir/StructureDefinition/dosing-phase`` (valueCode), never as invented LOINC codes
  or free text; the timing itself is ``effectiveDateTime`` (docs/codes.md, Extension: dosing-phase).
* Resource ids are ``ctx.id_of("vitals", external_id, part)`` with the part from :data:`VITAL_PARTS`; a vitals
  record has no "main" resource, so every identifier value is ``<external_id>#<part>``.

Related records: none (the record names its patient and session directly).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mappings.codes import hl7, kap, loinc, ucum
from mappings.context import MappingContext
from mappings.fhir import Observation, validated
from mappings.records import VitalsRecord

KIND = "vitals"
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"

VITAL_PARTS: dict[str, str] = {
    "systolic": "bp",
    "diastolic": "bp",
    "heart_rate": "heart-rate",
    "resp_rate": "resp-rate",
    "spo2": "spo2",
    "temperature_c": "temperature",
    "weight_kg": "weight",
}
"""Record measure → id part of the Observation it maps to (systolic and diastolic share the BP panel)."""


@dataclass(frozen=True)
class _Vital:
    profile: str
    codings: tuple[dict[str, str], ...]
    unit: tuple[str, str]  # (UCUM code, display)


#: part → profile, codings and unit (docs/codes.md, LOINC: vital signs; UCUM)
VITALS: dict[str, _Vital] = {
    "bp": _Vital(US_CORE + "us-core-blood-pressure", (loinc.BP_PANEL,), ucum.MM_HG),
    "heart-rate": _Vital(US_CORE + "us-core-heart-rate", (loinc.HEART_RATE,), ucum.BEATS_PER_MINUTE),
    "resp-rate": _Vital(
        US_CORE + "us-core-respiratory-rate", (loinc.RESPIRATORY_RATE,), ucum.BREATHS_PER_MINUTE
    ),
    "spo2": _Vital(
        US_CORE + "us-core-pulse-oximetry", (loinc.SPO2_PULSE_OXIMETRY, loinc.SPO2_ARTERIAL), ucum.PERCENT
    ),
    "temperature": _Vital(US_CORE + "us-core-body-temperature", (loinc.BODY_TEMPERATURE,), ucum.CELSIUS),
    "weight": _Vital(US_CORE + "us-core-body-weight", (loinc.BODY_WEIGHT,), ucum.KILOGRAM),
}


def related_keys(record: VitalsRecord) -> list[tuple[str, str]]:
    """Records this mapping needs besides ``record``: none."""
    return []


def vital_parts(record: VitalsRecord) -> list[str]:
    """The id parts ``record`` maps to, in output order."""
    return list(dict.fromkeys(VITAL_PARTS[measure] for measure in record.measures()))


def to_fhir_vitals(record: VitalsRecord, *, external_id: str, ctx: MappingContext) -> list[Observation]:
    """One Observation per measure given: BP panel, heart and respiratory rate, SpO2, temperature, weight."""
    measures = record.measures()
    observations = []
    for part in vital_parts(record):
        vital = VITALS[part]
        resource = _base(record, external_id, ctx, part, vital)
        if part == "bp":
            resource["component"] = [
                {"code": {"coding": [coding]}, "valueQuantity": _quantity(measures[measure], vital.unit)}
                for coding, measure in ((loinc.SYSTOLIC_BP, "systolic"), (loinc.DIASTOLIC_BP, "diastolic"))
            ]
        else:
            [measure] = (m for m in measures if VITAL_PARTS[m] == part)
            resource["valueQuantity"] = _quantity(measures[measure], vital.unit)
        observations.append(validated(Observation, resource))
    return observations


def _base(
    record: VitalsRecord, external_id: str, ctx: MappingContext, part: str, vital: _Vital
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": ctx.id_of(KIND, external_id, part),
        "meta": {"profile": [vital.profile]},
        "identifier": [{**ctx.identifier(KIND, external_id), "value": f"{external_id}#{part}"}],
        "status": "final",
        "category": [{"coding": [hl7.VITAL_SIGNS], "text": "Vital Signs"}],
        "code": {"coding": list(vital.codings), "text": vital.codings[0]["display"]},
        "subject": ctx.reference("patients", record.patient_id),
        "effectiveDateTime": record.taken_at.isoformat(),
    }
    if record.phase is not None:
        resource["extension"] = [{"url": kap.DOSING_PHASE_EXTENSION, "valueCode": record.phase.value}]
    if record.session_id is not None:
        resource["encounter"] = ctx.reference("sessions", record.session_id)
    return resource


def _quantity(value: float, unit: tuple[str, str]) -> dict[str, Any]:
    code, display = unit
    number: float | int = int(value) if float(value).is_integer() else value
    return ucum.quantity(number, code, display)
