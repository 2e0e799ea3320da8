"""Recorded AuditEvents (``AuditEventRow``): batch inserts and the admin's keyset-paged search."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, col, delete, select

from gateway.db.tables import AuditEventRow


def add_events(session: Session, *, rows: Sequence[Mapping[str, Any]]) -> None:
    """One multi-row INSERT of ``audit_event`` column values (no ORM objects: the writer's hot path)."""
    if rows:
        session.connection().execute(insert(AuditEventRow), list(rows))


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
