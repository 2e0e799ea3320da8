"""Queries of the FHIR server: searches answered from the search-index tables, keyset pages, history.

Every clause of a :class:`gateway.store.search_query.SearchRequest` becomes a semi-join on one index
table (``resource.id IN (SELECT resource_pk FROM search_<kind> WHERE ...)``); stored JSON is only ever
returned, never inspected. Pages are keyset pages over ``(sort value, resource.id)``, bounded above by a
high-water ``resource.id`` so resources created while a client pages do not shift the pages.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Result,
    Row,
    and_,
    bindparam,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlmodel import Session

from gateway.db.repositories.resources import INDEX_TABLES, RESOURCE, VERSION
from gateway.db.tables import UtcDateTime
from gateway.store.search_query import (
    Clause,
    Conjunction,
    Cursor,
    DateValue,
    Include,
    ReferenceValue,
    Sort,
    StringValue,
    TokenValue,
)

R = RESOURCE
V = VERSION
TOKEN = INDEX_TABLES["token"]
REFERENCE = INDEX_TABLES["reference"]
DATE = INDEX_TABLES["date"]
STRING = INDEX_TABLES["string"]

#: sort value of a resource without the sorted date (first ascending, last descending)
EARLIEST = datetime(1, 1, 1, tzinfo=UTC)

#: an access rule: OR of conjunctions; ``[()]`` = unconstrained
Access = Sequence[Conjunction]
#: the largest ``resource.id`` a statement sees (built once: an alias copies every column of the table)
_NEWEST = R.alias("newest")
HIGH_WATER = select(func.max(_NEWEST.c.id)).scalar_subquery().label("high_water")


def _all(result: Result[Any]) -> list[Row[Any]]:
    """Every row in one driver call (iterating fetches row by row: a call and a check per row)."""
    return cast(list[Row[Any]], result.all())


def high_water(session: Session) -> int:
    value = session.connection().execute(select(func.max(R.c.id))).scalar()
    return int(value or 0)


def _date_match(start: Any, end: Any, value: DateValue) -> ColumnElement[bool]:
    """R4 date prefixes: the resource's range [start, end] against the value's range (search.html#prefix)."""
    a, b = value.start, value.end
    contained = and_(start >= a, end <= b)
    match value.prefix:
        case "eq":
            return contained
        case "ne":
            return not_(contained)
        case "gt":
            return end > b
        case "lt":
            return start < a
        case "ge":
            return or_(end > b, contained)
        case "le":
            return or_(start < a, contained)
        case "sa":
            return start > b
        case _:  # "eb"
            return end < a


def _token_match(value: TokenValue) -> ColumnElement[bool]:
    parts: list[ColumnElement[bool]] = []
    if value.code is not None:
        parts.append(TOKEN.c.code == value.code)
    if value.system == "":
        parts.append(TOKEN.c.system.is_(None))
    elif value.system is not None:
        parts.append(TOKEN.c.system == value.system)
    return and_(true(), *parts)


def _string_match(value: StringValue) -> ColumnElement[bool]:
    if value.mode == "exact":
        return STRING.c.value == value.text
    escaped = value.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%" if value.mode == "contains" else f"{escaped}%"
    return STRING.c.value.like(pattern, escape="\\")


def _reference_match(value: ReferenceValue) -> ColumnElement[bool]:
    match = REFERENCE.c.target_id == value.target_id
    if value.target_type is not None:
        match = and_(match, REFERENCE.c.target_type == value.target_type)
    return match


def clause_filter(resource_type: str, clause: Clause) -> ColumnElement[bool]:
    """One clause as a condition on ``resource`` rows (an index semi-join)."""
    if clause.kind == "id":
        return R.c.resource_id.in_([str(v) for v in clause.values])
    if clause.kind == "last_updated":
        return or_(*(_date_match(R.c.last_updated, R.c.last_updated, v) for v in clause.values))  # type: ignore[arg-type]
    table = {"token": TOKEN, "reference": REFERENCE, "date": DATE, "string": STRING}[clause.kind]
    if clause.kind == "token":
        match = or_(*(_token_match(v) for v in clause.values))  # type: ignore[arg-type]
    elif clause.kind == "reference":
        match = or_(*(_reference_match(v) for v in clause.values))  # type: ignore[arg-type]
    elif clause.kind == "date":
        match = or_(*(_date_match(DATE.c.start, DATE.c.end, v) for v in clause.values))  # type: ignore[arg-type]
    else:
        match = or_(*(_string_match(v) for v in clause.values))  # type: ignore[arg-type]
    index = select(table.c.resource_pk).where(
        table.c.resource_type == resource_type, table.c.param == clause.param, match
    )
    return R.c.id.in_(index)


def _conjunction(resource_type: str, clauses: Iterable[Clause]) -> ColumnElement[bool]:
    return and_(true(), *(clause_filter(resource_type, c) for c in clauses))


def access_filter(resource_type: str, access: Access) -> ColumnElement[bool]:
    if not access:
        return false()
    if any(not conj for conj in access):
        return true()
    return or_(*(_conjunction(resource_type, conj) for conj in access))


def _sort_expression(resource_type: str, sort: Sort) -> Any:
    if sort.key == "_id":
        return None
    if sort.key == "_lastUpdated":
        return R.c.last_updated
    pick = func.max(DATE.c.end) if sort.descending else func.min(DATE.c.start)
    first = (
        select(pick)
        .where(DATE.c.resource_pk == R.c.id, DATE.c.resource_type == resource_type, DATE.c.param == sort.key)
        .scalar_subquery()
    )
    return func.coalesce(first, literal(EARLIEST, UtcDateTime()))


def _filters(
    resource_type: str,
    *,
    clinic_pks: Sequence[int],
    clauses: Sequence[Clause],
    access: Access,
    high_water: int | None,
    pks: Sequence[int] | None,
) -> list[ColumnElement[bool]]:
    filters: list[ColumnElement[bool]] = [
        R.c.resource_type == resource_type,
        R.c.clinic_pk.in_(list(clinic_pks)),
        R.c.deleted == false(),
        _conjunction(resource_type, clauses),
        access_filter(resource_type, access),
    ]
    if high_water is not None:
        filters.append(R.c.id <= high_water)
    if pks is not None:
        filters.append(R.c.id.in_(list(pks)))
    return filters


def search_page(
    session: Session,
    *,
    resource_type: str,
    clinic_pks: Sequence[int],
    clauses: Sequence[Clause],
    access: Access,
    sort: Sort,
    after: Cursor | None,
    limit: int,
    high_water: int | None,
    pks: Sequence[int] | None = None,
    with_high_water: bool = False,
) -> list[Row[Any]]:
    """Up to ``limit`` matching current resources after ``after``, in sort order; each row has ``id``,
    ``resource_type``, ``resource_id``, ``content`` and ``sort_value``;
    ``with_high_water`` adds ``high_water``, the largest ``resource.id`` the same statement saw (so a first
    page costs one round trip)."""
    if not clinic_pks:
        return []
    filters = _filters(
        resource_type, clinic_pks=clinic_pks, clauses=clauses, access=access, high_water=high_water, pks=pks
    )
    key = _sort_expression(resource_type, sort)
    columns = [R.c.id, R.c.resource_type, R.c.resource_id, R.c.content]
    if with_high_water:
        columns.append(HIGH_WATER)
    if key is None:
        query = select(*columns, literal(None).label("sort_value"))
        if after is not None:
            filters.append(R.c.id < after.pk if sort.descending else R.c.id > after.pk)
        order = [R.c.id.desc() if sort.descending else R.c.id]
    else:
        query = select(*columns, key.label("sort_value"))
        if after is not None:
            value = datetime.fromisoformat(after.sort_value) if after.sort_value else EARLIEST
            bound = literal(value, UtcDateTime())
            if sort.descending:
                filters.append(or_(key < bound, and_(key == bound, R.c.id < after.pk)))
            else:
                filters.append(or_(key > bound, and_(key == bound, R.c.id > after.pk)))
        order = [key.desc(), R.c.id.desc()] if sort.descending else [key, R.c.id]
    return _all(session.connection().execute(query.where(*filters).order_by(*order).limit(limit)))


def count_matches(
    session: Session,
    *,
    resource_type: str,
    clinic_pks: Sequence[int],
    clauses: Sequence[Clause],
    access: Access,
    high_water: int | None,
) -> int:
    if not clinic_pks:
        return 0
    filters = _filters(
        resource_type, clinic_pks=clinic_pks, clauses=clauses, access=access, high_water=high_water, pks=None
    )
    return int(
        session.connection().execute(select(func.count()).select_from(R).where(*filters)).scalar() or 0
    )


def referenced_keys(session: Session, *, pks: Sequence[int], include: Include) -> list[tuple[str, str]]:
    """The (type, id) targets of ``include`` (``Observation:patient``) from the resources ``pks``."""
    if not pks:
        return []
    query = select(REFERENCE.c.target_type, REFERENCE.c.target_id).where(
        REFERENCE.c.resource_pk.in_(list(pks)),
        REFERENCE.c.resource_type == include.source_type,
        REFERENCE.c.param == include.param,
    )
    if include.target_type:
        query = query.where(REFERENCE.c.target_type == include.target_type)
    return sorted({(r.target_type, r.target_id) for r in session.connection().execute(query.distinct())})


def referencing_pks(session: Session, *, keys: Sequence[tuple[str, str]], include: Include) -> list[int]:
    """The resources of ``include`` (``Provenance:target``) that reference any of ``keys``."""
    if not keys:
        return []
    query = select(REFERENCE.c.resource_pk).where(
        REFERENCE.c.resource_type == include.source_type,
        REFERENCE.c.param == include.param,
        REFERENCE.c.target_type.in_(sorted({k[0] for k in keys})),
        REFERENCE.c.target_id.in_(sorted({k[1] for k in keys})),
    )
    if include.target_type:
        query = query.where(REFERENCE.c.target_type == include.target_type)
    wanted = set(keys)
    rows = session.connection().execute(query.add_columns(REFERENCE.c.target_type, REFERENCE.c.target_id))
    return sorted({r.resource_pk for r in rows if (r.target_type, r.target_id) in wanted})


def referenced_by_compartment(
    session: Session, *, pks: Sequence[int], target_types: Sequence[str]
) -> list[tuple[str, str]]:
    """Every (type, id) of ``target_types`` that the resources ``pks`` reference (any parameter)."""
    if not pks:
        return []
    query = (
        select(REFERENCE.c.target_type, REFERENCE.c.target_id)
        .where(REFERENCE.c.resource_pk.in_(list(pks)), REFERENCE.c.target_type.in_(list(target_types)))
        .distinct()
    )
    return sorted({(r.target_type, r.target_id) for r in session.connection().execute(query)})


# --- read, vread, history -------------------------------------------------------------------------------


#: the read and vread statements, built once with bound parameters (their cache keys are memoized on the
#: statement objects, so a read neither builds nor keys a statement)
_CURRENT_ROW = select(
    R.c.id,
    R.c.clinic_pk,
    R.c.resource_type,
    R.c.resource_id,
    R.c.version_id,
    R.c.last_updated,
    R.c.content,
    R.c.deleted,
).where(R.c.resource_type == bindparam("resource_type"), R.c.resource_id == bindparam("resource_id"))
_VERSION_ROW = select(V.c.version_id, V.c.last_updated, V.c.content, V.c.deleted).where(
    V.c.resource_pk == bindparam("resource_pk"), V.c.version_id == bindparam("version_id")
)


def current_row(session: Session, *, resource_type: str, resource_id: str) -> Any:
    return (
        session.connection()
        .execute(_CURRENT_ROW, {"resource_type": resource_type, "resource_id": resource_id})
        .first()
    )


def version_row(session: Session, *, resource_pk: int, version_id: int) -> Any:
    return (
        session.connection()
        .execute(_VERSION_ROW, {"resource_pk": resource_pk, "version_id": version_id})
        .first()
    )


def instance_history(
    session: Session, *, resource_pk: int, since: datetime | None, before_version: int | None, limit: int
) -> list[Row[Any]]:
    query = select(V.c.id, V.c.version_id, V.c.last_updated, V.c.content, V.c.deleted).where(
        V.c.resource_pk == resource_pk
    )
    if since is not None:
        query = query.where(V.c.last_updated >= since)
    if before_version is not None:
        query = query.where(V.c.version_id < before_version)
    return _all(session.connection().execute(query.order_by(V.c.version_id.desc()).limit(limit)))


def type_history(
    session: Session,
    *,
    resource_type: str,
    clinic_pks: Sequence[int],
    access: Access,
    since: datetime | None,
    before: int | None,
    high_water: int,
    limit: int,
) -> list[Row[Any]]:
    """Versions of the type's resources, newest first (by version row id, below ``high_water``)."""
    if not clinic_pks:
        return []
    query = (
        select(
            V.c.id,
            V.c.version_id,
            V.c.last_updated,
            V.c.content,
            V.c.deleted,
            R.c.resource_type,
            R.c.resource_id,
        )
        .join(R, R.c.id == V.c.resource_pk)
        .where(
            R.c.resource_type == resource_type,
            R.c.clinic_pk.in_(list(clinic_pks)),
            access_filter(resource_type, access),
            V.c.id <= high_water,
        )
    )
    if since is not None:
        query = query.where(V.c.last_updated >= since)
    if before is not None:
        query = query.where(V.c.id < before)
    return _all(session.connection().execute(query.order_by(V.c.id.desc()).limit(limit)))


def version_high_water(session: Session) -> int:
    return int(session.connection().execute(select(func.max(V.c.id))).scalar() or 0)
