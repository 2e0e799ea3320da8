"""Instrument definitions → FHIR R4 Questionnaire (http://hl7.org/fhir/R4/questionnaire.html).

One Questionnaire per instrument, ``id`` = the instrument key, ``url`` = ``instrument.questionnaire_url`` (the
LOINC form canonical ``http://loinc.org/q/<panel>`` for PHQ-9, PHQ-2, GAD-7 and C-SSRS; the gateway's own
``https://kap-gateway.org/fhir/Questionnaire/<key>`` otherwise). It is the form the assessment mapping's
QuestionnaireResponses answer, so both share :func:`link_id` and :func:`total_link_id`.

* linkIds are ``/<item code>`` like the LOINC (LHC-Forms) forms and the US Core PHQ-9 example (docs/codes.md,
  LOINC); local codes get the same shape (``/madrs-item-1``), so ``Instrument.item(linkId)`` resolves every linkId.
* Items with coded answers (LOINC LA codes) are ``choice`` with ``answerOption.valueCoding`` and, for scored
  items, the ``ordinalValue`` extension holding the score (as in the US Core PHQ-9 form). Each item offers the
  instrument's primary answer code only (GAD-7 item 2: LA18938-3; LA6570-1 is accepted on input only).
* Items without answer codes (MADRS, PCL-5, CADSS) are ``integer`` with ``minValue``/``maxValue`` extensions.
* A read-only total item follows the items: ``decimal`` (the US Core PHQ-9 example answers 44261-6 with
  valueDecimal), or for instruments whose total is a coded risk level (C-SSRS 93374-7) ``choice`` among the
  band codes.
* No ``enableWhen``: the clinic API accepts answers to items the screener would skip (C-SSRS 3-5, 6b), and a
  response must still conform to this form. No profile in ``meta`` (the SDC Questionnaire profile is not
  US Core).
"""

from __future__ import annotations

from typing import Any

from mappings.codes import hl7
from mappings.fhir import Questionnaire, validated
from mappings.instruments import Code, Instrument, Item

#: instruments whose total is a coded ordinal (answered with the band code) instead of a number
CODED_TOTALS: frozenset[str] = frozenset({"cssrs"})


def coding(code: Code) -> dict[str, str]:
    """A Coding; without ``display`` when the code has none (a display we could not verify is left out)."""
    out = {"system": code.system, "code": code.code}
    if code.display:
        out["display"] = code.display
    return out


def link_id(code: Code) -> str:
    """linkId of the form item coded ``code``: ``/<code>`` (LOINC form convention)."""
    return f"/{code.code}"


def total_link_id(instrument: Instrument) -> str:
    return link_id(instrument.total_code)


def is_coded(item: Item) -> bool:
    """True when every answer of the item has a code (then the item is ``choice``, else ``integer``)."""
    return bool(item.answers) and all(option.code is not None for option in item.answers)


def questionnaire_name(instrument: Instrument) -> str:
    """Computer-friendly name (R4 invariant que-0: ``[A-Z]([A-Za-z0-9_]){0,254}``)."""
    return instrument.key.upper()


def to_fhir_questionnaire(instrument: Instrument) -> Questionnaire:
    resource: dict[str, Any] = {
        "resourceType": "Questionnaire",
        "id": instrument.key,
        "url": instrument.questionnaire_url,
        "name": questionnaire_name(instrument),
        "title": instrument.title,
        "status": "active",
        "subjectType": ["Patient"],
        "code": [coding(instrument.panel)] if instrument.panel is not None else None,
        "item": [*(_item(item) for item in instrument.items), _total_item(instrument)],
    }
    return validated(Questionnaire, {k: v for k, v in resource.items() if v is not None})


def _item(item: Item) -> dict[str, Any]:
    out: dict[str, Any] = {"linkId": link_id(item.code), "code": [coding(item.code)], "text": item.text}
    if is_coded(item):
        out["type"] = "choice"
        out["answerOption"] = [
            {
                **(
                    {"extension": [{"url": hl7.ORDINAL_VALUE, "valueDecimal": option.score}]}
                    if item.scored
                    else {}
                ),
                "valueCoding": coding(option.code),
            }
            for option in item.answers
            if option.code is not None
        ]
    else:
        out["type"] = "integer"
        out["extension"] = [
            {"url": hl7.MIN_VALUE, "valueInteger": item.min_score},
            {"url": hl7.MAX_VALUE, "valueInteger": item.max_score},
        ]
    return out


def _total_item(instrument: Instrument) -> dict[str, Any]:
    out: dict[str, Any] = {
        "linkId": total_link_id(instrument),
        "code": [coding(instrument.total_code)],
        "text": instrument.total_code.display,
        "readOnly": True,
    }
    if instrument.key in CODED_TOTALS:
        out["type"] = "choice"
        out["answerOption"] = [{"valueCoding": coding(band.code)} for band in instrument.bands if band.code]
    else:
        out["type"] = "decimal"
    return out
