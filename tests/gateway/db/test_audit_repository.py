"""The audit writer's batch insert (gateway/db/repositories/audit.py ``add_events``): binary COPY on
PostgreSQL, multi-row INSERT on SQLite; every column comes back as written, awkward values included."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
from sqlalchemy import select
from sqlmodel import Session

from gateway.db.repositories.audit import EVENT_COLUMNS, add_events
from gateway.db.tables import AuditEventRow

AWKWARD = "tab\there, new\nline, back\\slash, quote ' \" , ümlaut, ☤, \\N"


def test_every_column_comes_back_as_written(engine) -> None:
    recorded = datetime(2026, 12, 4, 21, 40, 0, 123456, tzinfo=UTC)
    content = orjson.dumps({"resourceType": "AuditEvent", "note": AWKWARD}) + bytes(range(256))
    rows = [
        {
            "event_id": str(uuid.uuid4()),
            "recorded": recorded,
            "action": "read",
            "outcome": "0",
            "client_id": AWKWARD,
            "clinic_pk": 7,
            "patient_id": "p\t1",
            "resource_type": "Patient",
            "content": content,
        },
        {  # the nullable columns left out, as the retention tests write them
            "event_id": str(uuid.uuid4()),
            "recorded": recorded,
            "action": "token",
            "outcome": "4",
            "content": b"{}",
        },
    ]
    with Session(engine) as session:
        add_events(session, rows=rows)
        session.commit()
    with Session(engine) as session:
        found = {row.event_id: row for row in session.exec(select(AuditEventRow)).scalars()}  # type: ignore[call-overload]
    for written in rows:
        row = found[written["event_id"]]
        for column in EVENT_COLUMNS:
            assert getattr(row, column) == written.get(column), column


def test_a_failed_batch_writes_nothing(engine) -> None:
    duplicate = str(uuid.uuid4())
    row = {
        "event_id": duplicate,
        "recorded": datetime.now(UTC),
        "action": "read",
        "outcome": "0",
        "content": b"{}",
    }
    with Session(engine) as session:
        add_events(session, rows=[row])
        session.commit()
    other = {**row, "event_id": str(uuid.uuid4())}
    with Session(engine) as session:
        try:
            add_events(session, rows=[other, row])  # the second repeats an event id
            session.commit()
        except Exception:
            session.rollback()
        else:
            raise AssertionError("a repeated event id was accepted")
    with Session(engine) as session:
        ids = set(session.exec(select(AuditEventRow.event_id)).scalars())  # type: ignore[call-overload]
    assert ids == {duplicate}
