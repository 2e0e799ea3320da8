"""Audit retention: AuditEvents recorded more than ``KAPGW_AUDIT_RETENTION_DAYS`` ago are deleted, in
batches, by the background worker loop (``gateway.background``), or on demand with
``kap-gateway audit purge --before DATE``.

The default keeps six years, HIPAA's retention period for required documentation (45 CFR
164.316(b)(2)(i)); 0 keeps every event. Each batch is one short transaction of at most ``BATCH_SIZE``
rows, so a purge of years of events never holds a long lock; the task runs at most once an hour per
process, and keeps going batch after batch (it reports work found) while a full batch was deleted.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

from gateway.background import register
from gateway.core.config import Settings
from gateway.core.errors import GatewayError
from gateway.db.engine import Engine, session_scope
from gateway.db.repositories import audit as audit_repo

log = logging.getLogger(__name__)

BATCH_SIZE = 5000
INTERVAL_SECONDS = 3600.0
#: monotonic time of the last pass that found nothing more to delete
_last_done = [float("-inf")]


class InvalidPurgeError(GatewayError):
    status_code = 422


def delete_batch(engine: Engine, *, before: datetime, batch_size: int = BATCH_SIZE) -> int:
    """One batch: at most ``batch_size`` events recorded before ``before``, in one transaction."""
    with session_scope(engine) as session:
        deleted = audit_repo.delete_recorded_before(session, before=before, limit=batch_size)
        session.commit()
    return deleted


def purge_before(engine: Engine, *, before: datetime, batch_size: int = BATCH_SIZE) -> int:
    """Deletes every event recorded before ``before`` (batch after batch); returns how many."""
    if before.tzinfo is None:
        before = before.replace(tzinfo=UTC)
    if before > datetime.now(UTC):
        raise InvalidPurgeError("--before lies in the future: only past events can be purged")
    total = 0
    while True:
        deleted = delete_batch(engine, before=before, batch_size=batch_size)
        total += deleted
        if deleted < batch_size:
            break
    if total:
        log.info("audit events purged", extra={"count": total})
    return total


def retention_cutoff(settings: Settings, now: datetime | None = None) -> datetime | None:
    """Events recorded before this are past retention; None when retention is unlimited."""
    if settings.audit_retention_days == 0:
        return None
    return (now or datetime.now(UTC)) - timedelta(days=settings.audit_retention_days)


@register("audit.retention")
def delete_expired_events(engine: Engine, settings: Settings) -> bool:
    """One batch of events past retention; True while a full batch was deleted (there may be more)."""
    cutoff = retention_cutoff(settings)
    if cutoff is None or time.monotonic() - _last_done[0] < INTERVAL_SECONDS:
        return False
    deleted = delete_batch(engine, before=cutoff, batch_size=BATCH_SIZE)
    if deleted:
        log.info("audit events past retention deleted", extra={"count": deleted})
    if deleted < BATCH_SIZE:
        _last_done[0] = time.monotonic()
        return False
    return True
