"""EHR FHIR R4 JSON -> clinic records: the referral import (DESIGN §3 "Referral import").

Inputs are plain JSON objects as Epic, Oracle Health (Cerner) and other EHRs return them
(hl7.org/fhir/R4/patient.html, condition.html, medicationrequest.html, allergyintolerance.html), or the
``model_dump()`` of a fhir.resources model (dates then arrive as ``date``/``datetime``). Parsing is lenient:
nothing here asks fhir.resources to accept the payload, because real payloads carry extensions, proprietary
codings, codings without display, text-only statuses and partial dates. What is kept:

* every coding that has a ``system`` and a ``code`` (duplicates dropped, at most 20), and the concept's text;
* statuses from the HL7 coding, else from any coding with an HL7 code, else from the text ("Active");
* dates of any FHIR precision ("2019", "2019-03", a date, a date-time with offset); an unparseable optional
  date, an ``*Age``/``*Range``/``*String`` onset or abatement is dropped, a Period contributes its start
  (onset) or end (abatement).

What cannot be used is rejected with :class:`InboundMappingError`, whose ``reasons`` name every problem found
(FHIR paths and rules only, never a value from the payload, so they can be logged: STYLE.md PHI rule).
An entered-in-error resource is rejected with the single reason ``"entered-in-error"``.

The EHR resource a record came from is recorded in the record's ``source``: ``ehr`` (the gateway's name of
the EHR connection, passed by the caller), resource type, id and ``meta.versionId``. A resource this gateway
served itself (``meta.source`` written by ``mappings.referrals.source_uri``) keeps the source named there,
so ``from_fhir_*(to_fhir_*(record).model_dump()) == record``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Mapping
from datetime import date, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Annotated, Any, cast

from pydantic import BaseModel, TypeAdapter, ValidationError

from mappings.codes.hl7_referrals import (
    ALLERGY_CLINICAL,
    ALLERGY_VERIFICATION,
    CONDITION_CATEGORY,
    CONDITION_CLINICAL,
    CONDITION_VER_STATUS,
    US_CORE_CONDITION_CATEGORY,
)
from mappings.context import MappingContext
from mappings.records import (
    ABATED_STATUSES,
    Address,
    AllergyCategory,
    AllergyClinicalStatus,
    AllergyCriticality,
    AllergyRecord,
    AllergyType,
    AllergyVerificationStatus,
    ConditionCategory,
    ConditionClinicalStatus,
    ConditionRecord,
    ConditionVerificationStatus,
    FhirDateTime,
    Identifier,
    MedicationRecord,
    MedicationRequestIntent,
    MedicationRequestStatus,
    PatientRecord,
    RecordCoding,
    RecordConcept,
    RecordModel,
    Severity,
    Sex,
)
from mappings.referrals import parse_source_uri

ENTERED_IN_ERROR = "entered-in-error"
MAX_CODINGS = 20
MAX_IDENTIFIERS = 10
MAX_TEXT = 2000

_NO_MEDICATIONS: Mapping[str, dict[str, Any]] = MappingProxyType({})

#: FHIR dateTime (hl7.org/fhir/R4/datatypes.html#dateTime, regex of the spec)
_FHIR_DATETIME = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?"
)
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
#: the target of a literal reference: relative ``Type/id``, absolute ``<base>/Type/id``, optionally versioned
_REFERENCE = re.compile(
    r"(?:^|/)(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?$"
)

_NAME_USE_RANK = {"official": 0, "usual": 1, None: 2, "temp": 3, "nickname": 4, "anonymous": 5}
_PHONE_USE_RANK = {"mobile": 0, "home": 1, None: 2, "work": 3, "temp": 4}
_EMAIL_USE_RANK = {"home": 0, None: 1, "mobile": 2, "work": 3, "temp": 4}
_ADDRESS_USE_RANK = {"home": 0, None: 1, "temp": 2, "work": 3, "billing": 4}
_US = {"us", "usa", "united states", "united states of america"}


class InboundMappingError(ValueError):
    """An EHR resource that cannot become a clinic record; ``reasons`` lists every problem (PHI-free)."""

    def __init__(self, resource_type: str, reasons: list[str]) -> None:
        self.resource_type = resource_type
        self.reasons = list(reasons)
        super().__init__(f"{resource_type} cannot be imported: " + "; ".join(self.reasons))


# --------------------------------------------------------------------------- Patient


def from_fhir_patient(resource: Mapping[str, Any], *, ctx: MappingContext | None = None) -> PatientRecord:
    """A clinic patient record from an EHR Patient.

    Name: the first ``official``, else ``usual``, else other (never ``old``/``maiden``) name that has a
    family and a given name; given names are joined with a space. Identifiers: every one with a system and
    a value, first per system, at most 10; with ``ctx``, identifiers the gateway minted itself (systems under
    ``ctx.identifier_base``) are left out. Phone: mobile, else home, else one without use, else work; email
    likewise. Address: home, else one without use. Missing gender -> ``unknown``.
    """
    resource_type = "Patient"
    _check_resource_type(resource, resource_type)
    reasons: list[str] = []

    name = _patient_name(resource.get("name"))
    if name is None:
        reasons.append("Patient.name has no name with a family name and a given name")
    birth_date = _full_date(resource.get("birthDate"))
    if resource.get("birthDate") is None:
        reasons.append("Patient.birthDate is missing")
    elif birth_date is None:
        reasons.append("Patient.birthDate is not a full date (year, month and day)")
    if reasons:
        raise InboundMappingError(resource_type, reasons)
    assert name is not None

    gender = resource.get("gender")
    own_prefix = f"{ctx.identifier_base.rstrip('/')}/" if ctx is not None else None
    fields: dict[str, Any] = {
        "given_name": name[0],
        "family_name": name[1],
        "birth_date": birth_date,
        "sex": gender if gender in {s.value for s in Sex} else Sex.unknown.value,
        "identifiers": _identifiers(resource.get("identifier"), own_prefix),
    }
    telecom = [t for t in _objects(resource.get("telecom")) if _current(t)]
    phone = _contact(telecom, "phone", _PHONE_USE_RANK, PatientRecord, "phone")
    email = _contact(telecom, "email", _EMAIL_USE_RANK, PatientRecord, "email")
    if phone is not None:
        fields["phone"] = phone
    if email is not None:
        fields["email"] = email
    address = _address(resource.get("address"))
    if address is not None:
        fields["address"] = address
    return _build(PatientRecord, resource_type, fields)


def _patient_name(value: Any) -> tuple[str, str] | None:
    names = [n for n in _objects(value) if n.get("use") in _NAME_USE_RANK and _current(n)]
    for candidate in sorted(names, key=lambda n: _NAME_USE_RANK[n.get("use")]):
        family = _text(candidate.get("family"), 200)
        given = " ".join(g for g in (_text(x, 200) for x in _as_list(candidate.get("given"))) if g)
        if family and given and len(given) <= 200:
            return given, family
    return None


def _identifiers(value: Any, own_prefix: str | None) -> list[dict[str, str]]:
    kept: list[dict[str, str]] = []
    systems: set[str] = set()
    for identifier in _objects(value):
        system, value_ = _text(identifier.get("system")), _text(identifier.get("value"))
        if system is None or value_ is None or system in systems:
            continue
        if own_prefix is not None and system.startswith(own_prefix):
            continue
        try:
            Identifier(system=system, value=value_)
        except ValidationError:
            continue
        systems.add(system)
        kept.append({"system": system, "value": value_})
        if len(kept) == MAX_IDENTIFIERS:
            break
    return kept


def _contact(
    telecom: list[Mapping[str, Any]],
    system: str,
    rank: dict[str | None, int],
    model: type[BaseModel],
    field: str,
) -> str | None:
    candidates = [t for t in telecom if t.get("system") == system and t.get("use") in rank]
    for candidate in sorted(candidates, key=lambda t: rank[t.get("use")]):
        value = _text(candidate.get("value"), 254)
        if value is not None and _field_accepts(model, field, value):
            return value
    return None


@functools.cache
def _field_adapter(model: type[BaseModel], field: str) -> TypeAdapter[Any]:
    info = model.model_fields[field]
    return TypeAdapter(cast(Any, Annotated[info.annotation, info]))


def _field_accepts(model: type[BaseModel], field: str, value: Any) -> bool:
    try:
        _field_adapter(model, field).validate_python(value)
    except ValidationError:
        return False
    return True


def _address(value: Any) -> dict[str, Any] | None:
    addresses = [a for a in _objects(value) if a.get("use") in _ADDRESS_USE_RANK and _current(a)]
    for candidate in sorted(addresses, key=lambda a: _ADDRESS_USE_RANK[a.get("use")]):
        country = _text(candidate.get("country"))
        if country is not None:
            if country.lower() in _US:
                country = "US"
            elif re.fullmatch(r"[A-Za-z]{2}", country):
                country = country.upper()
            else:
                continue  # a country we cannot name with ISO 3166 alpha-2: try the next address
        lines = [line for line in (_text(x, 200) for x in _as_list(candidate.get("line"))) if line][:4]
        state = _text(candidate.get("state"))
        postal_code = _text(candidate.get("postalCode"))
        fields = {
            "line": lines or None,
            "city": _text(candidate.get("city"), 200),
            "state": state.upper() if state and re.fullmatch(r"[A-Za-z]{2}", state) else None,
            "postal_code": postal_code
            if postal_code and re.fullmatch(r"\d{5}(-\d{4})?", postal_code)
            else None,
        }
        fields = {key: v for key, v in fields.items() if v is not None}
        if not fields and country is None:
            continue
        if country is not None:
            fields["country"] = country
        try:
            Address.model_validate(fields)
        except ValidationError:
            continue
        return fields
    return None


# --------------------------------------------------------------------------- Condition


def from_fhir_condition(
    resource: Mapping[str, Any],
    *,
    patient_id: str,
    ehr: str | None = None,
    ehr_patient_id: str | None = None,
) -> ConditionRecord:
    """A referral condition from an EHR Condition (problem list item, health concern or encounter diagnosis).

    ``patient_id`` is the clinic's id of the patient; ``ehr`` names the EHR connection (recorded in
    ``source``); when ``ehr_patient_id`` is given, ``subject`` must reference that EHR Patient.
    """
    resource_type = "Condition"
    _check_resource_type(resource, resource_type)
    verification = _verification_status(
        resource, resource_type, CONDITION_VER_STATUS, ConditionVerificationStatus
    )
    reasons: list[str] = []

    codes, text = _concept(resource.get("code"))
    if not codes and text is None:
        reasons.append("Condition.code has neither coding nor text")
    _check_patient(resource, "subject", resource_type, ehr_patient_id, reasons)
    category = _condition_category(resource.get("category"))
    if not category:
        reasons.append(
            "Condition.category has no problem-list-item, encounter-diagnosis or health-concern code"
        )
    clinical, _ = _coded_status(
        resource.get("clinicalStatus"), CONDITION_CLINICAL, _values(ConditionClinicalStatus)
    )
    onset = _datetime(resource.get("onsetDateTime")) or _datetime(_get(resource, "onsetPeriod", "start"))
    abatement = _datetime(resource.get("abatementDateTime")) or _datetime(
        _get(resource, "abatementPeriod", "end")
    )
    if abatement is not None and clinical not in {s.value for s in ABATED_STATUSES}:
        reasons.append(
            "Condition.abatement is given but clinicalStatus is not inactive, remission or resolved (con-4)"
        )
    source = _source(resource, resource_type, ehr, reasons)
    if reasons:
        raise InboundMappingError(resource_type, reasons)
    fields = {
        "patient_id": patient_id,
        "codes": codes,
        "text": text,
        "clinical_status": clinical,
        "verification_status": verification,
        "category": category,
        "onset": onset,
        "abatement": abatement,
        "recorded_date": _datetime(resource.get("recordedDate")),
        "source": source,
    }
    return _build(ConditionRecord, resource_type, fields)


def _condition_category(value: Any) -> list[str]:
    known = {
        (CONDITION_CATEGORY, ConditionCategory.problem_list_item.value),
        (CONDITION_CATEGORY, ConditionCategory.encounter_diagnosis.value),
        (US_CORE_CONDITION_CATEGORY, ConditionCategory.health_concern.value),
        # some servers file health-concern under the HL7 system (it joined that system after R4)
        (CONDITION_CATEGORY, ConditionCategory.health_concern.value),
    }
    found: list[str] = []
    for concept in _objects(value):
        for coding in _objects(concept.get("coding")):
            code = coding.get("code")
            if isinstance(code, str) and (coding.get("system"), code) in known and code not in found:
                found.append(code)
    return found


# --------------------------------------------------------------------------- MedicationRequest


def from_fhir_medication_request(
    resource: Mapping[str, Any],
    *,
    patient_id: str,
    contained_or_referenced_medications: Mapping[str, dict[str, Any]] = _NO_MEDICATIONS,
    ehr: str | None = None,
    ehr_patient_id: str | None = None,
) -> MedicationRecord:
    """A referral medication from an EHR MedicationRequest.

    The medication comes from ``medicationCodeableConcept``, or from the Medication that
    ``medicationReference`` names: a contained one (``#id``), or one supplied in
    ``contained_or_referenced_medications`` keyed by the reference as written (``"Medication/x"``, an
    absolute URL or ``"#id"``), by ``"Medication/<id>"`` or by the bare id (e.g. the ``search.mode: include``
    entries of a searchset). Failing that, the reference's ``display`` is the medication's text. Several
    ``dosageInstruction.text`` are joined with newlines. ``reportedReference`` counts as reported.
    """
    resource_type = "MedicationRequest"
    _check_resource_type(resource, resource_type)
    status = resource.get("status")
    if status == ENTERED_IN_ERROR:
        raise InboundMappingError(resource_type, [ENTERED_IN_ERROR])
    reasons: list[str] = []

    if status not in _values(MedicationRequestStatus):
        reasons.append("MedicationRequest.status is missing or not a MedicationRequest status")
    intent = resource.get("intent")
    if intent not in _values(MedicationRequestIntent):
        reasons.append("MedicationRequest.intent is missing or not a MedicationRequest intent")
    codes, text = _medication(resource, contained_or_referenced_medications, reasons)
    _check_patient(resource, "subject", resource_type, ehr_patient_id, reasons)
    source = _source(resource, resource_type, ehr, reasons)
    if reasons:
        raise InboundMappingError(resource_type, reasons)

    dosage = "\n".join(
        t for t in (_text(d.get("text")) for d in _objects(resource.get("dosageInstruction"))) if t
    )
    reported = resource.get("reportedBoolean")
    if not isinstance(reported, bool):
        reported = True if _obj(resource.get("reportedReference")) is not None else None
    fields = {
        "patient_id": patient_id,
        "codes": codes,
        "text": text,
        "status": status,
        "intent": intent,
        "authored_on": _datetime(resource.get("authoredOn")),
        "dosage_text": dosage or None,
        "requester_display": _text(_get(resource, "requester", "display"), MAX_TEXT),
        "reported": reported,
        "source": source,
    }
    return _build(MedicationRecord, resource_type, fields)


def _medication(
    resource: Mapping[str, Any], supplied: Mapping[str, dict[str, Any]], reasons: list[str]
) -> tuple[list[RecordCoding], str | None]:
    concept = _obj(resource.get("medicationCodeableConcept"))
    if concept is not None:
        codes, text = _concept(concept)
        if not codes and text is None:
            reasons.append("MedicationRequest.medicationCodeableConcept has neither coding nor text")
        return codes, text
    reference = _obj(resource.get("medicationReference"))
    if reference is None:
        reasons.append("MedicationRequest has neither medicationCodeableConcept nor medicationReference")
        return [], None
    display = _text(reference.get("display"), MAX_TEXT)
    target = _text(reference.get("reference"))
    medication = _find_medication(resource, target, supplied) if target else None
    if medication is not None:
        codes, text = _concept(medication.get("code"))
        text = text or display
        if codes or text is not None:
            return codes, text
        reasons.append(
            "the referenced Medication.code has neither coding nor text and the reference no display"
        )
        return [], None
    if display is not None:
        return [], display
    reasons.append("MedicationRequest.medicationReference cannot be resolved and has no display")
    return [], None


def _find_medication(
    resource: Mapping[str, Any], target: str, supplied: Mapping[str, dict[str, Any]]
) -> Mapping[str, Any] | None:
    keys = [target]
    if target.startswith("#"):
        for contained in _objects(resource.get("contained")):
            if contained.get("resourceType") == "Medication" and contained.get("id") == target[1:]:
                return contained
    elif (match := _REFERENCE.search(target)) and match["type"] == "Medication":
        keys += [f"Medication/{match['id']}", match["id"]]
    for key in keys:
        medication = _obj(supplied.get(key))
        if medication is not None and medication.get("resourceType") == "Medication":
            return medication
    return None


# --------------------------------------------------------------------------- AllergyIntolerance


def from_fhir_allergy(
    resource: Mapping[str, Any],
    *,
    patient_id: str,
    ehr: str | None = None,
    ehr_patient_id: str | None = None,
) -> AllergyRecord:
    """A referral allergy from an EHR AllergyIntolerance (``clinicalStatus`` required: invariant ait-1).

    Reactions keep their manifestations that have a coding or a text (at most 10 each) and their severity;
    a reaction without a usable manifestation is left out.
    """
    resource_type = "AllergyIntolerance"
    _check_resource_type(resource, resource_type)
    verification = _verification_status(
        resource, resource_type, ALLERGY_VERIFICATION, AllergyVerificationStatus
    )
    reasons: list[str] = []

    codes, text = _concept(resource.get("code"))
    if not codes and text is None:
        reasons.append("AllergyIntolerance.code has neither coding nor text")
    _check_patient(resource, "patient", resource_type, ehr_patient_id, reasons)
    clinical, present = _coded_status(
        resource.get("clinicalStatus"), ALLERGY_CLINICAL, _values(AllergyClinicalStatus)
    )
    if clinical is None:
        reasons.append(
            "AllergyIntolerance.clinicalStatus is not active, inactive or resolved"
            if present
            else "AllergyIntolerance.clinicalStatus is missing"
        )
    source = _source(resource, resource_type, ehr, reasons)
    if reasons:
        raise InboundMappingError(resource_type, reasons)

    categories: list[str] = []
    for category in _as_list(resource.get("category")):
        if category in _values(AllergyCategory) and category not in categories:
            categories.append(category)
    fields = {
        "patient_id": patient_id,
        "codes": codes,
        "text": text,
        "clinical_status": clinical,
        "verification_status": verification,
        "type": _code(resource.get("type"), AllergyType),
        "category": categories,
        "criticality": _code(resource.get("criticality"), AllergyCriticality),
        "onset": _datetime(resource.get("onsetDateTime"))
        or _datetime(_get(resource, "onsetPeriod", "start")),
        "reactions": _reactions(resource.get("reaction")),
        "recorded_date": _datetime(resource.get("recordedDate")),
        "source": source,
    }
    return _build(AllergyRecord, resource_type, fields)


def _reactions(value: Any) -> list[dict[str, Any]]:
    reactions = []
    for reaction in _objects(value):
        manifestations = []
        for manifestation in _objects(reaction.get("manifestation")):
            codes, text = _concept(manifestation)
            if codes or text is not None:
                manifestations.append(RecordConcept(codes=codes, text=text))
        if manifestations:
            reactions.append(
                {"manifestations": manifestations[:10], "severity": _code(reaction.get("severity"), Severity)}
            )
    return reactions[:10]


# --------------------------------------------------------------------------- shared helpers


def _check_resource_type(resource: Any, resource_type: str) -> None:
    if not isinstance(resource, Mapping):
        raise InboundMappingError(resource_type, ["the resource is not a JSON object"])
    if resource.get("resourceType") != resource_type:
        raise InboundMappingError(resource_type, [f"resourceType is not {resource_type}"])


def _build(model: type[RecordModel], resource_type: str, fields: dict[str, Any]) -> Any:
    try:
        return model.model_validate(fields)
    except ValidationError as error:
        reasons = [
            f"{'.'.join(str(part) for part in e['loc']) or model.__name__}: {e['msg']}"
            for e in error.errors(include_url=False, include_input=False, include_context=False)
        ]
        raise InboundMappingError(resource_type, reasons) from None


def _obj(value: Any) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None


def _as_list(value: Any) -> list[Any]:
    """A FHIR array (a single item where an array belongs is accepted too)."""
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _objects(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in _as_list(value) if isinstance(item, Mapping)]


def _get(resource: Mapping[str, Any], element: str, child: str) -> Any:
    parent = _obj(resource.get(element))
    return parent.get(child) if parent is not None else None


def _text(value: Any, max_length: int = MAX_TEXT) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value if 0 < len(value) <= max_length else None


def _values(enum: Any) -> set[str]:
    return {member.value for member in enum}


def _code(value: Any, enum: Any) -> str | None:
    return value if isinstance(value, str) and value in _values(enum) else None


def _current(element: Mapping[str, Any]) -> bool:
    """False for a name/telecom/address whose use is ``old`` or whose period has ended."""
    return element.get("use") != "old" and _get(element, "period", "end") is None


def _concept(value: Any) -> tuple[list[RecordCoding], str | None]:
    """Codings with system and code (first of each pair, at most 20) and the text of a CodeableConcept."""
    concept = _obj(value)
    if concept is None:
        return [], None
    codings: list[RecordCoding] = []
    seen: set[tuple[str, str]] = set()
    for coding in _objects(concept.get("coding")):
        system, code = _text(coding.get("system"), 255), _text(coding.get("code"), 255)
        if system is None or code is None or (system, code) in seen:
            continue
        parsed = _coding(system, code, _text(coding.get("display")))
        if parsed is None:
            continue
        seen.add((system, code))
        codings.append(parsed)
        if len(codings) == MAX_CODINGS:
            break
    return codings, _text(concept.get("text"))


def _coding(system: str, code: str, display: str | None) -> RecordCoding | None:
    try:
        return RecordCoding(system=system, code=code, display=display)
    except ValidationError:
        return None


def _verification_status(
    resource: Mapping[str, Any], resource_type: str, system: str, allowed: type[StrEnum]
) -> str | None:
    """The resource's verificationStatus code; an entered-in-error resource is refused outright."""
    verification, _ = _coded_status(
        resource.get("verificationStatus"), system, {*_values(allowed), ENTERED_IN_ERROR}
    )
    if verification == ENTERED_IN_ERROR:
        raise InboundMappingError(resource_type, [ENTERED_IN_ERROR])
    return verification


def _coded_status(value: Any, system: str, allowed: Collection[str]) -> tuple[str | None, bool]:
    """(code, present) of a status CodeableConcept: the HL7 coding, else any coding with an allowed code,
    else the text read as a code ("Active" -> active, "Entered in Error" -> entered-in-error)."""
    if value is None:
        return None, False
    concept = _obj(value)
    if concept is None:
        return None, True
    codings = _objects(concept.get("coding"))
    for coding in codings:
        if coding.get("system") == system and coding.get("code") in allowed:
            return coding["code"], True
    for coding in codings:
        if coding.get("code") in allowed:
            return coding["code"], True
    text = _text(concept.get("text"), 100)
    if text is not None:
        code = re.sub(r"[\s_]+", "-", text.lower())
        if code in allowed:
            return code, True
    return None, True


def _datetime(value: Any) -> FhirDateTime | None:
    """A FHIR dateTime of any precision, or None when absent or unusable."""
    if isinstance(value, datetime):
        return value if value.utcoffset() is not None else None
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _FHIR_DATETIME.fullmatch(value := value.strip()):
        return None
    if len(value) <= 7:
        return value
    try:
        return date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
    except ValueError:
        return None


def _full_date(value: Any) -> date | None:
    parsed = _datetime(value)
    if isinstance(parsed, datetime):
        return None  # Patient.birthDate is a date, never a date-time
    return parsed if isinstance(parsed, date) else None


def _check_patient(
    resource: Mapping[str, Any],
    element: str,
    resource_type: str,
    ehr_patient_id: str | None,
    reasons: list[str],
) -> None:
    target = _text(_get(resource, element, "reference"))
    if target is None:
        reasons.append(f"{resource_type}.{element} has no patient reference")
        return
    match = _REFERENCE.search(target)
    if match is None or match["type"] != "Patient":
        reasons.append(f"{resource_type}.{element} does not reference a Patient")
    elif ehr_patient_id is not None and match["id"] != ehr_patient_id:
        reasons.append(f"{resource_type}.{element} references another patient than the one imported")


def _source(
    resource: Mapping[str, Any], resource_type: str, ehr: str | None, reasons: list[str]
) -> dict[str, Any] | None:
    meta = _obj(resource.get("meta")) or {}
    served = parse_source_uri(meta.get("source"))
    if served is not None and served["resource_type"] == resource_type:
        return served
    resource_id = resource.get("id")
    if not isinstance(resource_id, str) or not _FHIR_ID.fullmatch(resource_id):
        reasons.append(f"{resource_type}.id is missing or not a FHIR id")
        return None
    version = meta.get("versionId")
    if not isinstance(version, str) or not _FHIR_ID.fullmatch(version):
        version = None
    return {"ehr": ehr, "resource_type": resource_type, "id": resource_id, "version": version}
