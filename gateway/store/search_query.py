"""FHIR search parameters parsed into clauses the search index answers (hl7.org/fhir/R4/search.html).

Pure: no database, no web framework. ``parse_search`` turns a request's ``(name, value)`` pairs into a
:class:`SearchRequest`: AND-ed :class:`Clause` objects (each an OR of values, a comma in the value),
paging, sorting, ``_include``/``_revinclude``, ``_summary`` and ``_total``. The repository
(``gateway.db.repositories.fhir_search``) turns the clauses into index lookups; nothing reads JSON.

Value semantics follow R4 search:

* token ``[system]|[code]``: ``code`` (any system), ``system|code``, ``|code`` (no system), ``system|``
  (any code of the system); modifier ``:not`` is not supported;
* reference ``id``, ``Type/id`` or an absolute ``.../Type/id`` (the modifier ``:Type`` names the type);
* date ``[prefix]value`` with ``eq ne gt lt ge le sa eb`` over the value's implicit range
  (``2026``, ``2026-11``, ``2026-11-02``, a dateTime), against the resource's range (a date, a dateTime
  at its precision, or a Period);
* string: starts with, case- and accent-insensitive; ``:exact`` is an exact match of the normalized value,
  ``:contains`` a substring match.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import orjson

from gateway.store.search_index import normalize_string, parse_date_range
from gateway.store.search_params import SEARCH_PARAMS, SearchParam

DEFAULT_COUNT = 50
MAX_COUNT = 1000
DATE_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb")

#: parameters every type answers; ``_cursor`` is the opaque paging cursor of ``Bundle.link[next]``
RESULT_PARAMS = frozenset({"_count", "_sort", "_include", "_revinclude", "_summary", "_total", "_cursor"})
#: accepted and ignored (json is the only format the server speaks)
IGNORED_PARAMS = frozenset({"_format", "_pretty"})

Prefix = Literal["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb"]


class SearchError(ValueError):
    """A search the server cannot answer: 400 OperationOutcome naming ``expression``."""

    def __init__(self, message: str, *, expression: str | None = None, code: str = "invalid"):
        super().__init__(message)
        self.expression = expression
        self.code = code


@dataclass(frozen=True)
class TokenValue:
    #: None: any system; "": no system (``|code``)
    system: str | None
    #: None: any code of the system (``system|``)
    code: str | None


@dataclass(frozen=True)
class DateValue:
    prefix: Prefix
    start: datetime
    end: datetime


@dataclass(frozen=True)
class StringValue:
    mode: Literal["start", "exact", "contains"]
    text: str


@dataclass(frozen=True)
class ReferenceValue:
    target_type: str | None
    target_id: str


@dataclass(frozen=True)
class Clause:
    """One parameter occurrence: the resource matches when any of ``values`` matches."""

    #: "_id", "_lastUpdated" or a parameter of ``SEARCH_PARAMS[type]``
    param: str
    kind: Literal["id", "last_updated", "token", "reference", "date", "string"]
    values: tuple[TokenValue | DateValue | StringValue | ReferenceValue | str, ...]


#: an AND of clauses; an access rule is an OR of these
Conjunction = tuple[Clause, ...]


@dataclass(frozen=True)
class Include:
    source_type: str
    param: str
    target_type: str | None = None

    def text(self) -> str:
        return f"{self.source_type}:{self.param}" + (f":{self.target_type}" if self.target_type else "")


@dataclass(frozen=True)
class Sort:
    #: "_id" (the default, stable under writes), "_lastUpdated" or a date parameter of the type
    key: str = "_id"
    descending: bool = False


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: after (``sort_value``, ``pk``); ``high_water`` fixes the result set to
    resources that existed when the first page was served (new resources do not shift the pages)."""

    pk: int
    sort_value: str | None
    high_water: int
    query_hash: str
    total: int | None = None


@dataclass(frozen=True)
class SearchRequest:
    resource_type: str
    clauses: Conjunction = ()
    count: int = DEFAULT_COUNT
    sort: Sort = field(default_factory=Sort)
    includes: tuple[Include, ...] = ()
    revincludes: tuple[Include, ...] = ()
    summary_count: bool = False
    total: Literal["none", "accurate", "estimate"] = "none"
    cursor: Cursor | None = None
    #: the parameters applied, for ``Bundle.link[self]`` and the next link (cursor excluded)
    applied: tuple[tuple[str, str], ...] = ()
    #: parameters the server ignored (lenient handling), reported in an OperationOutcome entry
    ignored: tuple[str, ...] = ()

    def query_hash(self) -> str:
        return hashlib.sha256(orjson.dumps([self.resource_type, *self.applied])).hexdigest()[:16]


def parse_search(
    resource_type: str, params: Sequence[tuple[str, str]], *, strict: bool = False
) -> SearchRequest:
    """The search ``params`` ask for on ``resource_type``; unknown parameters raise when ``strict``,
    else they are ignored and listed in ``ignored``."""
    known = SEARCH_PARAMS.get(resource_type, {})
    clauses: list[Clause] = []
    applied: list[tuple[str, str]] = []
    ignored: list[str] = []
    count = DEFAULT_COUNT
    sort = Sort()
    includes: list[Include] = []
    revincludes: list[Include] = []
    summary_count = False
    total: Literal["none", "accurate", "estimate"] = "none"
    cursor_text: str | None = None
    for name, value in params:
        base, _, modifier = name.partition(":")
        if name in IGNORED_PARAMS:
            continue
        if name == "_cursor":
            cursor_text = value
            continue
        if name == "_count":
            count = _count(value)
        elif name == "_sort":
            sort = _sort(resource_type, value)
        elif name == "_include":
            includes.extend(_include(resource_type, value, name))
        elif name == "_revinclude":
            revincludes.extend(_include(None, value, name))
        elif name == "_summary":
            if value == "count":
                summary_count = True
            elif value != "false":
                _unsupported(name, f"_summary={value} is not supported (count, false)", strict, ignored)
                continue
        elif name == "_total":
            if value not in ("none", "accurate", "estimate"):
                raise SearchError(
                    f"_total must be none, accurate or estimate, not {value!r}", expression=name
                )
            total = value  # type: ignore[assignment]
        elif base == "_id" and not modifier:
            clauses.append(Clause("_id", "id", tuple(_split(value, name))))
        elif base == "_lastUpdated" and not modifier:
            clauses.append(Clause("_lastUpdated", "last_updated", tuple(_dates(value, name))))
        elif base in known:
            clause = _clause(base, modifier, value, known[base], name, strict, ignored)
            if clause is None:
                continue
            clauses.append(clause)
        else:
            _unsupported(name, f"unknown search parameter {name!r} for {resource_type}", strict, ignored)
            continue
        applied.append((name, value))
    request = SearchRequest(
        resource_type=resource_type,
        clauses=tuple(clauses),
        count=count,
        sort=sort,
        includes=tuple(includes),
        revincludes=tuple(revincludes),
        summary_count=summary_count,
        total=total,
        applied=tuple(applied),
        ignored=tuple(ignored),
    )
    if cursor_text is not None:
        cursor = decode_cursor(cursor_text)
        if cursor.query_hash != request.query_hash():
            raise SearchError("the paging cursor belongs to a different search", expression="_cursor")
        request = SearchRequest(**{**request.__dict__, "cursor": cursor})
    return request


def constraint_clauses(resource_type: str, query: Iterable[tuple[str, str]]) -> Conjunction:
    """A SMART scope's query constraint (``?category=vital-signs``) as clauses; an unanswerable one raises."""
    return parse_search(resource_type, list(query), strict=True).clauses


def _unsupported(name: str, message: str, strict: bool, ignored: list[str]) -> None:
    if strict:
        raise SearchError(message, expression=name, code="not-supported")
    ignored.append(name)


def _split(value: str, name: str) -> list[str]:
    parts = [part for part in _split_escaped(value) if part]
    if not parts:
        raise SearchError(f"{name} needs a value", expression=name)
    return parts


def _split_escaped(value: str) -> list[str]:
    """Splits on commas not escaped as ``\\,`` (R4 search §escaping)."""
    parts, current, escaped = [], [], False
    for char in value:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _count(value: str) -> int:
    try:
        count = int(value)
    except ValueError:
        raise SearchError(f"_count must be an integer, not {value!r}", expression="_count") from None
    if count < 0:
        raise SearchError("_count must not be negative", expression="_count")
    return min(count, MAX_COUNT)


def sort_keys(resource_type: str) -> tuple[str, ...]:
    dates = [p for p, spec in SEARCH_PARAMS.get(resource_type, {}).items() if spec.type == "date"]
    return ("_id", "_lastUpdated", *dates)


def _sort(resource_type: str, value: str) -> Sort:
    keys = [k for k in value.split(",") if k]
    if len(keys) != 1:
        raise SearchError("_sort takes one key (with a '-' for descending)", expression="_sort")
    key = keys[0]
    descending = key.startswith("-")
    key = key.lstrip("-")
    if key not in sort_keys(resource_type):
        raise SearchError(
            f"cannot sort {resource_type} by {key!r}; sort keys: {', '.join(sort_keys(resource_type))}",
            expression="_sort",
            code="not-supported",
        )
    return Sort(key, descending)


def _include(resource_type: str | None, value: str, name: str) -> list[Include]:
    parts = value.split(":")
    if value == "*" and resource_type is not None:
        return [
            Include(resource_type, p)
            for p, spec in SEARCH_PARAMS.get(resource_type, {}).items()
            if spec.type == "reference"
        ]
    if len(parts) not in (2, 3):
        raise SearchError(f"{name} takes Type:param[:TargetType], not {value!r}", expression=name)
    source, param = parts[0], parts[1]
    target = parts[2] if len(parts) == 3 else None
    if resource_type is not None and source != resource_type:
        raise SearchError(f"{name}={value} does not start with {resource_type}", expression=name)
    spec = SEARCH_PARAMS.get(source, {}).get(param)
    if spec is None or spec.type != "reference":
        raise SearchError(
            f"{source} has no reference parameter {param!r}", expression=name, code="not-supported"
        )
    return [Include(source, param, target)]


def _clause(
    param: str, modifier: str, value: str, spec: SearchParam, name: str, strict: bool, ignored: list[str]
) -> Clause | None:
    type_ = spec.type
    if type_ == "token":
        if modifier:
            _unsupported(name, f"modifier :{modifier} is not supported on {param}", strict, ignored)
            return None
        return Clause(param, "token", tuple(_token(v) for v in _split(value, name)))
    if type_ == "reference":
        if modifier and not modifier[:1].isupper():
            _unsupported(name, f"modifier :{modifier} is not supported on {param}", strict, ignored)
            return None
        # a bare id takes the modifier's type, else the parameter's only target (patient -> Patient)
        target = modifier or spec.target
        return Clause(param, "reference", tuple(_reference(v, target) for v in _split(value, name)))
    if type_ == "date":
        if modifier:
            _unsupported(name, f"modifier :{modifier} is not supported on {param}", strict, ignored)
            return None
        return Clause(param, "date", tuple(_dates(value, name)))
    if modifier not in ("", "exact", "contains"):
        _unsupported(name, f"modifier :{modifier} is not supported on {param}", strict, ignored)
        return None
    mode: Literal["start", "exact", "contains"] = modifier or "start"  # type: ignore[assignment]
    values = [StringValue(mode, normalize_string(v)) for v in _split(value, name)]
    return Clause(param, "string", tuple(v for v in values if v.text) or (StringValue(mode, ""),))


def _token(text: str) -> TokenValue:
    if "|" not in text:
        return TokenValue(None, text)
    system, _, code = text.partition("|")
    return TokenValue(system, code or None)


def _reference(text: str, target_type: str | None) -> ReferenceValue:
    parts = text.split("/_history/")[0].rstrip("/").split("/")
    if len(parts) >= 2:
        return ReferenceValue(parts[-2], parts[-1])
    return ReferenceValue(target_type, parts[0])


def _dates(value: str, name: str) -> list[DateValue]:
    out = []
    for text in _split(value, name):
        prefix: Prefix = "eq"
        if text[:2] in DATE_PREFIXES:
            prefix, text = text[:2], text[2:]  # type: ignore[assignment]
        try:
            start, end = parse_date_range(text)
        except ValueError:
            raise SearchError(f"{name}: {text!r} is not a FHIR date or dateTime", expression=name) from None
        out.append(DateValue(prefix, start, end))
    return out


# --- cursors ------------------------------------------------------------------------------------------


def encode_cursor(cursor: Cursor) -> str:
    data = [cursor.pk, cursor.sort_value, cursor.high_water, cursor.query_hash, cursor.total]
    return base64.urlsafe_b64encode(orjson.dumps(data)).decode().rstrip("=")


def decode_cursor(text: str) -> Cursor:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        pk, sort_value, high_water, query_hash, total = data
        if not (
            isinstance(pk, int)
            and isinstance(high_water, int)
            and isinstance(query_hash, str)
            and (sort_value is None or isinstance(sort_value, str))
            and (total is None or isinstance(total, int))
        ):
            raise TypeError
    except (binascii.Error, orjson.JSONDecodeError, TypeError, ValueError):
        raise SearchError("the paging cursor is not valid", expression="_cursor") from None
    return Cursor(pk, sort_value, high_water, query_hash, total)
