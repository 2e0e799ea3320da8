"""The ``$export`` kick-off request: headers and parameters checked, nothing looked up yet.

Bulk Data Access 2.0 (https://hl7.org/fhir/uv/bulkdata/export.html): ``Accept: application/fhir+json`` and
``Prefer: respond-async`` are required; ``_outputFormat`` takes the three spellings of ndjson; ``_since``
a FHIR instant; ``_type`` a comma list that may repeat; ``_typeFilter`` a ``Type?query`` (comma list or
repeated). A parameter the server does not support is a 400, unless ``Prefer: handling=lenient`` asks to
ignore it, which the manifest's ``error`` file then reports.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from urllib.parse import parse_qsl

from gateway.bulk.compartment import EXPORTABLE_TYPES
from gateway.core.errors import bad_request
from gateway.store.search_query import Conjunction, SearchError, parse_search

Level = Literal["system", "patient", "group"]

FHIR_JSON = "application/fhir+json"
NDJSON_FORMATS = frozenset({"application/fhir+ndjson", "application/ndjson", "ndjson"})
#: parameters of the spec this server does not support (400, or ignored when lenient)
UNSUPPORTED = frozenset({"_elements", "patient", "includeAssociatedData", "_typeFilter:not"})
#: accepted and ignored
IGNORED = frozenset({"_format", "_pretty"})
_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$")
#: a _typeFilter list splits where a new ``Type?`` starts
_NEXT_FILTER = re.compile(r",(?=[A-Z][A-Za-z]*\?)")


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


def parse_kickoff(
    level: Level,
    params: Sequence[tuple[str, str]],
    *,
    accept: str | None,
    prefer: str | None,
    group_id: str | None = None,
) -> KickoffRequest:
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
    )


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
