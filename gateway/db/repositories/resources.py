"""Queries of the FHIR resource store: current rows, versions, search-index rows and outbox rows.

The write path runs on SQLAlchemy Core with multi-row statements (the ORM's per-object bookkeeping would cost
more than the writes themselves); reads hand back plain rows with attribute access.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Row, delete, insert, select, update
from sqlmodel import Session

from gateway.db.tables import (
    OutboxRow,
    ResourceRow,
    ResourceVersionRow,
    SearchDateRow,
    SearchReferenceRow,
    SearchStringRow,
    SearchTokenRow,
)

RESOURCE = ResourceRow.__table__  # type: ignore[attr-defined]
VERSION = ResourceVersionRow.__table__  # type: ignore[attr-defined]
OUTBOX = OutboxRow.__table__  # type: ignore[attr-defined]

#: index kind -> table, as ``gateway.store.search_index`` names them
INDEX_TABLES: dict[str, Any] = {
    "token": SearchTokenRow.__table__,  # type: ignore[attr-defined]
    "reference": SearchReferenceRow.__table__,  # type: ignore[attr-defined]
    "date": SearchDateRow.__table__,  # type: ignore[attr-defined]
    "string": SearchStringRow.__table__,  # type: ignore[attr-defined]
}

CurrentRow = Row[Any]


def get_current(session: Session, *, resource_type: str, resource_id: str) -> CurrentRow | None:
    return (
        session.connection()
        .execute(
            select(RESOURCE).where(
                RESOURCE.c.resource_type == resource_type, RESOURCE.c.resource_id == resource_id
            )
        )
        .first()
    )


def current_by_keys(
    session: Session, *, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], CurrentRow]:
    """Current rows for (type, id) pairs, in one query."""
    wanted = set(keys)
    if not wanted:
        return {}
    rows = session.connection().execute(  # ix_resource_id: ids are uuids, so this is an index lookup
        select(RESOURCE).where(RESOURCE.c.resource_id.in_(sorted({rid for _, rid in wanted})))
    )
    return {(r.resource_type, r.resource_id): r for r in rows if (r.resource_type, r.resource_id) in wanted}


def current_for_record(session: Session, *, record_pk: int) -> list[CurrentRow]:
    return list(
        session.connection().execute(
            select(RESOURCE)
            .where(RESOURCE.c.record_pk == record_pk)
            .order_by(RESOURCE.c.resource_type, RESOURCE.c.resource_id)
        )
    )


def insert_current(session: Session, *, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Inserts new current rows; returns their primary keys in the order given."""
    if not rows:
        return []
    result = session.connection().execute(
        insert(RESOURCE).returning(RESOURCE.c.id, sort_by_parameter_order=True), list(rows)
    )
    return [r.id for r in result]


def update_current(session: Session, *, resource_pk: int, values: Mapping[str, Any]) -> None:
    session.connection().execute(update(RESOURCE).where(RESOURCE.c.id == resource_pk).values(**values))


def _insert_many(session: Session, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Many rows in few statements: with RETURNING, SQLAlchemy batches an executemany into multi-row
    INSERT ... VALUES ("insertmanyvalues") on every backend, where psycopg's own executemany would send
    one statement per row."""
    if rows:
        session.connection().execute(insert(table).returning(table.c.id), list(rows)).close()


def insert_versions(session: Session, *, rows: Sequence[dict[str, Any]]) -> None:
    _insert_many(session, VERSION, rows)


def versions_of(session: Session, *, resource_pk: int) -> list[Row[Any]]:
    return list(
        session.connection().execute(
            select(VERSION).where(VERSION.c.resource_pk == resource_pk).order_by(VERSION.c.version_id.desc())
        )
    )


def replace_index_rows(
    session: Session, *, stale_pks: Sequence[int], rows: Mapping[str, Sequence[dict[str, Any]]]
) -> None:
    """Drops the index rows of ``stale_pks`` and inserts ``rows`` (by index kind)."""
    connection = session.connection()
    if stale_pks:
        for table in INDEX_TABLES.values():
            connection.execute(delete(table).where(table.c.resource_pk.in_(list(stale_pks))))
    for kind, kind_rows in rows.items():
        _insert_many(session, INDEX_TABLES[kind], kind_rows)


def index_rows_of(session: Session, *, resource_pk: int) -> dict[str, list[dict[str, Any]]]:
    """The index rows of one resource (for tests and diagnostics)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for kind, table in INDEX_TABLES.items():
        rows = session.connection().execute(select(table).where(table.c.resource_pk == resource_pk))
        out[kind] = [
            {k: v for k, v in row._mapping.items() if k not in ("id", "resource_pk")} for row in rows
        ]
    return out


def add_outbox_rows(session: Session, *, rows: Sequence[dict[str, Any]]) -> None:
    _insert_many(session, OUTBOX, rows)
