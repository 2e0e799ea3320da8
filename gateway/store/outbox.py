"""Outbox rows: one per (resource version x EHR connection subscribed to the clinic), DESIGN §3 and §8.

Written in the transaction that writes the version, so a crash can neither lose a delivery nor
deliver a version that was rolled back. The sync worker (``gateway/sync``) claims them with leases.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from gateway.db.engine import Session
from gateway.db.repositories import resources as resource_repo
from gateway.db.repositories import sync as sync_repo
from gateway.store.versions import VersionWrite


def subscribed_connections(session: Session, *, clinic_pk: int) -> list[tuple[int, frozenset[str]]]:
    """The clinic's enabled EHR connections and the resource types each receives (read per write, so a
    connection created from the CLI is seen by the running gateway at once)."""
    return [
        (pk, frozenset(t for t in types.split(",") if t))
        for pk, types in sync_repo.subscribed_connections(session, clinic_pk=clinic_pk)
    ]


def enqueue(
    session: Session,
    *,
    clinic_pk: int,
    writes: Sequence[VersionWrite],
    patient_key: str | None,
    now: datetime,
) -> int:
    if not any(w.changed for w in writes):
        return 0
    connections = subscribed_connections(session, clinic_pk=clinic_pk)
    rows = [
        {
            "clinic_pk": clinic_pk,
            "connection_pk": connection,
            "resource_pk": w.resource_pk,
            "version_id": w.version_id,
            "patient_key": patient_key,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for w in writes
        if w.changed
        for connection, types in connections
        if w.resource_type in types
    ]
    resource_repo.add_outbox_rows(session, rows=rows)
    return len(rows)
