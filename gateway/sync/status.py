"""Delivery state for operators and clinics: per-connection counts, dead letters, replay, per-record state."""

from __future__ import annotations

from typing import Any

from gateway.db.engine import Session
from gateway.db.repositories import clinics as clinic_repo
from gateway.db.repositories import sync as sync_repo
from gateway.db.tables import EhrConnectionRow, utcnow
from gateway.store import versions


def _connections(session: Session, *, clinic_pk: int | None, name: str | None) -> list[EhrConnectionRow]:
    rows = sync_repo.list_connections(session, clinic_pk=clinic_pk)
    return [r for r in rows if name is None or r.name == name]


def status(
    session: Session, *, clinic_pk: int | None = None, name: str | None = None
) -> list[dict[str, Any]]:
    rows = _connections(session, clinic_pk=clinic_pk, name=name)
    counts = sync_repo.status_counts(session, connection_pks=[r.id for r in rows if r.id is not None])
    slugs = {c.id: c.slug for c in clinic_repo.list_clinics(session)}
    now = utcnow()
    out = []
    for row in rows:
        pk = row.id or 0
        out.append(
            {
                "clinic": slugs.get(row.clinic_pk),
                "connection": row.name,
                "mode": (row.capabilities or {}).get("mode"),
                "disabled": row.disabled,
                "paused": row.paused_until is not None and row.paused_until > now,
                "paused_until": row.paused_until.isoformat() if row.paused_until else None,
                "failures": row.failures,
                "pending": counts.get((pk, "pending"), 0),
                "delivered": counts.get((pk, "delivered"), 0),
                "dead": counts.get((pk, "dead"), 0),
            }
        )
    return out


def _dead_letter(row: Any, names: dict[int, str]) -> dict[str, Any]:
    return {
        "id": row.id,
        "connection": names.get(row.connection_pk),
        "resource": f"{row.resource_type}/{row.resource_id}",
        "version": row.version_id,
        "attempts": row.attempts,
        "status_code": row.last_status_code,
        "outcome_code": row.last_outcome_code,
        "outcome": row.outcome,
        "created_at": row.created_at.isoformat(),
    }


def dead_letters(
    session: Session,
    *,
    clinic_pk: int | None = None,
    name: str | None = None,
    limit: int = 100,
    after: int = 0,
) -> list[dict[str, Any]]:
    rows = _connections(session, clinic_pk=clinic_pk, name=name)
    names = {r.id: r.name for r in rows if r.id is not None}
    found = sync_repo.dead_letters(session, connection_pks=list(names), limit=limit, after_id=after)
    return [_dead_letter(r, names) for r in found]


def replay(
    session: Session,
    *,
    clinic_pk: int | None = None,
    name: str | None = None,
    ids: list[int] | None = None,
) -> int:
    """Dead letters back into the queue (due now, attempts and age reset); commits."""
    rows = _connections(session, clinic_pk=clinic_pk, name=name)
    count = sync_repo.replay(
        session, connection_pks=[r.id for r in rows if r.id is not None], ids=ids, now=utcnow()
    )
    session.commit()
    return count


def record_sync(session: Session, *, record_pk: int) -> list[dict[str, Any]]:
    """Per resource of a record and per connection: the newest delivery's state and the EHR's id."""
    resources = versions.current_for_record(session, record_pk=record_pk)
    current = {r.id: r.version_id for r in resources}
    out = []
    for row in sync_repo.resource_sync_state(session, resource_pks=list(current)):
        out.append(
            {
                "resource": f"{row.resource_type}/{row.resource_id}",
                "connection": row.connection_name,
                "status": row.status,
                "version": row.version_id,
                "current_version": current.get(row.resource_pk),
                "ehr_id": row.ehr_id,
                "ehr_version_sent": row.version_sent,
                "attempts": row.attempts,
                "next_attempt_at": row.next_attempt_at.isoformat() if row.status == "pending" else None,
                "last_status_code": row.last_status_code,
                "outcome": row.outcome if row.status == "dead" else None,
            }
        )
    return out
