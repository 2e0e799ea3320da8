"""Changes of the resource store told to subscribers (gateway/store/changes.py): this process's commits
(``record`` + the session's commit, nothing on rollback) and, on PostgreSQL, every process's writes through
the trigger of migration 0011 and ``ChangeListener`` (LISTEN on ``kapgw_resource``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session
from support.changes import RecordingSubscriber, wait_until

from gateway.auth.clients import create_clinic
from gateway.db.engine import normalize_url
from gateway.db.tables import ResourceRow
from gateway.store import changes
from gateway.store.changes import ChangeListener
from tests.gateway.fhir_api.fhir_data import PATIENTS, fhir_id

WAIT = 5.0  # seconds a notification may take to arrive


@pytest.fixture
def subscriber() -> Iterator[RecordingSubscriber]:
    """A subscriber of this process's commits."""
    subscriber = RecordingSubscriber()
    changes.subscribe(subscriber)
    yield subscriber
    changes.unsubscribe(subscriber)


def told(subscriber: RecordingSubscriber) -> set[tuple[str, str]]:
    return {(e[1], e[2]) for e in subscriber.events if e[0] == "changed"}


# --- this process: record + commit ----------------------------------------------------------------------


def test_record_tells_the_subscriber_at_commit_not_before(engine: Engine, subscriber) -> None:
    with Session(engine) as session:
        session.execute(text("SELECT 1"))
        changes.record(session, [("Patient", "a1"), ("Observation", "o1")])
        changes.record(session, [("Patient", "a1")])
        assert subscriber.events == []
        session.commit()
        assert sorted(subscriber.events) == [("changed", "Observation", "o1"), ("changed", "Patient", "a1")]
        session.execute(text("SELECT 1"))
        session.commit()  # a later commit of the same session tells nothing again
    assert len(subscriber.events) == 2


def test_a_rollback_tells_nothing(engine: Engine, subscriber) -> None:
    with Session(engine) as session:
        session.execute(text("SELECT 1"))
        changes.record(session, [("Patient", "a1")])
        session.rollback()
        assert subscriber.events == []
        session.execute(text("SELECT 1"))
        session.commit()  # what was rolled back is forgotten, not told at the next commit
    assert subscriber.events == []


def test_an_unsubscribed_subscriber_is_not_told(engine: Engine) -> None:
    gone = RecordingSubscriber()
    changes.subscribe(gone)
    changes.unsubscribe(gone)
    with Session(engine) as session:
        session.execute(text("SELECT 1"))
        changes.record(session, [("Patient", "a1")])
        session.commit()
    assert gone.events == []


def test_a_record_write_tells_its_resources_and_an_unchanged_one_nothing(clinic, subscriber) -> None:
    patient = fhir_id(clinic.slug, "patients", "p1")
    assert clinic.put("patients", "p1", PATIENTS["p1"]).status_code in (200, 201)
    assert ("Patient", patient) in told(subscriber)
    subscriber.clear()
    assert clinic.put("patients", "p1", PATIENTS["p1"]).status_code == 200  # the same record again
    assert ("Patient", patient) not in told(subscriber)
    assert clinic.put("patients", "p1", {**PATIENTS["p1"], "family_name": "King"}).status_code == 200
    assert ("Patient", patient) in told(subscriber)
    subscriber.clear()
    assert clinic.http.delete("/api/v1/patients/p1", headers=clinic.headers).status_code in (200, 204)
    assert ("Patient", patient) in told(subscriber)


# --- payloads ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload, event",
    [
        pytest.param("Patient/abc-1", ("changed", "Patient", "abc-1"), id="type-id"),
        pytest.param("*", ("everything",), id="truncate"),
        pytest.param("garbage", ("everything",), id="unreadable"),
    ],
)
def test_apply_payload(payload: str, event: tuple[str, ...]) -> None:
    subscriber = RecordingSubscriber()
    changes.apply_payload(subscriber, payload)
    assert subscriber.events == [event]


# --- every process: the trigger and ChangeListener (PostgreSQL) -----------------------------------------


def test_only_postgresql_has_the_change_triggers(engine: Engine) -> None:
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            query = "SELECT tgname FROM pg_trigger WHERE tgrelid = 'resource'::regclass AND NOT tgisinternal"
        else:
            query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        names = set(connection.execute(text(query)).scalars())
    expected = {"resource_changed", "resource_truncated"} if engine.dialect.name == "postgresql" else set()
    assert names & {"resource_changed", "resource_truncated"} == expected


def libpq_url(database_url: str) -> str:
    return make_url(normalize_url(database_url)).set(drivername="postgresql").render_as_string(False)


@pytest.fixture
def other_process(database_url: str) -> Iterator[Engine]:
    """An engine of its own, standing for another gateway process (its writes are not ``record``-ed)."""
    engine = create_engine(normalize_url(database_url))
    yield engine
    engine.dispose()


@pytest.fixture
def listened(database_url: str) -> Iterator[tuple[ChangeListener, RecordingSubscriber]]:
    subscriber = RecordingSubscriber()
    listener = ChangeListener(libpq_url(database_url), subscriber, check_seconds=0.5, retry_seconds=0.1)
    listener.start()
    try:
        assert listener.listening.wait(WAIT), "the listener never listened"
        yield listener, subscriber
    finally:
        listener.stop()
        assert listener._thread is not None
        listener._thread.join(WAIT)
        assert not listener._thread.is_alive(), "the listener did not stop"


@pytest.fixture
def resource_pk(engine: Engine) -> int:
    """A stored Patient/x1 (inserted by the ORM, so only the trigger tells of it)."""
    with Session(engine, expire_on_commit=False) as session:
        clinic = create_clinic(session, slug="clinic-n", name="Clinic N")
        assert clinic.id is not None
        row = ResourceRow(
            clinic_pk=clinic.id,
            resource_type="Patient",
            resource_id="x1",
            version_id=1,
            last_updated=datetime(2026, 12, 1, tzinfo=UTC),
            content=b'{"resourceType":"Patient","id":"x1"}',
            content_hash="0" * 64,
        )
        session.add(row)
        session.commit()
        assert row.id is not None
        return row.id


def changed_to(resource_type: str, resource_id: str):
    return lambda events: ("changed", resource_type, resource_id) in events


@pytest.mark.backends("postgresql")
def test_listener_enables_its_subscriber_once_listening(listened) -> None:
    listener, subscriber = listened
    assert subscriber.events[0] == ("enable",)
    assert isinstance(listener.backend_pid, int)


@pytest.mark.backends("postgresql")
def test_insert_update_and_delete_of_another_process_reach_the_subscriber(
    listened, other_process: Engine, resource_pk: int
) -> None:
    _, subscriber = listened
    subscriber.wait_for(changed_to("Patient", "x1"), WAIT)  # the insert
    subscriber.clear()
    with other_process.begin() as connection:
        connection.execute(
            text("UPDATE resource SET version_id = 2, content = :content WHERE id = :pk"),
            {"content": b'{"resourceType":"Patient","id":"x1","active":true}', "pk": resource_pk},
        )
    subscriber.wait_for(changed_to("Patient", "x1"), WAIT)
    subscriber.clear()
    with other_process.begin() as connection:
        connection.execute(text("DELETE FROM resource WHERE id = :pk"), {"pk": resource_pk})
    subscriber.wait_for(changed_to("Patient", "x1"), WAIT)
    assert ("enable",) not in subscriber.events and ("disable",) not in subscriber.events


@pytest.mark.backends("postgresql")
def test_an_uncommitted_change_is_not_told(listened, other_process: Engine, resource_pk: int) -> None:
    _, subscriber = listened
    subscriber.wait_for(changed_to("Patient", "x1"), WAIT)
    subscriber.clear()
    with other_process.connect() as connection:
        connection.execute(text("UPDATE resource SET version_id = 3 WHERE id = :pk"), {"pk": resource_pk})
        connection.execute(text("NOTIFY kapgw_resource, 'Marker/in-the-rolled-back-transaction'"))
        connection.rollback()
    with other_process.begin() as connection:
        connection.execute(text("NOTIFY kapgw_resource, 'Marker/after-rollback'"))
    events = subscriber.wait_for(changed_to("Marker", "after-rollback"), WAIT)
    assert events == [("changed", "Marker", "after-rollback")]


@pytest.mark.backends("postgresql")
def test_truncate_tells_everything(listened, other_process: Engine, resource_pk: int) -> None:
    _, subscriber = listened
    subscriber.wait_for(changed_to("Patient", "x1"), WAIT)
    with other_process.begin() as connection:
        connection.execute(text("TRUNCATE resource CASCADE"))  # this session's throwaway test database
    subscriber.wait_for(lambda events: ("everything",) in events, WAIT)


@pytest.mark.backends("postgresql")
def test_a_lost_connection_disables_the_subscriber_until_listening_again(
    listened, other_process: Engine, resource_pk: int
) -> None:
    listener, subscriber = listened
    subscriber.wait_for(changed_to("Patient", "x1"), WAIT)
    subscriber.clear()
    old_pid = listener.backend_pid
    assert old_pid is not None
    with other_process.begin() as connection:
        killed = connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": old_pid}).scalar()
    assert killed is True
    events = subscriber.wait_for(lambda events: ("enable",) in events, WAIT)
    assert events[:2] == [("disable",), ("enable",)]
    assert listener.listening.is_set()
    new_pid = wait_until(lambda: listener.backend_pid, WAIT, "a new backend pid")
    assert new_pid != old_pid
    subscriber.clear()
    with other_process.begin() as connection:
        connection.execute(text("UPDATE resource SET version_id = 4 WHERE id = :pk"), {"pk": resource_pk})
    subscriber.wait_for(changed_to("Patient", "x1"), WAIT)  # told again after the reconnect


@pytest.mark.backends("postgresql")
def test_a_stopped_listener_disables_its_subscriber(database_url: str) -> None:
    subscriber = RecordingSubscriber()
    listener = ChangeListener(libpq_url(database_url), subscriber, check_seconds=0.2, retry_seconds=0.1)
    listener.start()
    assert listener.listening.wait(WAIT)
    listener.stop(WAIT)
    assert listener._thread is not None and not listener._thread.is_alive()
    assert subscriber.events[-1] == ("disable",)
    assert not listener.listening.is_set() and listener.backend_pid is None


@pytest.mark.backends("postgresql")
def test_stop_ends_the_listener_promptly(database_url: str) -> None:
    """Stopping (the app's shutdown) does not wait out ``check_seconds``, the listener's idle round trip."""
    subscriber = RecordingSubscriber()
    listener = ChangeListener(libpq_url(database_url), subscriber)  # the app's check_seconds (5 s)
    listener.start()
    assert listener.listening.wait(WAIT)
    started = time.monotonic()
    listener.stop()
    took = time.monotonic() - started
    assert listener._thread is not None
    alive = listener._thread.is_alive()
    listener._thread.join(WAIT + listener.check_seconds)  # leave no thread behind, whatever the outcome
    assert took < 1.0 and not alive, f"stop() took {took:.1f} s and left the thread alive: {alive}"
