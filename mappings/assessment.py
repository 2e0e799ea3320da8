"""Assessment records → QuestionnaireResponse + total-score Observation + item Observations.

Specs: US Core 6.1.0 Observation Screening Assessment
(http://hl7.org/fhir/us/core/STU6.1/StructureDefinition-us-core-observation-screening-assessment.html) and US
Core QuestionnaireResponse (…/StructureDefinition-us-core-questionnaireresponse.html). Codes: docs/codes.md,
LOINC and kap-instruments, via :mod:`mappings.instruments` (LOINC where verified, the gateway's local system otherwise).

Resources and id parts (``ctx.id_of("assessments", external_id, part)``):

* ``response`` — QuestionnaireResponse, only when items are given. It answers the instrument's Questionnaire
  (:mod:`mappings.questionnaire`): linkIds ``/<item code>``, answers ``valueCoding`` with the primary answer
  code (LOINC LA codes) or ``valueInteger`` for items without answer codes, then the total item
  (``valueDecimal``, C-SSRS: the risk-level ``valueCoding``) when the total is known. Patient-reported:
  ``source`` = the patient, no ``author``. It is the assessment's main resource: its identifier value is the
  bare external id.
* ``total`` — the score Observation (category ``survey`` only: US Core has no mental-health category code,
  docs/codes.md, LOINC: how scores are sent). ``code`` = ``instrument.total_code``; ``valueQuantity``
  ``{score}`` (C-SSRS: the risk level as ``valueCodeableConcept``); ``interpretation`` = the band code. With items it has ``derivedFrom`` the QR
  and ``hasMember`` the item Observations. If the items are incomplete, no total can be computed (the
  instruments never prorate): the Observation then carries the *panel* code, no value, and groups the items
  (the US Core panel pattern, docs/codes.md, LOINC: how scores are sent) — an Observation coded as a total
  always has its value.
* ``item-<key>`` — one Observation per answered item (``valueCodeableConcept`` with the LA code, else
  ``valueInteger``), ``derivedFrom`` the QR.

Safety flags (:func:`flags_of`; e.g. PHQ-9 item 9 > 0 → ``suicidal-ideation``) are sent machine-readably as an
extra ``interpretation`` coded in ``https://kap-gateway.org/fhir/CodeSystem/kap-flags`` plus a fixed ``note``
(no clinic free text) on the total Observation, and on the item Observation whose answer raised the flag.

Related records: none (the record names its patient and session directly).
"""

from __future__ import annotations

from typing import Any

from mappings.codes import hl7, kap, ucum
from mappings.context import MappingContext
from mappings.fhir import Observation, QuestionnaireResponse, validated
from mappings.instruments import HIGH_SUICIDE_RISK, SUICIDAL_IDEATION, Instrument, get_instrument
from mappings.instruments.cssrs import HIGH, MODERATE
from mappings.questionnaire import CODED_TOTALS, coding, link_id, total_link_id
from mappings.records import AssessmentRecord

KIND = "assessments"
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
SCREENING_ASSESSMENT = US_CORE + "us-core-observation-screening-assessment"
US_CORE_QR = US_CORE + "us-core-questionnaireresponse"

RESPONSE_PART = "response"
TOTAL_PART = "total"

#: flags a C-SSRS risk level implies when only the total is given (same result as the items' flag rules:
#: moderate needs a Yes on item 3 or 6, high one on 4, 5 or 6 + 6b — see mappings.instruments.cssrs)
CSSRS_TOTAL_FLAGS: dict[int, tuple[str, ...]] = {
    MODERATE: (SUICIDAL_IDEATION,),
    HIGH: (SUICIDAL_IDEATION, HIGH_SUICIDE_RISK),
}


def item_part(key: str) -> str:
    return f"item-{key}"


def related_keys(record: AssessmentRecord) -> list[tuple[str, str]]:
    """Records this mapping needs besides ``record``: none."""
    return []


def total_of(record: AssessmentRecord) -> int | None:
    """The given total, else the total computed from complete items, else None."""
    if record.total is not None:
        return record.total
    score = record.score()
    return score.total if score is not None else None


def flags_of(record: AssessmentRecord) -> tuple[str, ...]:
    """Safety flags of the assessment (for the gateway's alerts), in instrument rule order.

    From the items when given (complete or not). From a total alone only what the total *implies*: for sum
    scales, a flag item's rule holds whenever the total exceeds what all other scored items can reach (PHQ-9
    total >= 25 means item 9 > 0); for the C-SSRS, by risk level (:data:`CSSRS_TOTAL_FLAGS`).
    """
    instrument = get_instrument(record.instrument)
    if record.items is not None:
        return instrument.flags(record.items)
    if record.total is None:
        return ()
    if instrument.key == "cssrs":
        return CSSRS_TOTAL_FLAGS.get(record.total, ())
    scored = [item for item in instrument.items if item.scored]
    flags = []
    for rule in instrument.flag_rules:
        others_max = sum(item.max_score for item in scored if item.key != rule.item_key)
        if instrument.item(rule.item_key).scored and record.total - others_max >= rule.min_score:
            flags.append(rule.flag)
    return tuple(dict.fromkeys(flags))


def to_fhir_assessment(
    record: AssessmentRecord, *, external_id: str, ctx: MappingContext
) -> list[QuestionnaireResponse | Observation]:
    """[QuestionnaireResponse (with items), total Observation, item Observations (with items)]."""
    instrument = get_instrument(record.instrument)
    total = total_of(record)
    flags = flags_of(record)
    resources: list[QuestionnaireResponse | Observation] = []
    items: list[Observation] = []
    if record.items is not None:
        resources.append(_response(record, instrument, total, external_id, ctx))
        items = [
            _item_observation(record, instrument, key, value, external_id, ctx)
            for key, value in record.scores().items()
        ]
    resources.append(_total_observation(record, instrument, total, flags, external_id, ctx))
    return [*resources, *items]


# --- QuestionnaireResponse ----------------------------------------------------------------------------


def _response(
    record: AssessmentRecord, instrument: Instrument, total: int | None, external_id: str, ctx: MappingContext
) -> QuestionnaireResponse:
    assert record.items is not None
    answers = []
    for key, value in record.scores().items():
        item = instrument.item(key)
        answers.append(
            {"linkId": link_id(item.code), "text": item.text, "answer": [_answer(instrument, key, value)]}
        )
    if total is not None:
        answers.append(
            {
                "linkId": total_link_id(instrument),
                "text": instrument.total_code.display,
                "answer": [_total_answer(instrument, total)],
            }
        )
    resource: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": ctx.id_of(KIND, external_id, RESPONSE_PART),
        "meta": {"profile": [US_CORE_QR]},
        "identifier": ctx.identifier(KIND, external_id),
        "questionnaire": instrument.questionnaire_url,
        "status": "completed",
        "subject": ctx.reference("patients", record.patient_id),
        "authored": record.taken_at.isoformat(),
        "source": ctx.reference("patients", record.patient_id),
        "item": answers,
    }
    if record.session_id is not None:
        resource["encounter"] = ctx.reference("sessions", record.session_id)
    return validated(QuestionnaireResponse, resource)


def _answer(instrument: Instrument, key: str, value: int) -> dict[str, Any]:
    code = instrument.answer_code(key, value)
    return {"valueCoding": coding(code)} if code is not None else {"valueInteger": value}


def _total_answer(instrument: Instrument, total: int) -> dict[str, Any]:
    if instrument.key in CODED_TOTALS:
        band = instrument.band(total)
        assert band is not None and band.code is not None
        return {"valueCoding": coding(band.code)}
    return {"valueDecimal": total}


# --- Observations -------------------------------------------------------------------------------------


def _observation(
    record: AssessmentRecord, part: str, external_id: str, ctx: MappingContext, code: dict[str, Any]
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": ctx.id_of(KIND, external_id, part),
        "meta": {"profile": [SCREENING_ASSESSMENT]},
        "identifier": [{**ctx.identifier(KIND, external_id), "value": f"{external_id}#{part}"}],
        "status": "final",
        "category": [{"coding": [hl7.SURVEY]}],
        "code": code,
        "subject": ctx.reference("patients", record.patient_id),
        "effectiveDateTime": record.taken_at.isoformat(),
    }
    if record.session_id is not None:
        resource["encounter"] = ctx.reference("sessions", record.session_id)
    if record.items is not None:
        resource["derivedFrom"] = [ctx.reference(KIND, external_id, RESPONSE_PART, "QuestionnaireResponse")]
    return resource


def _total_observation(
    record: AssessmentRecord,
    instrument: Instrument,
    total: int | None,
    flags: tuple[str, ...],
    external_id: str,
    ctx: MappingContext,
) -> Observation:
    known = total is not None
    code = instrument.total_code if known or instrument.panel is None else instrument.panel
    resource = _observation(
        record, TOTAL_PART, external_id, ctx, {"coding": [coding(code)], "text": code.display}
    )
    interpretation = []
    if total is not None:
        band = instrument.band(total)
        if instrument.key in CODED_TOTALS:
            assert band is not None and band.code is not None
            resource["valueCodeableConcept"] = {"coding": [coding(band.code)], "text": band.display}
        else:
            resource["valueQuantity"] = ucum.quantity(total, *ucum.SCORE)
        if band is not None and band.code is not None:
            interpretation.append({"coding": [coding(band.code)], "text": band.display})
    if record.items:
        resource["hasMember"] = [
            ctx.reference(KIND, external_id, item_part(key), "Observation") for key in record.items
        ]
    _add_flags(resource, interpretation, flags)
    return validated(Observation, resource)


def _item_observation(
    record: AssessmentRecord,
    instrument: Instrument,
    key: str,
    value: int,
    external_id: str,
    ctx: MappingContext,
) -> Observation:
    item = instrument.item(key)
    resource = _observation(
        record, item_part(key), external_id, ctx, {"coding": [coding(item.code)], "text": item.text}
    )
    code = instrument.answer_code(key, value)
    if code is not None:
        resource["valueCodeableConcept"] = {"coding": [coding(code)], "text": code.display}
    else:
        resource["valueInteger"] = value
    raised = [rule.flag for rule in instrument.flag_rules if rule.item_key == key and value >= rule.min_score]
    _add_flags(resource, [], tuple(dict.fromkeys(raised)))
    return validated(Observation, resource)


def _add_flags(
    resource: dict[str, Any], interpretation: list[dict[str, Any]], flags: tuple[str, ...]
) -> None:
    for flag in flags:
        flag_coding = kap.FLAG_CODINGS[flag]
        interpretation.append({"coding": [flag_coding], "text": flag_coding["display"]})
    if interpretation:
        resource["interpretation"] = interpretation
    if flags:
        names = ", ".join(kap.FLAG_CODINGS[flag]["display"].lower() for flag in flags)
        resource["note"] = [{"text": f"Safety flag: {names}. Route to a clinician for review."}]
