"""The gateway's own definitional resources, served read-only from memory (docs/codes.md, "Local code systems").

* ``Questionnaire/<instrument key>``: each instrument's form (``mappings.questionnaire``), the forms the
  QuestionnaireResponses answer;
* ``CodeSystem/kap-instruments``, ``CodeSystem/kap-flags``, ``CodeSystem/kap-adverse-events``: the local code
  systems (http://hl7.org/fhir/R4/codesystem.html), their concepts taken from the same tables the mappings use;
* ``StructureDefinition/dosing-phase``: the vital-sign extension (http://hl7.org/fhir/R4/extensibility.html).

They belong to no clinic; any /fhir token may read them (conformance resources, like ``metadata``). Built and
serialized once per process; every read serves the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import orjson

from mappings.codes.kap import DOSING_PHASE_EXTENSION, FLAG_CODINGS, KAP_FLAGS
from mappings.codes.kap_adverse_events import ADVERSE_EVENT_DISPLAY, KAP_ADVERSE_EVENTS
from mappings.fhir import resource_json
from mappings.instruments import INSTRUMENTS, LOCAL_SYSTEM
from mappings.questionnaire import to_fhir_questionnaire

DEFINITION_TYPES = ("CodeSystem", "Questionnaire", "StructureDefinition")
#: when the definitions last changed (their meta.lastUpdated; versionId 1)
PUBLISHED = datetime(2026, 12, 3, tzinfo=UTC)
PUBLISHER = "KAP FHIR Gateway"
DOSING_PHASES = ("baseline", "during", "post")

#: search parameters the definitions answer (in memory: a handful of resources)
DEFINITION_SEARCH_PARAMS = ("_id", "url", "name", "status", "version")


@dataclass(frozen=True)
class Definition:
    resource_type: str
    resource_id: str
    url: str
    name: str
    content: bytes


def _meta() -> dict[str, str]:
    return {"versionId": "1", "lastUpdated": PUBLISHED.isoformat().replace("+00:00", "Z")}


def _code_system(
    id_: str, url: str, name: str, title: str, description: str, concepts: list[dict[str, str]]
) -> dict[str, Any]:
    return {
        "resourceType": "CodeSystem",
        "id": id_,
        "meta": _meta(),
        "url": url,
        "version": "1",
        "name": name,
        "title": title,
        "status": "active",
        "experimental": False,
        "publisher": PUBLISHER,
        "description": description,
        "caseSensitive": True,
        "content": "complete",
        "count": len(concepts),
        "concept": concepts,
    }


def _instrument_concepts() -> list[dict[str, str]]:
    seen: dict[str, dict[str, str]] = {}
    for instrument in INSTRUMENTS.values():
        for code in instrument.codes():
            if code.system == LOCAL_SYSTEM and code.code not in seen:
                seen[code.code] = {"code": code.code, **({"display": code.display} if code.display else {})}
    return list(seen.values())


def _dosing_phase() -> dict[str, Any]:
    phases = ", ".join(f"`{p}`" for p in DOSING_PHASES)
    return {
        "resourceType": "StructureDefinition",
        "id": "dosing-phase",
        "meta": _meta(),
        "url": DOSING_PHASE_EXTENSION,
        "version": "1",
        "name": "DosingPhase",
        "title": "Dosing phase",
        "status": "active",
        "experimental": False,
        "publisher": PUBLISHER,
        "description": "Which part of a ketamine dosing session a vital-sign reading belongs to: "
        f"{phases} (before, during or after the dose).",
        "fhirVersion": "4.0.1",
        "kind": "complex-type",
        "abstract": False,
        "context": [{"type": "element", "expression": "Observation"}],
        "type": "Extension",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Extension",
        "derivation": "constraint",
        "differential": {
            "element": [
                {
                    "id": "Extension",
                    "path": "Extension",
                    "short": "Dosing phase of a vital-sign reading",
                    "definition": f"The dosing-session phase of the reading: {phases}.",
                    "min": 0,
                    "max": "1",
                },
                {"id": "Extension.extension", "path": "Extension.extension", "max": "0"},
                {"id": "Extension.url", "path": "Extension.url", "fixedUri": DOSING_PHASE_EXTENSION},
                {
                    "id": "Extension.value[x]",
                    "path": "Extension.value[x]",
                    "short": f"{phases}",
                    "min": 1,
                    "type": [{"code": "code"}],
                },
            ]
        },
    }


def _resources() -> Iterator[dict[str, Any]]:
    yield _code_system(
        "kap-instruments",
        LOCAL_SYSTEM,
        "KapInstruments",
        "KAP gateway instrument codes",
        "Rating-scale codes without a verified LOINC code: panels, totals, items, bands, C-SSRS risk levels.",
        _instrument_concepts(),
    )
    yield _code_system(
        "kap-flags",
        KAP_FLAGS,
        "KapFlags",
        "KAP gateway safety flags",
        "Safety flags raised by assessments (Observation.interpretation, Flag.code).",
        [{"code": c["code"], "display": c["display"]} for c in FLAG_CODINGS.values()],
    )
    yield _code_system(
        "kap-adverse-events",
        KAP_ADVERSE_EVENTS,
        "KapAdverseEvents",
        "KAP gateway adverse events",
        "Adverse-event kinds of ketamine-assisted psychotherapy sessions (AdverseEvent.event).",
        [{"code": code, "display": display} for code, display in ADVERSE_EVENT_DISPLAY.items()],
    )
    yield _dosing_phase()
    for instrument in INSTRUMENTS.values():
        yield {**resource_json(to_fhir_questionnaire(instrument)), "meta": _meta()}


@cache
def definitions() -> dict[tuple[str, str], Definition]:
    out: dict[tuple[str, str], Definition] = {}
    for resource in _resources():
        ordered = {"resourceType": resource["resourceType"], "id": resource["id"], "meta": resource["meta"]}
        ordered.update({k: v for k, v in resource.items() if k not in ordered})
        out[(resource["resourceType"], resource["id"])] = Definition(
            resource["resourceType"], resource["id"], resource["url"], resource["name"], orjson.dumps(ordered)
        )
    return out


def find(resource_type: str, resource_id: str) -> Definition | None:
    return definitions().get((resource_type, resource_id))


def search(resource_type: str, params: list[tuple[str, str]]) -> list[Definition]:
    """Definitions of the type matching every (already checked) parameter; values are comma ORs."""
    found = [d for (t, _), d in definitions().items() if t == resource_type]
    for name, value in params:
        wanted = set(value.split(","))
        if name == "_id":
            found = [d for d in found if d.resource_id in wanted]
        elif name == "url":
            found = [d for d in found if d.url in wanted or d.url.split("|")[0] in wanted]
        elif name == "name":
            found = [d for d in found if any(d.name.lower().startswith(w.lower()) for w in wanted)]
        elif name == "status":
            found = [d for d in found if "active" in wanted]
        elif name == "version":
            found = [d for d in found if "1" in wanted]
    return found
