"""Counters of failed token-endpoint authentications (``AuthThrottleRow``), atomic on both backends."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, delete, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col

from gateway.db.tables import AuthThrottleRow

_TABLE = AuthThrottleRow.__table__  # type: ignore[attr-defined]


def add_attempt(
    session: Session, *, kind: str, key_hash: str, now: datetime, window_cutoff: datetime
) -> tuple[int, datetime]:
    """Counts one attempt against the key (a new window when the last one started at or before
    ``window_cutoff``) in one statement; returns the count and the window's start."""
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(_TABLE).values(kind=kind, key_hash=key_hash, failures=1, window_start=now)
    ended = _TABLE.c.window_start <= window_cutoff
    upsert = statement.on_conflict_do_update(
        index_elements=[_TABLE.c.kind, _TABLE.c.key_hash],
        set_={
            "failures": case((ended, 1), else_=_TABLE.c.failures + 1),
            "window_start": case((ended, statement.excluded.window_start), else_=_TABLE.c.window_start),
        },
    ).returning(_TABLE.c.failures, _TABLE.c.window_start)
    failures, window_start = session.execute(upsert).one()
    return failures, window_start


def remove_attempt(session: Session, *, kind: str, key_hash: str) -> None:
    """Takes one attempt back (it was not a failure)."""
    session.execute(
        update(AuthThrottleRow)
        .where(
            col(AuthThrottleRow.kind) == kind,
            col(AuthThrottleRow.key_hash) == key_hash,
            col(AuthThrottleRow.failures) > 0,
        )
        .values(failures=col(AuthThrottleRow.failures) - 1)
    )


def clear(session: Session, *, kind: str, key_hash: str) -> None:
    session.execute(
        delete(AuthThrottleRow).where(
            col(AuthThrottleRow.kind) == kind, col(AuthThrottleRow.key_hash) == key_hash
        )
    )


def delete_ended(session: Session, *, window_cutoff: datetime) -> None:
    """Drops counters whose window started at or before the cutoff (they no longer count)."""
    session.execute(delete(AuthThrottleRow).where(col(AuthThrottleRow.window_start) <= window_cutoff))
