"""Background upkeep of the authorization server: spent client-assertion jti values are deleted once their
assertion has expired (they can no longer be replayed: an expired assertion is refused on its exp), and so
are EHR launches an hour after they expired (used or not, they open nothing any more).

Registered with the worker loop (``gateway.background``); runs at most once a minute per process.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

from gateway.background import register
from gateway.core.config import Settings
from gateway.db.engine import Engine, session_scope
from gateway.db.repositories import assertions as assertion_repo
from gateway.db.repositories import launch as launch_repo

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 60.0
_last_run = [float("-inf")]


@register("auth.jti-cleanup")
def delete_expired_jtis(engine: Engine, settings: Settings) -> bool:
    """Deletes expired jti rows; never reports work found (it need not make the loop spin)."""
    now = time.monotonic()
    if now - _last_run[0] < INTERVAL_SECONDS:
        return False
    _last_run[0] = now
    with session_scope(engine) as session:
        deleted = assertion_repo.delete_expired(session, now=datetime.now(UTC))
        launch_repo.delete_spent_launches(session, before=datetime.now(UTC) - timedelta(hours=1))
        session.commit()
    if deleted:
        log.info("expired assertion jti values deleted", extra={"count": deleted})
    return False
