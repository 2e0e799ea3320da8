"""Queries of the FHIR resource store: current rows, versions, search-index rows and outbox rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, insert
from sqlmodel import Session, col, select

from gateway.db.tables import (
    OutboxRow,
    ResourceRow,
    ResourceVersionRow,
    SearchDateRow,
    SearchReferenceRow,
    SearchStringRow,
    SearchTokenRow,
)

#: index kind -> table, as ``gateway.store.search_index`` names them
INDEX_TABLES: dict[str, type[Any]] = {
    "token": SearchTokenRow,
    "reference": SearchReferenceRow,
    "date": SearchDateRow,
    "string": SearchStringRow,
}


def get_current(session: Session, *, resource_type: str, resource_id: str) -> ResourceRow | None:
    return session.exec(
        select(ResourceRow).where(
            ResourceRow.resource_type == resource_type, ResourceRow.resource_id == resource_id
        )
    ).first()


def current_for_record(session: Session, *, record_pk: int) -> list[ResourceRow]:
    return list(
        session.exec(
            select(ResourceRow)
            .where(ResourceRow.record_pk == record_pk)
            .order_by(col(ResourceRow.resource_type), col(ResourceRow.resource_id))
        )
    )


def save_current(session: Session, *, row: ResourceRow) -> int:
    session.add(row)
    session.flush()
    assert row.id is not None
    return row.id


def add_version(session: Session, *, version: ResourceVersionRow) -> None:
    session.add(version)


def versions_of(session: Session, *, resource_pk: int) -> list[ResourceVersionRow]:
    return list(
        session.exec(
            select(ResourceVersionRow)
            .where(ResourceVersionRow.resource_pk == resource_pk)
            .order_by(col(ResourceVersionRow.version_id).desc())
        )
    )


def replace_index_rows(
    session: Session, *, resource_pk: int, rows: Mapping[str, Sequence[dict[str, Any]]]
) -> None:
    for table in INDEX_TABLES.values():
        session.execute(delete(table).where(table.resource_pk == resource_pk))
    for kind, kind_rows in rows.items():
        if kind_rows:
            session.execute(insert(INDEX_TABLES[kind]), list(kind_rows))


def index_rows_of(session: Session, *, resource_pk: int) -> dict[str, list[dict[str, Any]]]:
    """The index rows of one resource (for tests and diagnostics)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for kind, table in INDEX_TABLES.items():
        rows = session.exec(select(table).where(table.resource_pk == resource_pk)).all()
        out[kind] = [row.model_dump(exclude={"id", "resource_pk"}) for row in rows]
    return out


def add_outbox_rows(session: Session, *, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(OutboxRow), list(rows))
