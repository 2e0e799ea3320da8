"""Recorded AuditEvents (``AuditEventRow``): batch inserts and the admin's keyset-paged search."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, col, delete, select

from gateway.db.tables import AuditEventRow

#: the columns the audit writer fills (``id`` is the database's)
EVENT_COLUMNS = (
    "event_id",
    "recorded",
    "action",
    "outcome",
    "client_id",
    "clinic_pk",
    "patient_id",
    "resource_type",
    "content",
)

#: their PostgreSQL types, for binary COPY (the content's bytes go as they are, not as hex text to decode)
EVENT_COLUMN_TYPES = (
    "varchar",
    "timestamptz",
    "varchar",
    "varchar",
    "varchar",
    "int4",
    "varchar",
    "varchar",
    "bytea",
)


def add_events(session: Session, *, rows: Sequence[Mapping[str, Any]]) -> None:
    """Writes a batch of ``audit_event`` column values, in the session's transaction (the writer's hot
    path: no ORM objects). PostgreSQL: one binary ``COPY ... FROM STDIN`` (no SQL text to build or parse
    per batch, and the content's bytes as they are: half the cost of text COPY, a third of INSERTs); SQLite: multi-row INSERTs (with RETURNING, SQLAlchemy batches the rows into
    ``INSERT ... VALUES (...), (...)``; without it the driver would send one INSERT per row)."""
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        driver_connection: Any = connection.connection.driver_connection
        with (
            driver_connection.cursor() as cursor,
            cursor.copy(f"COPY audit_event ({', '.join(EVENT_COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.set_types(EVENT_COLUMN_TYPES)
            for row in rows:
                copy.write_row(tuple(row.get(column) for column in EVENT_COLUMNS))
        return
    table = AuditEventRow.__table__  # type: ignore[attr-defined]
    # a column left out is NULL, as in the COPY (executemany needs the same keys in every row)
    values = [{column: row.get(column) for column in EVENT_COLUMNS} for row in rows]
    connection.execute(insert(table).returning(table.c.id), values).close()


@dataclass(frozen=True)
class AuditQuery:
    action: str | None = None
    client_id: str | None = None
    patient_id: str | None = None
    resource_type: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    #: keyset cursor: only events with a smaller id (newest first)
    before_id: int | None = None
    limit: int = 100


def search_events(session: Session, *, query: AuditQuery) -> list[AuditEventRow]:
    """Newest first, at most ``query.limit`` rows (each filter an index lookup)."""
    statement = select(AuditEventRow)
    filters = {
        AuditEventRow.action: query.action,
        AuditEventRow.client_id: query.client_id,
        AuditEventRow.patient_id: query.patient_id,
        AuditEventRow.resource_type: query.resource_type,
        AuditEventRow.outcome: query.outcome,
    }
    for column, value in filters.items():
        if value is not None:
            statement = statement.where(col(column) == value)
    if query.since is not None:
        statement = statement.where(col(AuditEventRow.recorded) >= query.since)
    if query.until is not None:
        statement = statement.where(col(AuditEventRow.recorded) < query.until)
    if query.before_id is not None:
        statement = statement.where(col(AuditEventRow.id) < query.before_id)
    statement = statement.order_by(col(AuditEventRow.id).desc()).limit(query.limit)
    return list(session.exec(statement))


def delete_recorded_before(session: Session, *, before: datetime, limit: int) -> int:
    """Deletes at most ``limit`` events recorded before ``before`` (one statement, by the recorded index);
    returns how many."""
    batch = select(AuditEventRow.id).where(col(AuditEventRow.recorded) < before).limit(limit)
    result = session.exec(delete(AuditEventRow).where(col(AuditEventRow.id).in_(batch)))
    return int(result.rowcount or 0)
