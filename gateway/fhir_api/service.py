"""FHIR R4 interactions (http://hl7.org/fhir/R4/http.html): read, vread, history, search, $everything.

Each function is one use case: it takes a read session, the caller's :class:`FhirAccess` and the request's
parameters, asks the search index (``gateway.db.repositories.fhir_search``) and returns stored bytes: a
:class:`Body` for one resource, a :class:`gateway.fhir_api.bundles.Bundle` for a set. Every query is bounded
by the access rule of the type it touches, the included and revincluded ones too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from gateway.core.errors import FhirError, bad_request, gone, not_found
from gateway.db.engine import Session
from gateway.db.repositories import fhir_search as repo
from gateway.fhir_api import definitions
from gateway.fhir_api.access import FhirAccess, compartment_clause
from gateway.fhir_api.bundles import Bundle, Entry, match, outcome_entry
from gateway.fhir_api.read_cache import ReadCache, read_dependency, read_key, type_dependencies
from gateway.store.search_index import parse_date_range
from gateway.store.search_params import SEARCH_PARAMS
from gateway.store.search_query import (
    DEFAULT_COUNT,
    MAX_COUNT,
    Clause,
    Cursor,
    DateValue,
    Include,
    SearchError,
    SearchRequest,
    Sort,
    decode_cursor,
    encode_cursor,
    parse_search,
)

#: types whose resources live in the store (search index) / in memory (definitions)
STORED_TYPES = tuple(sorted(SEARCH_PARAMS.keys() - set(definitions.DEFINITION_TYPES)))
SUPPORTED_TYPES = tuple(sorted({*STORED_TYPES, *definitions.DEFINITION_TYPES}))
#: $everything: the Patient first, then its compartment; Provenance comes with each page (revinclude)
EVERYTHING_TYPES = (
    "Patient",
    *sorted(t for t in STORED_TYPES if t not in ("Patient", "Provenance") and compartment_clause(t, "x")),
)
#: types a compartment resource points at that $everything adds (they are shared, not in the compartment)
EVERYTHING_REFERENCED = ("Practitioner", "Organization")
PROVENANCE_TARGET = Include("Provenance", "target")
#: search pages of at most this many entries are kept in the read cache (larger ones are streamed)
CACHED_SEARCH_ENTRIES = 100


@dataclass(frozen=True)
class Body:
    content: bytes
    version_id: int
    last_updated: datetime


def search_error(error: SearchError) -> FhirError:
    return FhirError(400, error.code, str(error), expression=[error.expression] if error.expression else [])


def check_type(resource_type: str) -> None:
    if resource_type not in SUPPORTED_TYPES:
        raise FhirError(
            400,
            "not-supported",
            f"resource type {resource_type!r} is not supported here",
            expression=["type"] if resource_type[:1].isupper() else [],
        )


def _url(base: str, path: str, params: Sequence[tuple[str, str]] = ()) -> str:
    return f"{base}/{path}" + (f"?{urlencode(list(params))}" if params else "")


# --- read, vread ------------------------------------------------------------------------------------------


def _current_row(session: Session, resource_type: str, resource_id: str, cache: ReadCache | None) -> Any:
    """The current row: from the read cache, or from the database (and then kept in the cache when no
    change raced the query)."""
    if cache is not None and (cached := cache.get(read_key(resource_type, resource_id))) is not None:
        return cached
    snapshot = cache.snapshot() if cache is not None else None
    row = repo.current_row(session, resource_type=resource_type, resource_id=resource_id)
    if cache is not None and row is not None:
        cache.put(
            read_key(resource_type, resource_id),
            row,
            len(row.content),
            read_dependency(resource_type, resource_id),
            snapshot,
        )
    return row


def _accessible_row(
    session: Session,
    access: FhirAccess,
    resource_type: str,
    resource_id: str,
    cache: ReadCache | None = None,
) -> Any:
    """The current row when the caller may read it (a deleted one too); 404 otherwise, 403 for the type."""
    rule = access.require(resource_type, "r")
    row = _current_row(session, resource_type, resource_id, cache)
    if row is None or row.clinic_pk not in access.clinic_pks:
        raise not_found(resource_type, resource_id)
    if rule == [()]:
        return row
    if row.deleted:  # a deleted resource has left the index, so constraints cannot be checked
        raise not_found(resource_type, resource_id)
    visible = repo.search_page(
        session,
        resource_type=resource_type,
        clinic_pks=access.clinic_pks,
        clauses=(),
        access=rule,
        sort=Sort(),
        after=None,
        limit=1,
        high_water=None,
        pks=[row.id],
    )
    if not visible:
        raise not_found(resource_type, resource_id)
    return row


def read_resource(
    session: Session,
    access: FhirAccess,
    resource_type: str,
    resource_id: str,
    cache: ReadCache | None = None,
) -> Body:
    check_type(resource_type)
    if resource_type in definitions.DEFINITION_TYPES:
        found = definitions.find(resource_type, resource_id)
        if found is None:
            raise not_found(resource_type, resource_id)
        return Body(found.content, 1, definitions.PUBLISHED)
    row = _accessible_row(session, access, resource_type, resource_id, cache)
    if row.deleted:
        raise gone(resource_type, resource_id)
    return Body(row.content, row.version_id, row.last_updated)


def read_cached(cache: ReadCache, access: FhirAccess, resource_type: str, resource_id: str) -> Body | None:
    """``read`` answered from the read cache, or None (ask the database: not cached, or a token whose
    scopes constrain the type, which only the search index can check). The same answers as
    :func:`read_resource`: 403 outside the scopes, 404 outside the token's clinics, 410 when deleted."""
    if resource_type not in STORED_TYPES or access.require(resource_type, "r") != [()]:
        return None
    row = cache.get(read_key(resource_type, resource_id), count_miss=False)  # the route asks again
    if row is None:
        return None
    if row.clinic_pk not in access.clinic_pks:
        raise not_found(resource_type, resource_id)
    if row.deleted:
        raise gone(resource_type, resource_id)
    return Body(row.content, row.version_id, row.last_updated)


def vread_resource(
    session: Session, access: FhirAccess, resource_type: str, resource_id: str, version: str
) -> Body:
    check_type(resource_type)
    if not version.isdigit():
        raise not_found(resource_type, f"{resource_id}/_history/{version}")
    if resource_type in definitions.DEFINITION_TYPES:
        if version != "1":
            raise not_found(resource_type, f"{resource_id}/_history/{version}")
        return read_resource(session, access, resource_type, resource_id)
    row = _accessible_row(session, access, resource_type, resource_id)
    found = repo.version_row(session, resource_pk=row.id, version_id=int(version))
    if found is None:
        raise not_found(resource_type, f"{resource_id}/_history/{version}")
    if found.deleted:
        raise gone(resource_type, f"{resource_id}/_history/{version}")
    return Body(found.content, found.version_id, found.last_updated)


# --- history ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PagingParams:
    """The paging parameters of history and ``$everything`` (``_since``, ``_count``, ``_cursor``)."""

    since: datetime | None
    count: int
    cursor: Cursor | None
    #: the parameters applied, in the request's order (for the ``self`` and ``next`` links)
    applied: tuple[tuple[str, str], ...]
    #: the values of the operation's own parameters (``also``), in the request's order
    own: tuple[tuple[str, str], ...] = ()


def parse_paging(
    params: Sequence[tuple[str, str]],
    *,
    operation: str,
    strict: bool,
    also: frozenset[str] = frozenset(),
    min_count: int = 0,
) -> PagingParams:
    """``_since`` (an instant), ``_count`` (``min_count`` .. ``MAX_COUNT``), ``_cursor``, plus the names in
    ``also`` (kept in ``own`` for the caller); ``_format``/``_pretty`` are ignored, anything else is
    ignored or, with ``strict``, a 400 naming ``operation``."""
    since, count, cursor = None, DEFAULT_COUNT, None
    applied: list[tuple[str, str]] = []
    own: list[tuple[str, str]] = []
    for name, value in params:
        if name == "_since":
            try:
                since = parse_date_range(value)[0]
            except ValueError:
                raise bad_request(f"_since: {value!r} is not a FHIR instant", expression=["_since"]) from None
        elif name == "_count":
            if not value.isdigit():
                raise bad_request("_count must be a non-negative integer", expression=["_count"])
            count = max(min_count, min(int(value), MAX_COUNT))
        elif name == "_cursor":
            try:
                cursor = decode_cursor(value)
            except SearchError as error:
                raise search_error(error) from None
            continue
        elif name in ("_format", "_pretty"):
            continue
        elif name in also:
            own.append((name, value))
        elif strict:
            raise FhirError(400, "not-supported", f"{operation} does not support {name!r}", expression=[name])
        else:
            continue
        applied.append((name, value))
    return PagingParams(since, count, cursor, tuple(applied), tuple(own))


def paging_links(
    base: str, path: str, applied: Sequence[tuple[str, str]], next_cursor: Cursor | None
) -> list[tuple[str, str]]:
    """``self``, and ``next`` with the cursor when there is a next page."""
    links = [("self", _url(base, path, applied))]
    if next_cursor is not None:
        links.append(("next", _url(base, path, [*applied, ("_cursor", encode_cursor(next_cursor))])))
    return links


def _history_entry(base: str, resource_type: str, resource_id: str, row: Any) -> Entry:
    url = f"{resource_type}/{resource_id}"
    modified = row.last_updated.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if row.deleted:
        request = {"method": "DELETE", "url": url}
        response = {"status": "204 No Content", "etag": f'W/"{row.version_id}"', "lastModified": modified}
        return Entry(f"{base}/{url}", None, {"request": request, "response": response})
    method, status = ("POST", "201 Created") if row.version_id == 1 else ("PUT", "200 OK")
    request = {"method": method, "url": resource_type if method == "POST" else url}
    response = {"status": status, "etag": f'W/"{row.version_id}"', "lastModified": modified}
    return Entry(f"{base}/{url}", row.content, {"request": request, "response": response})


def instance_history(
    session: Session,
    access: FhirAccess,
    base: str,
    resource_type: str,
    resource_id: str,
    params: Sequence[tuple[str, str]],
    *,
    strict: bool,
) -> Bundle:
    check_type(resource_type)
    query = parse_paging(params, operation="history", strict=strict)
    path = f"{resource_type}/{resource_id}/_history"
    if resource_type in definitions.DEFINITION_TYPES:
        body = read_resource(session, access, resource_type, resource_id)
        row = _DefinitionVersion(body.content, 1, body.last_updated, False)
        return Bundle(
            "history",
            [_history_entry(base, resource_type, resource_id, row)],
            [("self", _url(base, path))],
            1,
        )
    current = _accessible_row(session, access, resource_type, resource_id)
    before = query.cursor.pk if query.cursor else None
    rows = repo.instance_history(
        session, resource_pk=current.id, since=query.since, before_version=before, limit=query.count + 1
    )
    next_cursor = None
    if len(rows) > query.count:
        rows = rows[: query.count]
        next_cursor = Cursor(rows[-1].version_id, None, current.version_id, "history")
    entries = [_history_entry(base, resource_type, resource_id, row) for row in rows]
    return Bundle("history", entries, paging_links(base, path, query.applied, next_cursor))


@dataclass(frozen=True)
class _DefinitionVersion:
    content: bytes
    version_id: int
    last_updated: datetime
    deleted: bool


def type_history(
    session: Session,
    access: FhirAccess,
    base: str,
    resource_type: str,
    params: Sequence[tuple[str, str]],
    *,
    strict: bool,
) -> Bundle:
    check_type(resource_type)
    query = parse_paging(params, operation="history", strict=strict)
    path = f"{resource_type}/_history"
    if resource_type in definitions.DEFINITION_TYPES:
        found = definitions.search(resource_type, [])
        entries = [
            _history_entry(
                base,
                resource_type,
                d.resource_id,
                _DefinitionVersion(d.content, 1, definitions.PUBLISHED, False),
            )
            for d in found
            if query.since is None or query.since <= definitions.PUBLISHED
        ]
        return Bundle("history", entries, [("self", _url(base, path, query.applied))])
    rule = access.require(resource_type, "r")
    high_water = query.cursor.high_water if query.cursor else repo.version_high_water(session)
    rows = repo.type_history(
        session,
        resource_type=resource_type,
        clinic_pks=access.clinic_pks,
        access=rule,
        since=query.since,
        before=query.cursor.pk if query.cursor else None,
        high_water=high_water,
        limit=query.count + 1,
    )
    next_cursor = None
    if len(rows) > query.count:
        rows = rows[: query.count]
        next_cursor = Cursor(rows[-1].id, None, high_water, "history")
    entries = [_history_entry(base, r.resource_type, r.resource_id, r) for r in rows]
    return Bundle("history", entries, paging_links(base, path, query.applied, next_cursor))


# --- search -----------------------------------------------------------------------------------------------


def parse(resource_type: str, params: Sequence[tuple[str, str]], *, strict: bool) -> SearchRequest:
    try:
        return parse_search(resource_type, params, strict=strict)
    except SearchError as error:
        raise search_error(error) from None


def search_key(
    resource_type: str, params: Sequence[tuple[str, str]], strict: bool, access: FhirAccess
) -> tuple[Any, ...]:
    """What a search's answer depends on besides the data: the request and what the token may see."""
    return (
        "search",
        resource_type,
        tuple(params),
        strict,
        access.clinic_pks,
        access.scopes,
        access.patient_id,
    )


def search_cached(
    cache: ReadCache,
    access: FhirAccess,
    resource_type: str,
    params: Sequence[tuple[str, str]],
    *,
    strict: bool,
    count_miss: bool = True,
) -> bytes | None:
    """A search's Bundle from the read cache (kept by :func:`search_type` for the same request and token
    grants), or None."""
    if resource_type not in STORED_TYPES:
        return None
    key = search_key(resource_type, params, strict, access)
    found: bytes | None = cache.get(key, count_miss=count_miss)
    return found


def search_type(
    session: Session,
    access: FhirAccess,
    base: str,
    resource_type: str,
    params: Sequence[tuple[str, str]],
    *,
    strict: bool,
    cache: ReadCache | None = None,
) -> Bundle:
    check_type(resource_type)
    if resource_type in definitions.DEFINITION_TYPES:
        return _search_definitions(base, resource_type, params, strict=strict)
    snapshot = cache.snapshot() if cache is not None else None
    rule = access.require(resource_type, "s")
    if cache is not None and (body := search_cached(cache, access, resource_type, params, strict=strict)):
        return Bundle.of_body(body)  # the middleware missed it only because the token was not cached
    request = parse(resource_type, params, strict=strict)
    cursor = request.cursor
    high_water = cursor.high_water if cursor else None  # a first page learns it with its rows
    total = cursor.total if cursor else None
    if total is None and (request.summary_count or request.total != "none" or request.count == 0):
        total = repo.count_matches(
            session,
            resource_type=resource_type,
            clinic_pks=access.clinic_pks,
            clauses=request.clauses,
            access=rule,
            high_water=high_water,
        )
    if request.summary_count or request.count == 0:
        return Bundle("searchset", [], paging_links(base, resource_type, request.applied, None), total)
    rows = repo.search_page(
        session,
        resource_type=resource_type,
        clinic_pks=access.clinic_pks,
        clauses=request.clauses,
        access=rule,
        sort=request.sort,
        after=cursor,
        limit=request.count + 1,
        high_water=high_water,
        with_high_water=cursor is None,
    )
    next_cursor = None
    if len(rows) > request.count:
        high_water = rows[0].high_water if cursor is None else high_water
        rows = rows[: request.count]
        last = rows[-1]
        sort_value = last.sort_value.isoformat() if isinstance(last.sort_value, datetime) else None
        next_cursor = Cursor(last.id, sort_value, int(high_water or 0), request.query_hash(), total)
    links = paging_links(base, resource_type, request.applied, next_cursor)
    entries = [match(f"{base}/{r.resource_type}/{r.resource_id}", r.content) for r in rows]
    entries += _included(session, access, base, rows, request.includes, request.revincludes)
    if request.ignored:
        entries.append(outcome_entry(f"parameters not supported and ignored: {', '.join(request.ignored)}"))
    bundle = Bundle("searchset", entries, links, total)
    if cache is not None and snapshot is not None and len(entries) <= CACHED_SEARCH_ENTRIES:
        touched = [
            resource_type,
            *(include.target_type for include in request.includes),
            *(include.source_type for include in request.revincludes),
        ]
        body = bundle.body()
        key = search_key(resource_type, params, strict, access)
        cache.put(key, body, len(body), type_dependencies(touched), snapshot)
    return bundle


def _load(
    session: Session,
    access: FhirAccess,
    resource_type: str,
    *,
    ids: Sequence[str] = (),
    pks: Sequence[int] = (),
) -> list[Any]:
    """Resources of one type by id or pk, as far as the caller may read them."""
    if resource_type not in STORED_TYPES or not (ids or pks):
        return []
    rule = access.rule(resource_type, "r")
    if not rule:
        return []
    return repo.search_page(
        session,
        resource_type=resource_type,
        clinic_pks=access.clinic_pks,
        clauses=(Clause("_id", "id", tuple(ids)),) if ids else (),
        access=rule,
        sort=Sort(),
        after=None,
        limit=len(ids) or len(pks),
        high_water=None,
        pks=list(pks) if pks else None,
    )


def _load_keys(session: Session, access: FhirAccess, keys: Sequence[tuple[str, str]]) -> list[Any]:
    by_type: dict[str, list[str]] = {}
    for resource_type, resource_id in keys:
        by_type.setdefault(resource_type, []).append(resource_id)
    rows: list[Any] = []
    for resource_type, ids in sorted(by_type.items()):
        rows.extend(_load(session, access, resource_type, ids=ids))
    return rows


def _included(
    session: Session,
    access: FhirAccess,
    base: str,
    rows: Sequence[Any],
    includes: Sequence[Include],
    revincludes: Sequence[Include],
) -> list[Entry]:
    if not rows:
        return []
    seen = {r.id for r in rows}
    found: list[Any] = []
    pks = [r.id for r in rows]
    for include in includes:
        found.extend(_load_keys(session, access, repo.referenced_keys(session, pks=pks, include=include)))
    keys = [(r.resource_type, r.resource_id) for r in rows]
    for include in revincludes:
        referencing = repo.referencing_pks(session, keys=keys, include=include)
        found.extend(_load(session, access, include.source_type, pks=referencing))
    entries = []
    for row in found:
        if row.id not in seen:
            seen.add(row.id)
            entries.append(match(f"{base}/{row.resource_type}/{row.resource_id}", row.content, "include"))
    return entries


def _search_definitions(
    base: str, resource_type: str, params: Sequence[tuple[str, str]], *, strict: bool
) -> Bundle:
    applied, ignored, count = [], [], DEFAULT_COUNT
    summary_count = False
    for name, value in params:
        if name in definitions.DEFINITION_SEARCH_PARAMS:
            applied.append((name, value))
        elif name == "_count" and value.isdigit():
            count = min(int(value), MAX_COUNT)
        elif name == "_summary" and value == "count":
            summary_count = True
        elif name in ("_format", "_pretty", "_total"):
            continue
        elif strict:
            raise FhirError(
                400, "not-supported", f"{resource_type} does not support {name!r}", expression=[name]
            )
        else:
            ignored.append(name)
    found = definitions.search(resource_type, applied)
    links = [("self", _url(base, resource_type, applied))]
    if summary_count:
        return Bundle("searchset", [], links, len(found))
    entries = [match(f"{base}/{d.resource_type}/{d.resource_id}", d.content) for d in found[:count]]
    if ignored:
        entries.append(outcome_entry(f"parameters not supported and ignored: {', '.join(ignored)}"))
    return Bundle("searchset", entries, links, len(found))


# --- Patient/$everything ----------------------------------------------------------------------------------


def patient_everything(
    session: Session,
    access: FhirAccess,
    base: str,
    patient_id: str,
    params: Sequence[tuple[str, str]],
    *,
    strict: bool,
) -> Bundle:
    """The patient's compartment (http://hl7.org/fhir/R4/patient-operation-everything.html), one type after
    the other in ``EVERYTHING_TYPES`` order, keyset-paged; each page adds the Provenance of its resources
    and the Practitioners and Organizations they reference."""
    patient = _accessible_row(session, access, "Patient", patient_id)
    if patient.deleted:
        raise gone("Patient", patient_id)
    query = parse_paging(
        params, operation="$everything", strict=strict, also=frozenset({"_type"}), min_count=1
    )
    since, count, cursor = query.since, query.count, query.cursor
    types = list(EVERYTHING_TYPES)
    referenced_types = list(EVERYTHING_REFERENCED)
    for _name, value in query.own:  # _type
        wanted = {t for t in value.split(",") if t}
        unknown = wanted - set(EVERYTHING_TYPES) - {"Provenance", *EVERYTHING_REFERENCED}
        if unknown and strict:
            raise FhirError(
                400,
                "not-supported",
                f"_type: not in the compartment: {', '.join(sorted(unknown))}",
                expression=["_type"],
            )
        types = [t for t in types if t in wanted]
        referenced_types = [t for t in referenced_types if t in wanted]
        if "Provenance" not in wanted:
            types.append("-Provenance")
    with_provenance = "-Provenance" not in types
    types = [t for t in types if not t.startswith("-")]
    high_water = cursor.high_water if cursor else repo.high_water(session)
    start_type = int(cursor.sort_value or 0) if cursor else 0
    after_pk = cursor.pk if cursor else 0
    rows: list[Any] = []
    next_cursor: Cursor | None = None
    for position in range(start_type, len(types)):
        resource_type = types[position]
        rule = access.rule(resource_type, "r")
        if not rule:
            continue
        clause = compartment_clause(resource_type, patient_id)
        assert clause is not None
        clauses = [clause]
        if since is not None:
            clauses.append(Clause("_lastUpdated", "last_updated", (DateValue("ge", since, since),)))
        room = count - len(rows)
        found = repo.search_page(
            session,
            resource_type=resource_type,
            clinic_pks=access.clinic_pks,
            clauses=clauses,
            access=rule,
            sort=Sort(),
            after=Cursor(after_pk, None, high_water, "") if position == start_type and after_pk else None,
            limit=room + 1,
            high_water=high_water,
        )
        if len(found) > room:
            rows.extend(found[:room])
            next_cursor = Cursor(rows[-1].id, str(position), high_water, "everything")
            break
        rows.extend(found)
        if len(rows) == count and position + 1 < len(types):
            next_cursor = Cursor(0, str(position + 1), high_water, "everything")
            break
    links = paging_links(base, f"Patient/{patient_id}/$everything", query.applied, next_cursor)
    entries = [match(f"{base}/{r.resource_type}/{r.resource_id}", r.content) for r in rows]
    seen = {r.id for r in rows}
    extra: list[Any] = []
    pks = [r.id for r in rows]
    if referenced_types:
        referenced = repo.referenced_by_compartment(session, pks=pks, target_types=referenced_types)
        extra.extend(_load_keys(session, access, referenced))
    if with_provenance:
        keys = [(r.resource_type, r.resource_id) for r in rows]
        extra.extend(
            _load(
                session,
                access,
                "Provenance",
                pks=repo.referencing_pks(session, keys=keys, include=PROVENANCE_TARGET),
            )
        )
    for row in extra:
        if row.id not in seen:
            seen.add(row.id)
            entries.append(match(f"{base}/{row.resource_type}/{row.resource_id}", row.content, "include"))
    return Bundle("searchset", entries, links)
