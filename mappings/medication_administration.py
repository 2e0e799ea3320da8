"""Clinic dose record -> MedicationAdministration (base R4; US Core 6.1 has no MedicationAdministration).

Shape follows QI-Core MedicationAdministration (docs/codes.md, US Core profiles), spec:
https://hl7.org/fhir/R4/medicationadministration.html. No ``meta.profile`` (no US Core profile applies).

Medication pattern — always a contained Medication ``#med`` referenced by ``medicationReference``, so every
dose has the same shape and a lot number always sits in ``Medication.batch.lotNumber``:
  * esketamine: code RxNorm 2201625 "esketamine Nasal Spray [Spravato]" (P), form text "nasal spray";
  * ketamine IV/IM injection: code text "ketamine hydrochloride injection" and NO RxNorm coding (the ketamine
    IN 6130 and the strength of the injection SCDs 238082-238084 are unverified: docs/codes.md, Deliberately
    not used (unverified));
  * any other ketamine product (compounded troche / tablet / oral solution / nasal spray): code text like
    "ketamine HCl 100 mg sublingual troche (compounded)", form text, and an ingredient "ketamine
    hydrochloride" (text only: RxNorm IN 6130 is U) with strength mg per 1 {troche}/{tablet} when given.

Other elements: subject = the session's patient; context = the session's Encounter; effectivePeriod for IV
infusions (end = ``end``, else administered_at + infusion_minutes; start only while in progress) and for any
dose with an ``end``, effectiveDateTime otherwise; performer = dose.practitioner_id, else the session's;
dosage.route SNOMED (docs/codes.md, SNOMED CT; V), dosage.dose in UCUM mg, dosage.rateQuantity for IV
infusions with ``infusion_minutes`` (``mg/kg/h`` when dose_mg_per_kg is given, else ``mg/h``), dosage.text.
Not mapped: ``weight_kg`` (body weight is a vitals Observation; no supportingInformation is sent).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from mappings.codes.rxnorm import ESKETAMINE_NASAL_SPRAY_SPRAVATO
from mappings.codes.snomed import (
    ROUTE_BUCCAL,
    ROUTE_INTRAMUSCULAR,
    ROUTE_INTRAVENOUS,
    ROUTE_NASAL,
    ROUTE_ORAL,
    ROUTE_SUBLINGUAL,
)
from mappings.codes.ucum import MG, MG_PER_HOUR, MG_PER_KG_PER_HOUR, TABLET, TROCHE, quantity
from mappings.context import MappingContext
from mappings.fhir import MedicationAdministration, validated
from mappings.fhir_text import fhir_string
from mappings.records import ESKETAMINE_DEVICE_MG, DoseForm, DoseRecord, Medication, Route, SessionRecord

KIND = "doses"
CONTAINED_ID = "med"
#: the other records this mapping needs: the dose's session (patient, encounter, fallback performer)
RELATED: dict[str, str] = {"session_id": "sessions"}

ROUTE_CODES: dict[Route, dict[str, str]] = {
    Route.iv: ROUTE_INTRAVENOUS,
    Route.im: ROUTE_INTRAMUSCULAR,
    Route.sublingual: ROUTE_SUBLINGUAL,
    Route.buccal: ROUTE_BUCCAL,
    Route.oral: ROUTE_ORAL,
    Route.intranasal: ROUTE_NASAL,
}
#: route as written in dosage.text
ROUTE_TEXT: dict[Route, str] = {
    Route.iv: "IV",
    Route.im: "IM",
    Route.sublingual: "sublingual",
    Route.buccal: "buccal",
    Route.oral: "oral",
    Route.intranasal: "intranasal",
}
#: route as written in a compounded product's name
ROUTE_ADJECTIVE: dict[Route, str] = {
    Route.iv: "intravenous",
    Route.im: "intramuscular",
    Route.sublingual: "sublingual",
    Route.buccal: "buccal",
    Route.oral: "oral",
    Route.intranasal: "nasal",
}
FORM_TEXT: dict[DoseForm, str] = {
    DoseForm.solution: "solution",
    DoseForm.troche: "troche",
    DoseForm.tablet: "tablet",
    DoseForm.nasal_spray: "nasal spray",
}
#: UCUM annotation of one unit of a solid compounded form (denominator of Medication.ingredient.strength)
UNIT_OF_FORM: dict[DoseForm, str] = {DoseForm.troche: TROCHE, DoseForm.tablet: TABLET}
INJECTION_ROUTES = frozenset({Route.iv, Route.im})
#: decimals kept in a computed infusion rate
RATE_DECIMALS = 4


def related_keys(record: DoseRecord) -> list[tuple[str, str]]:
    return [("sessions", record.session_id)]


def to_fhir_dose(record: DoseRecord, *, external_id: str, ctx: MappingContext) -> MedicationAdministration:
    """The dose's MedicationAdministration (id part ""); needs ``ctx.related_record("sessions", ...)``."""
    session = ctx.related_record("sessions", record.session_id)
    if not isinstance(session, SessionRecord):
        raise TypeError(f"related record sessions/{record.session_id} is not a session")
    resource: dict[str, Any] = {
        "resourceType": "MedicationAdministration",
        "id": ctx.id_of(KIND, external_id),
        "identifier": [ctx.identifier(KIND, external_id)],
        "contained": [medication(record)],
        "status": record.status,
        "medicationReference": {"reference": f"#{CONTAINED_ID}"},
        "subject": ctx.reference("patients", session.patient_id),
        "context": ctx.reference("sessions", record.session_id),
        **_effective(record),
        "dosage": dosage(record),
    }
    performer_id = record.practitioner_id or session.practitioner_id
    if performer_id is not None:
        resource["performer"] = [{"actor": ctx.reference("practitioners", performer_id)}]
    return validated(MedicationAdministration, resource)


def medication(record: DoseRecord) -> dict[str, Any]:
    """The contained Medication ``#med`` (code, form, ingredient, batch) — see the module docstring."""
    med: dict[str, Any] = {"resourceType": "Medication", "id": CONTAINED_ID}
    if record.medication is Medication.esketamine:
        med["code"] = {
            "coding": [ESKETAMINE_NASAL_SPRAY_SPRAVATO],
            "text": "esketamine nasal spray (Spravato)",
        }
        med["form"] = {"text": FORM_TEXT[DoseForm.nasal_spray]}
        med["ingredient"] = [{"itemCodeableConcept": {"text": "esketamine hydrochloride"}}]
    elif record.route in INJECTION_ROUTES and record.form in (None, DoseForm.solution):
        med["code"] = {"text": "ketamine hydrochloride injection"}
        med["form"] = {"text": "injectable solution"}
        med["ingredient"] = [{"itemCodeableConcept": {"text": "ketamine hydrochloride"}}]
    else:
        med["code"] = {"text": compounded_name(record)}
        if record.form is not None:
            med["form"] = {"text": FORM_TEXT[record.form]}
        ingredient: dict[str, Any] = {"itemCodeableConcept": {"text": "ketamine hydrochloride"}}
        if record.unit_strength_mg is not None and record.form in UNIT_OF_FORM:
            unit = UNIT_OF_FORM[record.form]
            ingredient["strength"] = {
                "numerator": quantity(record.unit_strength_mg, MG),
                "denominator": quantity(1, unit, FORM_TEXT[record.form]),
            }
        med["ingredient"] = [ingredient]
    if record.lot_number is not None:
        med["batch"] = {"lotNumber": fhir_string(record.lot_number)}
    return med


def compounded_name(record: DoseRecord) -> str:
    """E.g. "ketamine HCl 100 mg sublingual troche (compounded)"."""
    parts = ["ketamine HCl"]
    if record.unit_strength_mg is not None:
        parts.append(f"{number(record.unit_strength_mg)} mg")
    route = ROUTE_ADJECTIVE[record.route]
    form = FORM_TEXT[record.form] if record.form is not None else None
    if form is None or route not in form:  # "nasal spray", not "nasal nasal spray"
        parts.append(route)
    if form is not None:
        parts.append(form)
    parts.append("(compounded)")
    return " ".join(parts)


def infusion_end(record: DoseRecord) -> datetime | None:
    """``end``, else administered_at + infusion_minutes for IV doses (keeps the record's UTC offset)."""
    if record.end is not None:
        return record.end
    if record.route is Route.iv and record.infusion_minutes is not None:
        return record.administered_at + timedelta(minutes=record.infusion_minutes)
    return None


def _effective(record: DoseRecord) -> dict[str, Any]:
    end = infusion_end(record)
    if end is not None:
        return {"effectivePeriod": {"start": record.administered_at, "end": end}}
    if record.route is Route.iv and record.status == "in-progress":
        return {"effectivePeriod": {"start": record.administered_at}}
    return {"effectiveDateTime": record.administered_at}


def dosage(record: DoseRecord) -> dict[str, Any]:
    result: dict[str, Any] = {
        "text": dosage_text(record),
        "route": {"coding": [ROUTE_CODES[record.route]]},
        "dose": quantity(record.dose_mg, MG),
    }
    if record.route is Route.iv and record.infusion_minutes is not None:
        per_hour = 60 / record.infusion_minutes
        if record.dose_mg_per_kg is not None:
            rate = round(record.dose_mg_per_kg * per_hour, RATE_DECIMALS)
            result["rateQuantity"] = quantity(rate, MG_PER_KG_PER_HOUR)
        else:
            result["rateQuantity"] = quantity(round(record.dose_mg * per_hour, RATE_DECIMALS), MG_PER_HOUR)
    return result


def dosage_text(record: DoseRecord) -> str:
    """E.g. "0.5 mg/kg (35 mg) IV over 40 min", "56 mg intranasal (2 devices of 28 mg)",
    "200 mg sublingual (2 troches of 100 mg)"."""
    if record.dose_mg_per_kg is not None:
        text = f"{number(record.dose_mg_per_kg)} mg/kg ({number(record.dose_mg)} mg)"
    else:
        text = f"{number(record.dose_mg)} mg"
    text += f" {ROUTE_TEXT[record.route]}"
    if record.infusion_minutes is not None:
        text += f" over {record.infusion_minutes} min"
    if record.medication is Medication.esketamine:
        text += _units(record.dose_mg / ESKETAMINE_DEVICE_MG, "device", ESKETAMINE_DEVICE_MG)
    elif record.unit_strength_mg is not None and record.form is not None:
        text += _units(
            record.dose_mg / record.unit_strength_mg, FORM_TEXT[record.form], record.unit_strength_mg
        )
    return text


def _units(count: float, unit: str, strength: float) -> str:
    """ " (2 troches of 100 mg)" when the dose is a whole number of units, else ""."""
    if count < 1 or abs(count - round(count)) > 1e-9:
        return ""
    whole = round(count)
    return f" ({whole} {unit}{'s' if whole > 1 else ''} of {number(strength)} mg)"


def number(value: float) -> str:
    """A dose as people write it: 35.0 -> "35", 0.50 -> "0.5", never in exponent notation."""
    return format(Decimal(str(value)).normalize(), "f")
