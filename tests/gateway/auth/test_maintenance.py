"""The jti replay store is emptied of expired assertions by the worker loop's auth.jti-cleanup task."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session
from support.smart import register_ehr_client

from gateway.auth import maintenance
from gateway.background import load_tasks
from gateway.db.tables import AssertionJtiRow


def test_expired_jtis_are_deleted_and_live_ones_kept(engine, settings, monkeypatch) -> None:
    assert "auth.jti-cleanup" in {task.name for task in load_tasks()}
    register_ehr_client(engine)
    now = datetime.now(UTC)
    with Session(engine) as session:
        session.add(AssertionJtiRow(client_pk=1, jti_hash="a" * 64, expires_at=now - timedelta(seconds=5)))
        session.add(AssertionJtiRow(client_pk=1, jti_hash="b" * 64, expires_at=now + timedelta(seconds=300)))
        session.commit()
    monkeypatch.setattr(maintenance, "_last_run", [float("-inf")])
    assert maintenance.delete_expired_jtis(engine, settings) is False
    with Session(engine) as session:
        assert [row.jti_hash for row in session.execute(select(AssertionJtiRow)).scalars()] == ["b" * 64]
    maintenance.delete_expired_jtis(engine, settings)  # within the interval: does nothing, changes nothing
    with Session(engine) as session:
        assert len(session.execute(select(AssertionJtiRow)).all()) == 1
