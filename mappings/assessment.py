"""Assessment records → QuestionnaireResponse + total-score Observation + item Observations (+ a safety Flag).

Specs: US Core 6.1.0 Observation Screening Assessment
(http://hl7.org/fhir/us/core/STU6.1/StructureDefinition-us-core-observation-screening-assessment.html), US
Core QuestionnaireResponse (…/StructureDefinition-us-core-questionnaireresponse.html) and FHIR R4 Flag
(http://hl7.org/fhir/R4/flag.html). Codes: docs/codes.md, LOINC and kap-instruments, via
:mod:`mappings.instruments` (LOINC where verified, the gateway's local system otherwise).

Resources and id parts (``ctx.id_of("assessments", external_id, part)``):

* ``response`` — QuestionnaireResponse, only when items are given. It answers the instrument's Questionnaire
  (:mod:`mappings.questionnaire`): linkIds ``/<item code>``, answers ``valueCoding`` with the primary answer
  code (LOINC LA codes) or ``valueInteger`` for items without answer codes, then the total item
  (``valueDecimal``, C-SSRS: the risk-level ``valueCoding``) when the total is known. ``status`` is
  ``completed``, or ``in-progress`` when items the form requires are unanswered
  (``Instrument.missing_required``); an unanswered *safety* item is still listed, without an answer, with a
  data-absent-reason extension (``unknown``). It is the assessment's main resource: its identifier value is
  the bare external id.
* ``total`` — the score Observation (category ``survey`` only: US Core has no mental-health category code,
  docs/codes.md, LOINC: how scores are sent). ``code`` = ``instrument.total_code``; ``valueQuantity``
  ``{score}`` (C-SSRS: the risk level as ``valueCodeableConcept``); ``interpretation`` = the band code. With
  items it has ``derivedFrom`` the QR and ``hasMember`` the item Observations. If the items are incomplete, no
  total can be computed (the instruments never prorate): the Observation then carries the *panel* code, no
  value, and groups the items (the US Core panel pattern) — an Observation coded as a total always has its value.
* ``item-<key>`` — one Observation per answered item (``valueCodeableConcept`` with the LA code, else
  ``valueInteger``), ``derivedFrom`` the QR; plus one per unanswered safety item with ``dataAbsentReason``
  ``unknown`` and a note.
* ``flag`` — a patient Flag (status ``active``, category ``safety``, period start = ``taken_at``) while the
  assessment raises a safety flag; when a change or a delete stops raising it, the store retires it
  (``entered-in-error``, :mod:`mappings.lifecycle`).

Who: self-reported instruments name the patient as QuestionnaireResponse ``source`` and Observation
``performer`` (and ``rater_id``, who administered the form, as ``author``); clinician-rated ones (MADRS, CADSS)
name the rater (``rater_id``) as ``author``, ``source`` and ``performer`` — without a rater they name nobody
(never the patient).

Safety (``Instrument.safety``: the answers *and* what the total implies). Certain flags (e.g. PHQ-9 item 9 > 0,
or a total that forces it) are sent as ``interpretation`` codings — the local ``kap-flags`` code plus the
standard v3 ObservationInterpretation ``AA`` "Critical abnormal" — and a fixed ``note`` (no clinic free text) on
the total Observation and on the item Observation whose answer raised the flag, and as the Flag. A flag that
can be neither raised nor ruled out (a safety item unanswered) gets a note saying so on the total Observation.

Related records: none (the record names its patient, session and rater directly).
"""

from __future__ import annotations

from typing import Any

from mappings.codes import hl7, kap, snomed, ucum
from mappings.codes.hl7_referrals import DATA_ABSENT_REASON
from mappings.context import MappingContext
from mappings.fhir import Flag, Observation, QuestionnaireResponse, validated
from mappings.instruments import SUICIDAL_IDEATION, Code, Instrument, Safety, get_instrument
from mappings.questionnaire import CODED_TOTALS, coding, link_id, total_link_id
from mappings.records import AssessmentRecord

KIND = "assessments"
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
SCREENING_ASSESSMENT = US_CORE + "us-core-observation-screening-assessment"
US_CORE_QR = US_CORE + "us-core-questionnaireresponse"

RESPONSE_PART = "response"
TOTAL_PART = "total"
FLAG_PART = "flag"
#: R4 core extension on Flag pointing at the record behind it (hl7.org/fhir/R4/extension-flag-detail.html)
FLAG_DETAIL = "http://hl7.org/fhir/StructureDefinition/flag-detail"
ROUTE = "Route to a clinician for review."


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


def safety_of(record: AssessmentRecord) -> Safety:
    """What the items and the total say about the safety flags (``Instrument.safety``)."""
    return get_instrument(record.instrument).safety(record.items or {}, record.total)


def flags_of(record: AssessmentRecord) -> tuple[str, ...]:
    """Safety flags of the assessment, in instrument rule order: those certain from the items (complete or
    not) and what the total implies — PHQ-9 items 1-8 all 3 with total 27 forces item 9 = 3; a C-SSRS total
    alone implies the flags every answer pattern with that risk level raises."""
    return safety_of(record).certain


def to_fhir_assessment(
    record: AssessmentRecord, *, external_id: str, ctx: MappingContext
) -> list[QuestionnaireResponse | Observation | Flag]:
    """[QuestionnaireResponse (with items), total Observation, item Observations (with items), Flag (when a
    safety flag is raised)]."""
    instrument = get_instrument(record.instrument)
    total = total_of(record)
    safety = safety_of(record)
    resources: list[QuestionnaireResponse | Observation | Flag] = []
    items: list[Observation] = []
    absent = safety.missing if record.items is not None else ()
    if record.items is not None:
        resources.append(_response(record, instrument, total, absent, external_id, ctx))
        scores = record.scores()
        for item in instrument.items:
            if item.key in scores:
                items.append(
                    _item_observation(record, instrument, item.key, scores[item.key], external_id, ctx)
                )
            elif item.key in absent:
                items.append(_absent_item_observation(record, instrument, item.key, external_id, ctx))
    resources.append(_total_observation(record, instrument, total, safety, items, external_id, ctx))
    resources += items
    if safety.certain:
        resources.append(_flag(record, instrument, safety.certain, external_id, ctx))
    return resources


def _performer(
    record: AssessmentRecord, instrument: Instrument, ctx: MappingContext
) -> dict[str, str] | None:
    """Who answered or rated: the patient for self-reports, the rater for clinician ratings (None if unknown)."""
    if instrument.clinician_rated:
        return ctx.reference("practitioners", record.rater_id) if record.rater_id is not None else None
    return ctx.reference("patients", record.patient_id)


# --- QuestionnaireResponse ----------------------------------------------------------------------------


def _response(
    record: AssessmentRecord,
    instrument: Instrument,
    total: int | None,
    absent: tuple[str, ...],
    external_id: str,
    ctx: MappingContext,
) -> QuestionnaireResponse:
    assert record.items is not None
    scores = record.scores()
    answers = []
    for item in instrument.items:
        if item.key in scores:
            answers.append(
                {
                    "linkId": link_id(item.code),
                    "text": item.text,
                    "answer": [_answer(instrument, item.key, scores[item.key])],
                }
            )
        elif item.key in absent:
            answers.append(
                {
                    "extension": [{"url": DATA_ABSENT_REASON, "valueCode": hl7.ABSENT_UNKNOWN["code"]}],
                    "linkId": link_id(item.code),
                    "text": item.text,
                }
            )
    if total is not None:
        answers.append(
            {
                "linkId": total_link_id(instrument),
                "text": instrument.total_code.display,
                "answer": [_total_answer(instrument, total)],
            }
        )
    missing = instrument.missing_required(scores)
    resource: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": ctx.id_of(KIND, external_id, RESPONSE_PART),
        "meta": {"profile": [US_CORE_QR]},
        "identifier": ctx.identifier(KIND, external_id),
        "questionnaire": instrument.questionnaire_url,
        "status": "in-progress" if missing else "completed",
        "subject": ctx.reference("patients", record.patient_id),
        "authored": record.taken_at.isoformat(),
        "item": answers,
    }
    if record.rater_id is not None:
        resource["author"] = ctx.reference("practitioners", record.rater_id)
    source = _performer(record, instrument, ctx)
    if source is not None:
        resource["source"] = source
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
    record: AssessmentRecord,
    instrument: Instrument,
    part: str,
    external_id: str,
    ctx: MappingContext,
    code: dict[str, Any],
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
    performer = _performer(record, instrument, ctx)
    if performer is not None:
        resource["performer"] = [performer]
    if record.items is not None:
        resource["derivedFrom"] = [ctx.reference(KIND, external_id, RESPONSE_PART, "QuestionnaireResponse")]
    return resource


def _concept(code: Code, text: str) -> dict[str, Any]:
    return {"coding": [coding(code)], "text": text}


def _total_observation(
    record: AssessmentRecord,
    instrument: Instrument,
    total: int | None,
    safety: Safety,
    items: list[Observation],
    external_id: str,
    ctx: MappingContext,
) -> Observation:
    known = total is not None
    code = instrument.total_code if known or instrument.panel is None else instrument.panel
    resource = _observation(record, instrument, TOTAL_PART, external_id, ctx, _concept(code, code.display))
    interpretation = []
    if total is not None:
        band = instrument.band(total)
        if instrument.key in CODED_TOTALS:
            assert band is not None and band.code is not None
            resource["valueCodeableConcept"] = _concept(band.code, band.display)
        else:
            resource["valueQuantity"] = ucum.quantity(total, *ucum.SCORE)
        if band is not None and band.code is not None:
            interpretation.append(_concept(band.code, band.display))
    if items:
        resource["hasMember"] = [{"reference": f"Observation/{item.id}"} for item in items]
    notes = _add_flags(resource, interpretation, safety.certain)
    if safety.unknown:
        names = ", ".join(_flag_name(flag) for flag in safety.unknown)
        which = ("item " if len(safety.missing) == 1 else "items ") + ", ".join(safety.missing)
        notes.append(f"{instrument.title} {which} not reported: {names} cannot be ruled out. {ROUTE}")
    if notes:
        resource["note"] = [{"text": text} for text in notes]
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
        record, instrument, item_part(key), external_id, ctx, _concept(item.code, item.text)
    )
    code = instrument.answer_code(key, value)
    if code is not None:
        resource["valueCodeableConcept"] = _concept(code, code.display)
    else:
        resource["valueInteger"] = value
    raised = [rule.flag for rule in instrument.flag_rules if rule.item_key == key and value >= rule.min_score]
    notes = _add_flags(resource, [], tuple(dict.fromkeys(raised)))
    if notes:
        resource["note"] = [{"text": text} for text in notes]
    return validated(Observation, resource)


def _absent_item_observation(
    record: AssessmentRecord, instrument: Instrument, key: str, external_id: str, ctx: MappingContext
) -> Observation:
    """An unanswered safety item: no value, ``dataAbsentReason`` unknown, and a note saying it was skipped."""
    item = instrument.item(key)
    resource = _observation(
        record, instrument, item_part(key), external_id, ctx, _concept(item.code, item.text)
    )
    resource["dataAbsentReason"] = {"coding": [hl7.ABSENT_UNKNOWN], "text": "Not answered"}
    resource["note"] = [{"text": f"{instrument.title} item {key} was not answered. {ROUTE}"}]
    return validated(Observation, resource)


def _flag_name(flag: str) -> str:
    return kap.FLAG_CODINGS[flag]["display"].lower()


def _add_flags(
    resource: dict[str, Any], interpretation: list[dict[str, Any]], flags: tuple[str, ...]
) -> list[str]:
    """Adds the flags' interpretations (kap-flags codes, then ``AA`` once) and returns the note texts."""
    for flag in flags:
        flag_coding = kap.FLAG_CODINGS[flag]
        interpretation.append({"coding": [flag_coding], "text": flag_coding["display"]})
    if flags:
        interpretation.append({"coding": [hl7.CRITICAL_ABNORMAL], "text": hl7.CRITICAL_ABNORMAL["display"]})
    if interpretation:
        resource["interpretation"] = interpretation
    if not flags:
        return []
    return [f"Safety flag: {', '.join(_flag_name(flag) for flag in flags)}. {ROUTE}"]


def _flag(
    record: AssessmentRecord,
    instrument: Instrument,
    flags: tuple[str, ...],
    external_id: str,
    ctx: MappingContext,
) -> Flag:
    """The patient safety Flag: names the most severe flag raised (docs/codes.md, kap-flags)."""
    flag = next(f for f in kap.FLAG_SEVERITY_ORDER if f in flags)
    codings = [kap.FLAG_CODINGS[flag]]
    if flag == SUICIDAL_IDEATION:
        codings.append(snomed.SUICIDAL_THOUGHTS)
    resource: dict[str, Any] = {
        "resourceType": "Flag",
        "id": ctx.id_of(KIND, external_id, FLAG_PART),
        "extension": [
            {
                "url": FLAG_DETAIL,
                "valueReference": ctx.reference(KIND, external_id, TOTAL_PART, "Observation"),
            }
        ],
        "identifier": [{**ctx.identifier(KIND, external_id), "value": f"{external_id}#{FLAG_PART}"}],
        "status": "active",
        "category": [{"coding": [hl7.FLAG_SAFETY], "text": hl7.FLAG_SAFETY["display"]}],
        "code": {
            "coding": codings,
            "text": f"{kap.FLAG_CODINGS[flag]['display']} ({instrument.title}). {ROUTE}",
        },
        "subject": ctx.reference("patients", record.patient_id),
        "period": {"start": record.taken_at.isoformat()},
        "author": {"reference": f"Organization/{ctx.organization_id()}"},
    }
    if record.session_id is not None:
        resource["encounter"] = ctx.reference("sessions", record.session_id)
    return validated(Flag, resource)
