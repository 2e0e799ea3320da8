"""Outbox rows: one per (resource version x EHR connection subscribed to the clinic), DESIGN §3 and §8.

Written in the transaction that writes the version, so a crash can neither lose a delivery nor
deliver a version that was rolled back. The sync worker (``gateway/sync``) claims them with leases.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from gateway.db.engine import Session
from gateway.db.repositories import resources as resource_repo
from gateway.store.versions import VersionWrite


def subscribed_connections(session: Session, *, clinic_pk: int) -> list[int]:
    """EHR connections that receive this clinic's resources.

    There is no connection table yet (the sync issue adds EHR connections); until then no clinic has
    a subscriber and no outbox rows are written.
    """
    return []


def enqueue(
    session: Session,
    *,
    clinic_pk: int,
    writes: Sequence[VersionWrite],
    patient_key: str | None,
    now: datetime,
) -> int:
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
        for connection in connections
    ]
    resource_repo.add_outbox_rows(session, rows=rows)
    return len(rows)
