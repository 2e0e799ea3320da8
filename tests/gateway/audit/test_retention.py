"""Audit retention: the worker task deletes AuditEvents past KAPGW_AUDIT_RETENTION_DAYS in batches, and
`kap-gateway audit purge --before DATE` deletes them on demand."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlmodel import Session
from typer.testing import CliRunner

from gateway.audit import retention
from gateway.background import WorkerLoop, load_tasks
from gateway.cli import app as cli_app
from gateway.core.config import get_settings
from gateway.db.repositories.audit import add_events
from gateway.db.tables import AuditEventRow

NOW = datetime.now(UTC)


def add_events_aged(engine, *days_ago: float) -> None:
    with Session(engine) as session:
        add_events(
            session,
            rows=[
                {
                    "event_id": str(uuid.uuid4()),
                    "recorded": NOW - timedelta(days=age),
                    "action": "read",
                    "outcome": "0",
                    "content": b'{"resourceType": "AuditEvent"}',
                }
                for age in days_ago
            ],
        )
        session.commit()


def ages(engine) -> list[int]:
    with Session(engine) as session:
        recorded = session.exec(select(AuditEventRow.recorded).order_by(AuditEventRow.recorded)).all()
    return sorted(round((NOW - row[0]).total_seconds() / 86400) for row in recorded)


@pytest.fixture(autouse=True)
def fresh_interval(monkeypatch):
    monkeypatch.setattr(retention, "_last_done", [float("-inf")])


def test_default_retention_is_six_years(settings) -> None:
    assert settings.audit_retention_days == 2190
    assert retention.retention_cutoff(settings, NOW) == NOW - timedelta(days=2190)


def test_worker_deletes_events_past_retention_in_batches(engine, settings, monkeypatch) -> None:
    add_events_aged(engine, 1, 2189, 2191, 2200, 3000, 4000, 5000)
    monkeypatch.setattr(retention, "BATCH_SIZE", 2)
    assert retention.delete_expired_events(engine, settings) is True  # a full batch: there may be more
    assert len(ages(engine)) == 5 and ages(engine)[:2] == [1, 2189]  # any two past retention
    assert retention.delete_expired_events(engine, settings) is True
    assert retention.delete_expired_events(engine, settings) is False  # the last, partial batch
    assert ages(engine) == [1, 2189]
    add_events_aged(engine, 2500)
    assert retention.delete_expired_events(engine, settings) is False  # waits for the next hour
    assert ages(engine) == [1, 2189, 2500]
    monkeypatch.setattr(retention, "_last_done", [float("-inf")])
    retention.delete_expired_events(engine, settings)
    retention.delete_expired_events(engine, settings)  # run twice: the second changes nothing
    assert ages(engine) == [1, 2189]


def test_zero_keeps_everything(engine, settings) -> None:
    add_events_aged(engine, 10_000)
    keep = settings.model_copy(update={"audit_retention_days": 0})
    assert retention.delete_expired_events(engine, keep) is False
    assert ages(engine) == [10_000]


def test_registered_with_the_worker_loop(engine, settings) -> None:
    assert "audit.retention" in {task.name for task in load_tasks()}
    add_events_aged(engine, 3000, 5)
    short = settings.model_copy(update={"audit_retention_days": 30})
    WorkerLoop(engine, short).run_once()
    assert ages(engine) == [5]


def test_cli_purge_before(database_url, engine, monkeypatch) -> None:
    add_events_aged(engine, 400, 200, 100, 3)
    monkeypatch.setenv("KAPGW_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        before = (NOW - timedelta(days=150)).date().isoformat()
        result = runner.invoke(cli_app, ["audit", "purge", "--before", before, "--batch-size", "1"])
        assert result.exit_code == 0, result.output
        answer = json.loads(result.stdout)
        assert answer["deleted"] == 2 and answer["before"].startswith(before)
        assert ages(engine) == [3, 100]
        again = runner.invoke(cli_app, ["audit", "purge", "--before", before])
        assert json.loads(again.stdout)["deleted"] == 0 and ages(engine) == [3, 100]
        future = (NOW + timedelta(days=2)).date().isoformat()
        refused = runner.invoke(cli_app, ["audit", "purge", "--before", future])
        assert refused.exit_code == 1 and "future" in refused.output
        assert ages(engine) == [3, 100]
    finally:
        get_settings.cache_clear()
