"""Leases on rows: the one shape that Bulk export jobs, sync outbox rows and sync delivery keys share.

A leased row names its holder (an owner string unique per worker loop) and the time the lease runs out.
A worker takes a row with a conditional UPDATE whose WHERE re-checks that the lease is free -- lapsed,
never taken, or the worker's own -- so of two workers racing for a row exactly one changes it
(PostgreSQL re-evaluates the WHERE after a concurrent update commits; SQLite has one writer at a time).
It renews and releases with UPDATEs that match only its own lease, so a worker whose lease ran out and
was taken over changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, or_, update
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session


@dataclass(frozen=True)
class Leased:
    """A table whose rows are leased, with the names of its holder and expiry columns."""

    table: Table
    owner_column: str = "lease_owner"
    until_column: str = "lease_until"

    @property
    def owner(self) -> Any:
        return self.table.c[self.owner_column]

    @property
    def until(self) -> Any:
        return self.table.c[self.until_column]

    def free(self, *, now: datetime, owner: str | None = None) -> ColumnElement[bool]:
        """The row's lease lapsed or was never taken (or, with ``owner``, is that owner's own)."""
        clauses = [self.until.is_(None), self.until < now]
        if owner is not None:
            clauses.append(self.owner == owner)
        return or_(*clauses)

    def take(
        self,
        session: Session,
        *where: ColumnElement[bool],
        owner: str,
        until: datetime,
        now: datetime,
        values: dict[str, Any] | None = None,
    ) -> int:
        """Leases the matching rows whose lease is free (or ``owner``'s own) to ``owner``; how many it took."""
        result = session.connection().execute(
            update(self.table)
            .where(*where, self.free(now=now, owner=owner))
            .values({self.owner_column: owner, self.until_column: until, **(values or {})})
        )
        return int(result.rowcount or 0)

    def renew(
        self,
        session: Session,
        *where: ColumnElement[bool],
        owner: str,
        until: datetime,
        values: dict[str, Any] | None = None,
    ) -> int:
        """Extends ``owner``'s lease on the matching rows (and sets ``values``); how many it still held."""
        result = session.connection().execute(
            update(self.table)
            .where(*where, self.owner == owner)
            .values({self.until_column: until, **(values or {})})
        )
        return int(result.rowcount or 0)

    def release(self, session: Session, *where: ColumnElement[bool], owner: str) -> None:
        """Gives ``owner``'s lease on the matching rows back (the row stays; its lease columns are cleared)."""
        session.connection().execute(
            update(self.table)
            .where(*where, self.owner == owner)
            .values({self.owner_column: None, self.until_column: None})
        )
