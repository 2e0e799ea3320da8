"""Used client-assertion ``jti`` values (``AssertionJtiRow``): the replay store, atomic on both backends."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col

from gateway.db.tables import AssertionJtiRow

_TABLE = AssertionJtiRow.__table__  # type: ignore[attr-defined]


def use_jti(session: Session, *, client_pk: int, jti_hash: str, expires_at: datetime, now: datetime) -> bool:
    """Records the jti as used; False when it was already used (and has not expired). One statement, so
    two requests racing with the same assertion cannot both succeed."""
    session.execute(
        delete(AssertionJtiRow).where(
            col(AssertionJtiRow.client_pk) == client_pk,
            col(AssertionJtiRow.jti_hash) == jti_hash,
            col(AssertionJtiRow.expires_at) < now,
        )
    )
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert(_TABLE)
        .values(client_pk=client_pk, jti_hash=jti_hash, expires_at=expires_at)
        .on_conflict_do_nothing(index_elements=[_TABLE.c.client_pk, _TABLE.c.jti_hash])
        .returning(_TABLE.c.jti_hash)
    )
    return session.execute(statement).first() is not None


def delete_expired(session: Session, *, now: datetime) -> int:
    result = session.execute(delete(AssertionJtiRow).where(col(AssertionJtiRow.expires_at) < now))
    return int(getattr(result, "rowcount", 0) or 0)
