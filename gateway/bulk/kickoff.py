"""The ``$export`` kick-off request: headers and parameters checked, nothing looked up yet.

Bulk Data Access 2.0 (https://hl7.org/fhir/uv/bulkdata/export.html): ``Accept: application/fhir+json`` and
``Prefer: respond-async`` are required; ``_outputFormat`` takes the three spellings of ndjson; ``_since``
a FHIR instant; ``_type`` a comma list that may repeat; ``_typeFilter`` a ``Type?query`` (comma list or
repeated); ``patient`` (Patient and Group level, POST only) references to the patients whose compartments
to export. A GET sends the parameters in its query string, a POST as a FHIR ``Parameters`` body
(:func:`parameters_body`). A parameter the server does not support is a 400, unless
``Prefer: handling=lenient`` asks to ignore it, which the manifest's ``error`` file then reports.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import parse_qsl

import orjson

from gateway.bulk.compartment import EXPORTABLE_TYPES
from gateway.core.errors import bad_request
from gateway.store.search_query import Conjunction, SearchError, parse_search

Level = Literal["system", "patient", "group"]

FHIR_JSON = "application/fhir+json"
NDJSON_FORMATS = frozenset({"application/fhir+ndjson", "application/ndjson", "ndjson"})
#: parameters of the spec this server does not support (400, or ignored when lenient)
UNSUPPORTED = frozenset({"_elements", "includeAssociatedData", "_typeFilter:not"})
#: accepted and ignored
IGNORED = frozenset({"_format", "_pretty"})
_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$")
#: a _typeFilter list splits where a new ``Type?`` starts
_NEXT_FILTER = re.compile(r",(?=[A-Z][A-Za-z]*\?)")
#: a ``patient`` reference: ``Patient/{id}``, relative or absolute
_PATIENT_REFERENCE = re.compile(r"(?:^|/)Patient/([A-Za-z0-9\-.]{1,64})$")
#: the ``Parameters.parameter.value[x]`` types a kick-off parameter may have, read as text
_VALUE_TYPES = ("valueString", "valueCode", "valueInstant", "valueDateTime", "valueUri", "valueUrl")


@dataclass(frozen=True)
class KickoffRequest:
    level: Level
    group_id: str | None = None
    #: types named by ``_type``, in order; None = the level's default
    types: tuple[str, ...] | None = None
    since: datetime | None = None
    #: the ``_typeFilter`` queries that parsed (``Type?query``), re-parsed by the job with :func:`type_filter`
    type_filters: tuple[str, ...] = ()
    lenient: bool = False
    #: what a lenient request asked for and the server ignored (reported in the manifest's error file)
    ignored: tuple[str, ...] = ()
    #: Patient ids named by ``patient`` (their compartments only); None = every patient of the level
    patients: tuple[str, ...] | None = None


def parse_kickoff(
    level: Level,
    params: Sequence[tuple[str, str]],
    *,
    accept: str | None,
    prefer: str | None,
    group_id: str | None = None,
    from_body: bool = False,
) -> KickoffRequest:
    """``params`` are the query string's (GET) or the ``Parameters`` body's (POST, ``from_body``)."""
    preferences = {p.strip().lower() for p in re.split(r"[,;]", prefer or "")}
    if "respond-async" not in preferences:
        raise bad_request("$export is asynchronous: send 'Prefer: respond-async'", expression=["Prefer"])
    media = {m.split(";")[0].strip().lower() for m in (accept or "").split(",")}
    if FHIR_JSON not in media:
        raise bad_request(
            f"$export answers errors as {FHIR_JSON}: send 'Accept: {FHIR_JSON}'", expression=["Accept"]
        )
    lenient = "handling=lenient" in preferences
    ignored: list[str] = []

    def refuse(message: str, expression: str) -> None:
        if not lenient:
            raise bad_request(message, expression=[expression])
        ignored.append(message)

    types: list[str] | None = None
    since: datetime | None = None
    filters: list[str] = []
    patients: list[str] | None = None
    for name, value in params:
        if name == "_outputFormat":
            if value not in NDJSON_FORMATS:
                raise bad_request(
                    f"_outputFormat {value!r} is not supported (application/fhir+ndjson)", expression=[name]
                )
        elif name == "_since":
            since = _instant(value)
        elif name == "_type":
            types = types or []
            for resource_type in (t.strip() for t in value.split(",")):
                if resource_type not in EXPORTABLE_TYPES:
                    refuse(f"_type {resource_type!r} is not a resource type this server exports", name)
                elif resource_type not in types:
                    types.append(resource_type)
        elif name == "_typeFilter":
            for text in _NEXT_FILTER.split(value):
                try:
                    type_filter(text)
                except SearchError as error:
                    refuse(f"_typeFilter {text!r}: {error}", name)
                    continue
                filters.append(text)
        elif name == "patient":
            if level == "system":
                refuse("patient does not apply to a system-level export", name)
            elif not from_body:
                refuse("patient is a POST parameter (a Parameters body with valueReference)", name)
            elif (found := _PATIENT_REFERENCE.search(value)) is None:
                refuse(f"patient {value!r} is not a reference to a Patient (Patient/[id])", name)
            else:
                patients = patients or []
                if found.group(1) not in patients:
                    patients.append(found.group(1))
        elif name in IGNORED:
            continue
        elif name in UNSUPPORTED:
            refuse(f"{name} is not supported by this server", name)
        else:
            refuse(f"{name} is not a parameter of $export", name)
    if types is not None and not types:
        raise bad_request("_type names no resource type this server exports", expression=["_type"])
    return KickoffRequest(
        level=level,
        group_id=group_id,
        types=tuple(types) if types is not None else None,
        since=since,
        type_filters=tuple(filters),
        lenient=lenient,
        ignored=tuple(ignored),
        patients=tuple(patients) if patients is not None else None,
    )


def parameters_body(body: bytes, content_type: str | None) -> list[tuple[str, str]]:
    """A POST kick-off's FHIR ``Parameters`` resource as (name, value) pairs, in order, as a GET's query
    string would give them; ``valueReference`` gives its ``reference``."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media not in (FHIR_JSON, "application/json"):
        raise bad_request(f"a POST $export takes a Parameters resource as {FHIR_JSON}", expression=["body"])
    try:
        resource: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise bad_request("the body is not JSON", expression=["body"]) from None
    if not isinstance(resource, dict) or resource.get("resourceType") != "Parameters":
        raise bad_request("a POST $export takes a Parameters resource", expression=["Parameters"])
    entries = resource.get("parameter", [])
    if not isinstance(entries, list):
        raise bad_request("Parameters.parameter is not a list", expression=["Parameters.parameter"])
    pairs: list[tuple[str, str]] = []
    for index, entry in enumerate(entries):
        where = f"Parameters.parameter[{index}]"
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name:
            raise bad_request("a parameter without a name", expression=[where])
        values = [key for key in entry if key.startswith("value")]
        if len(values) != 1 or "part" in entry or "resource" in entry:
            raise bad_request(f"parameter {name!r} needs exactly one value[x]", expression=[where])
        key, value = values[0], entry[values[0]]
        if key == "valueReference" and isinstance(value, dict) and isinstance(value.get("reference"), str):
            pairs.append((name, value["reference"]))
        elif key in _VALUE_TYPES and isinstance(value, str):
            pairs.append((name, value))
        else:
            raise bad_request(
                f"parameter {name!r}: {key} is not a value a kick-off parameter takes", expression=[where]
            )
    return pairs


def _instant(value: str) -> datetime:
    text = value.replace(" ", "+")  # an unencoded '+' of the offset arrives as a space
    if not _INSTANT.fullmatch(text):
        raise bad_request(
            f"_since {value!r} is not a FHIR instant (YYYY-MM-DDThh:mm:ss[.fff](Z|+hh:mm))",
            expression=["_since"],
        )
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def type_filter(text: str) -> tuple[str, Conjunction]:
    """One ``_typeFilter`` query (``Observation?category=laboratory&status=final``) -> (type, clauses);
    only search parameters the index answers (the FHIR search's own parser, strict)."""
    resource_type, question, query = text.partition("?")
    if resource_type not in EXPORTABLE_TYPES or not question or not query:
        raise SearchError(
            "expected Type?param=value&... for a type this server exports", expression="_typeFilter"
        )
    pairs = parse_qsl(query, keep_blank_values=True)
    if not pairs:
        raise SearchError("no search parameters", expression="_typeFilter")
    search = parse_search(resource_type, pairs, strict=True)
    if search.includes or search.revincludes or search.summary_count or search.sort.key != "_id":
        raise SearchError(
            "only search parameters filter an export (no result parameters)", expression="_typeFilter"
        )
    return resource_type, search.clauses
