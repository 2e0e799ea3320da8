"""The admin's search of the audit trail: filters, newest first, keyset paging; served from stored bytes."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

import orjson

from gateway.auth.clients import ADMIN_SCOPE
from gateway.auth.service import Principal
from gateway.core.errors import ForbiddenError
from gateway.db.engine import Session
from gateway.db.repositories import audit as audit_repo
from gateway.db.repositories.audit import AuditQuery

__all__ = ["AuditPage", "AuditQuery", "require_admin", "search"]

MAX_LIMIT = 1000


def require_admin(principal: Principal) -> None:
    if principal.kind != "admin" or ADMIN_SCOPE not in principal.scopes:
        raise ForbiddenError(f"the audit trail needs an admin token with scope {ADMIN_SCOPE}")


@dataclass(frozen=True)
class AuditPage:
    #: each event's stored AuditEvent JSON
    events: list[bytes]
    #: the cursor for the next (older) page, None at the end
    next_before: int | None

    def json_bytes(self, next_url: str | None) -> bytes:
        """``{"events": [...], "next": url}`` without parsing the stored events again."""
        return b'{"events":[' + b",".join(self.events) + b'],"next":' + orjson.dumps(next_url) + b"}"


def _aware(moment: datetime | None) -> datetime | None:
    """A time without an offset is taken as UTC."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def search(session: Session, *, query: AuditQuery) -> AuditPage:
    query = replace(query, since=_aware(query.since), until=_aware(query.until))
    rows = audit_repo.search_events(session, query=query)
    full = len(rows) == query.limit
    last = rows[-1].id if rows and full else None
    return AuditPage(events=[row.content for row in rows], next_before=last)
