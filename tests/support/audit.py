"""AuditEntries for tests of the audit recorder: a token issued at /auth/token, as the authorization server
records it (``gateway.audit.events.token_event``), distinguished by its event id."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.audit import events
from gateway.core.config import Settings


def token_entry(settings: Settings, *, event_id: str) -> events.AuditEntry:
    """An AuditEntry of a client_credentials token issued now to client ``c``."""
    return events.token_event(
        events.Server(base_url=settings.base_url),
        event_id=event_id,
        now=datetime.now(UTC),
        client_id="c",
        grant_type="client_credentials",
        scope="system/*.rs",
        error=None,
        address="127.0.0.1",
    )
