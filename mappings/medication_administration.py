"""Clinic dose record -> MedicationAdministration (base R4; US Core 6.1 has no MedicationAdministration),
plus, for an IV infusion of more than 15 minutes, its US Core Procedure (CPT 96365).

Shape follows QI-Core MedicationAdministration (docs/codes.md, US Core profiles), spec:
https://hl7.org/fhir/R4/medicationadministration.html. No ``meta.profile`` on the MedicationAdministration
(no US Core profile applies); the infusion Procedure declares
http://hl7.org/fhir/us/core/StructureDefinition/us-core-procedure
(https://hl7.org/fhir/us/core/STU6.1/StructureDefinition-us-core-procedure.html).

Salt and base: ``dose_mg`` and ``unit_strength_mg`` are mg of the base (ketamine, esketamine), as the
labels of ketamine hydrochloride injection and Spravato state their strengths and as RxNorm names them
("ketamine 50 MG/ML Injectable Solution"). So the product is named as the hydrochloride it is, and the
ingredient as the base the mg refer to: "ketamine (as ketamine hydrochloride)" (docs/codes.md, RxNorm).

Medication pattern — always a contained Medication ``#med`` referenced by ``medicationReference``, so every
dose has the same shape and a lot number always sits in ``Medication.batch.lotNumber``:
  * esketamine: code RxNorm 2201625 "esketamine Nasal Spray [Spravato]" (P), form text "nasal spray",
    ingredient "esketamine (as esketamine hydrochloride)";
  * ketamine IV/IM injection: code text "ketamine hydrochloride injection" and NO RxNorm coding (the ketamine
    IN 6130 is unverified, and the injection SCDs 238082-238084 are per concentration, which a dose record
    does not carry: docs/codes.md, Deliberately not used (unverified)); ingredient "ketamine (as ketamine
    hydrochloride)";
  * any other ketamine product (compounded troche / tablet / oral solution / nasal spray): code text like
    "ketamine 100 mg sublingual troche (as hydrochloride; compounded)", form text, and the same text-only
    ingredient with strength mg (base) per 1 {troche}/{tablet} when given.

Other elements: subject = the session's patient; context = the session's Encounter; effectivePeriod for IV
infusions (end = ``end``, else administered_at + infusion_minutes; start only while in progress) and for any
dose with an ``end``, effectiveDateTime otherwise; performer = dose.practitioner_id, else the session's;
dosage.route SNOMED (docs/codes.md, SNOMED CT; V), dosage.dose in UCUM mg, dosage.rateQuantity for IV
infusions with ``infusion_minutes`` (``mg/kg/h`` when dose_mg_per_kg is given, else ``mg/h``), dosage.text;
``partOf`` = the infusion Procedure when there is one. The records model refuses an ``end`` that disagrees
with ``infusion_minutes`` by more than a minute, so the period and the rate always agree.
Not mapped: ``weight_kg`` (body weight is a vitals Observation; no supportingInformation is sent).

Infusion Procedure (id part "infusion"): only for IV doses whose length is known (``end`` -
``administered_at``, else ``infusion_minutes``) and over 15 minutes — CPT reports an IV administration of
15 minutes or less as a push (96374, not sent), not as 96365 (docs/codes.md, CPT). code CPT 96365;
status completed / stopped / in-progress as the dose's; performedPeriod = the infusion's own period (the
MedicationAdministration's effectivePeriod), not the session's; encounter = the session's Encounter.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from mappings.codes.cpt import iv_infusion_code
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
from mappings.encounter import PROCEDURE_PROFILE
from mappings.fhir import MedicationAdministration, Procedure, validated
from mappings.fhir_text import fhir_string
from mappings.records import ESKETAMINE_DEVICE_MG, DoseForm, DoseRecord, Medication, Route, SessionRecord

KIND = "doses"
CONTAINED_ID = "med"
INFUSION_PART = "infusion"
#: Procedure.status (R4 event-status) of the infusion by the dose's status
PROCEDURE_STATUS: dict[str, str] = {
    "completed": "completed",
    "stopped": "stopped",
    "in-progress": "in-progress",
}
#: the ingredient the mg of a dose refer to: the base, given as the hydrochloride (see the module docstring)
KETAMINE_INGREDIENT = "ketamine (as ketamine hydrochloride)"
ESKETAMINE_INGREDIENT = "esketamine (as esketamine hydrochloride)"
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


def to_fhir_dose(
    record: DoseRecord, *, external_id: str, ctx: MappingContext
) -> list[MedicationAdministration | Procedure]:
    """The dose's MedicationAdministration (id part ""), followed by its infusion Procedure (id part
    "infusion") when it gets one; needs ``ctx.related_record("sessions", ...)``."""
    session = ctx.related_record("sessions", record.session_id)
    if not isinstance(session, SessionRecord):
        raise TypeError(f"related record sessions/{record.session_id} is not a session")
    infusion = infusion_procedure(record, external_id=external_id, session=session, ctx=ctx)
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
    if infusion is None:
        return [validated(MedicationAdministration, resource)]
    resource["partOf"] = [ctx.reference(KIND, external_id, INFUSION_PART, "Procedure")]
    return [validated(MedicationAdministration, resource), validated(Procedure, infusion)]


def infusion_length(record: DoseRecord) -> timedelta | None:
    """How long an IV dose ran: ``end`` - ``administered_at``, else ``infusion_minutes`` (None if unknown)."""
    if record.route is not Route.iv:
        return None
    if record.end is not None:
        return record.end - record.administered_at
    if record.infusion_minutes is not None:
        return timedelta(minutes=record.infusion_minutes)
    return None


def infusion_procedure(
    record: DoseRecord, *, external_id: str, session: SessionRecord, ctx: MappingContext
) -> dict[str, Any] | None:
    """The infusion's Procedure (CPT 96365 over the infusion's own period), or None when the CPT rule is not
    met (not IV, length unknown, or 15 minutes or less)."""
    code = iv_infusion_code(infusion_length(record))
    end = infusion_end(record)
    if code is None or end is None:
        return None
    identifier = ctx.identifier(KIND, external_id)
    identifier["value"] = f"{external_id}#{INFUSION_PART}"
    procedure: dict[str, Any] = {
        "resourceType": "Procedure",
        "id": ctx.id_of(KIND, external_id, INFUSION_PART),
        "meta": {"profile": [PROCEDURE_PROFILE]},
        "identifier": [identifier],
        "status": PROCEDURE_STATUS[record.status],
        "code": {"coding": [code], "text": "Intravenous ketamine infusion"},
        "subject": ctx.reference("patients", session.patient_id),
        "encounter": ctx.reference("sessions", record.session_id),
        "performedPeriod": {"start": record.administered_at, "end": end},
    }
    performer_id = record.practitioner_id or session.practitioner_id
    if performer_id is not None:
        procedure["performer"] = [{"actor": ctx.reference("practitioners", performer_id)}]
    return procedure


def medication(record: DoseRecord) -> dict[str, Any]:
    """The contained Medication ``#med`` (code, form, ingredient, batch) — see the module docstring."""
    med: dict[str, Any] = {"resourceType": "Medication", "id": CONTAINED_ID}
    if record.medication is Medication.esketamine:
        med["code"] = {
            "coding": [ESKETAMINE_NASAL_SPRAY_SPRAVATO],
            "text": "esketamine nasal spray (Spravato)",
        }
        med["form"] = {"text": FORM_TEXT[DoseForm.nasal_spray]}
        med["ingredient"] = [{"itemCodeableConcept": {"text": ESKETAMINE_INGREDIENT}}]
    elif record.route in INJECTION_ROUTES and record.form in (None, DoseForm.solution):
        med["code"] = {"text": "ketamine hydrochloride injection"}
        med["form"] = {"text": "injectable solution"}
        med["ingredient"] = [{"itemCodeableConcept": {"text": KETAMINE_INGREDIENT}}]
    else:
        med["code"] = {"text": compounded_name(record)}
        if record.form is not None:
            med["form"] = {"text": FORM_TEXT[record.form]}
        ingredient: dict[str, Any] = {"itemCodeableConcept": {"text": KETAMINE_INGREDIENT}}
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
    """E.g. "ketamine 100 mg sublingual troche (as hydrochloride; compounded)" (the mg are ketamine base)."""
    parts = ["ketamine"]
    if record.unit_strength_mg is not None:
        parts.append(f"{number(record.unit_strength_mg)} mg")
    route = ROUTE_ADJECTIVE[record.route]
    form = FORM_TEXT[record.form] if record.form is not None else None
    if form is None or route not in form:  # "nasal spray", not "nasal nasal spray"
        parts.append(route)
    if form is not None:
        parts.append(form)
    parts.append("(as hydrochloride; compounded)")
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
