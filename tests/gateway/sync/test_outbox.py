"""The outbox worker on both databases: enqueueing, backfill, leases, delivery, dead letters, the breaker.

The EHR here is a small in-memory fake (fake_ehr.py); tests/integration runs the same worker against Medplum."""

from __future__ import annotations

import time
from datetime import date, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from support.fake_ehr import FakeEhr

from gateway.core.config import Settings
from gateway.db.engine import session_scope
from gateway.db.repositories import sync as sync_repo
from gateway.db.tables import utcnow
from gateway.demo import load_demo
from gateway.sync import connections
from gateway.sync import status as sync_status
from gateway.sync.outbox import Deliverer

CAPS = {
    "transaction": {"mode": "transaction"},
    "conditional": {"mode": "conditional"},
    "search": {"mode": "search"},
}


def outbox(engine: Engine) -> dict[str, int]:
    with engine.connect() as c:
        return {
            r[0]: int(r[1]) for r in c.execute(text("SELECT status, count(*) FROM outbox GROUP BY status"))
        }


def run(engine: Engine, settings: Settings, deliverer: Deliverer | None = None) -> int:
    deliverer = deliverer or Deliverer(engine, settings)
    connections.upkeep(engine, settings, now=utcnow())
    claims = 0
    while deliverer.run_once():
        claims += 1
        assert claims < 10_000, "the outbox never drains"
    return claims


@pytest.fixture
def demo(engine: Engine, fast: Settings) -> None:
    with session_scope(engine) as session:
        load_demo(session, fast, slug="demo", patients=1, seed=3, start=date(2026, 1, 5))


def test_no_connection_no_outbox_rows_and_a_new_connection_backfills_once(
    engine: Engine, fast: Settings, demo: None, fake: FakeEhr, add_connection
) -> None:
    assert outbox(engine) == {}
    add_connection(engine, fast, fake, push=["Patient", "Encounter"])
    connections.upkeep(engine, fast, now=utcnow())
    with engine.connect() as c:
        types = {
            r[0]
            for r in c.execute(
                text("SELECT DISTINCT r.resource_type FROM outbox o JOIN resource r ON r.id = o.resource_pk")
            )
        }
    assert types == {"Patient", "Encounter"}  # only what the connection receives
    first = outbox(engine)["pending"]
    later = utcnow() + timedelta(seconds=fast.sync_lease_seconds + 1)
    connections.upkeep(engine, fast, now=later)  # the second pass finds nothing new
    assert outbox(engine) == {"pending": first}


@pytest.mark.parametrize("mode", ["transaction", "conditional", "search"])
def test_everything_is_delivered_once_and_a_second_run_sends_nothing(
    engine: Engine, fast: Settings, demo: None, fake: FakeEhr, add_connection, mode: str
) -> None:
    add_connection(engine, fast, fake, mode=mode)
    assert run(engine, fast) > 0
    delivered = outbox(engine)
    assert set(delivered) == {"delivered"}
    for resource_type in ("Patient", "Encounter", "Observation", "Provenance"):
        held = fake.ours(resource_type)
        assert held and all(len(v) == 1 for v in held.values())
    (patient,) = fake.ours("Patient").values()
    encounter = next(iter(fake.ours("Encounter").values()))[0]
    assert encounter["subject"]["reference"] == f"Patient/{patient[0]['id']}"  # rewritten to the EHR's id
    sent = dict(fake.requests)
    assert run(engine, fast) == 0
    assert dict(fake.requests) == sent
    assert (mode == "transaction") == (fake.requests["transaction"] > 0)


def test_writes_after_the_connection_are_enqueued_in_their_transaction(
    engine: Engine, fast: Settings, demo: None, fake: FakeEhr, add_connection
) -> None:
    from gateway.clinic_api import services
    from gateway.db.repositories.clinics import get_clinic
    from mappings.records import PatientRecord

    add_connection(engine, fast, fake)
    run(engine, fast)
    with session_scope(engine) as session:
        clinic = get_clinic(session, slug="demo")
        assert clinic is not None and clinic.id is not None
        scope = services.ClinicScope(clinic.id, clinic.slug, clinic.name)
        services.put_record(
            session,
            fast,
            clinic=scope,
            kind="patients",
            external_id="new-1",
            model=PatientRecord.model_validate(
                {"given_name": "Ana", "family_name": "Test", "birth_date": "1990-01-01", "sex": "female"}
            ),
        )
    assert outbox(engine)["pending"] == 2  # the new Patient and its Provenance
    run(engine, fast)
    assert len(fake.ours("Patient")) == 2 and set(outbox(engine)) == {"delivered"}


def test_a_lease_is_held_by_one_worker_until_it_runs_out(
    engine: Engine, fast: Settings, demo: None, fake: FakeEhr, add_connection
) -> None:
    pk = add_connection(engine, fast, fake)
    now = utcnow()
    with session_scope(engine) as session:
        assert sync_repo.acquire_lease(
            session, connection_pk=pk, key="p:x", owner="a", until=now + timedelta(seconds=30), now=now
        )
        assert not sync_repo.acquire_lease(
            session, connection_pk=pk, key="p:x", owner="b", until=now + timedelta(seconds=30), now=now
        )
        assert sync_repo.acquire_lease(
            session, connection_pk=pk, key="p:x", owner="a", until=now + timedelta(seconds=60), now=now
        )
        later = now + timedelta(seconds=61)
        assert sync_repo.acquire_lease(
            session, connection_pk=pk, key="p:x", owner="b", until=later + timedelta(seconds=30), now=later
        )
        assert not sync_repo.holds_lease(session, connection_pk=pk, key="p:x", owner="a", now=later)
        session.commit()


def test_claimed_rows_are_not_claimed_again_and_come_back_when_the_lease_ends(
    engine: Engine, fast: Settings, demo: None, fake: FakeEhr, add_connection
) -> None:
    pk = add_connection(engine, fast, fake)
    connections.upkeep(engine, fast, now=utcnow())
    now = utcnow()
    with session_scope(engine) as session:
        ((_, key), *_) = sync_repo.due_keys(session, now=now, limit=5, connection_pks=[pk])
        rows = sync_repo.claim_rows(
            session,
            connection_pk=pk,
            key=key,
            owner="a",
            until=now + timedelta(seconds=30),
            now=now,
            limit=1000,
        )
        again = sync_repo.claim_rows(
            session,
            connection_pk=pk,
            key=key,
            owner="b",
            until=now + timedelta(seconds=30),
            now=now,
            limit=1000,
        )
        after = now + timedelta(seconds=31)
        back = sync_repo.claim_rows(
            session,
            connection_pk=pk,
            key=key,
            owner="b",
            until=after + timedelta(seconds=30),
            now=after,
            limit=1000,
        )
        session.commit()
    assert rows and again == [] and {r.id for r in back} == {r.id for r in rows}


def test_a_rejected_resource_is_a_dead_letter_the_rest_goes_through_and_replay_delivers_it(
    engine: Engine, fast: Settings, demo: None, fake: FakeEhr, add_connection
) -> None:
    add_connection(engine, fast, fake)
    fake.reject_type = "Patient"
    run(engine, fast)
    with session_scope(engine, read_only=True) as session:
        dead = sync_status.dead_letters(session)
    assert [d["resource"].split("/")[0] for d in dead] == ["Patient"]
    assert dead[0]["status_code"] == 422 and dead[0]["outcome"]["issue"][0]["code"] == "invalid"
    assert fake.ours("Organization") and fake.ours("Practitioner")  # what does not need the Patient went
    fake.reject_type = None
    with session_scope(engine) as session:
        assert sync_status.replay(session) == 1
    for _ in range(200):  # what waited for the Patient is retried after its (short) backoff
        run(engine, fast)
        if set(outbox(engine)) == {"delivered"}:
            break
        time.sleep(0.05)
    assert len(fake.ours("Patient")) == 1 and set(outbox(engine)) == {"delivered"}


def test_an_ehr_that_keeps_failing_pauses_the_connection(
    engine: Engine, fast: Settings, demo: None, fake: FakeEhr, add_connection
) -> None:
    pk = add_connection(engine, fast, fake)
    fake.fail_status = 503
    deliverer = Deliverer(engine, fast)
    connections.upkeep(engine, fast, now=utcnow())
    for _ in range(fast.sync_breaker_failures):
        with engine.begin() as c:  # make the retries due at once
            c.execute(text("UPDATE outbox SET next_attempt_at = created_at"))
        assert deliverer.run_once()
    with session_scope(engine, read_only=True) as session:
        row = sync_repo.get_connection_by_pk(session, pk=pk)
        assert row is not None and row.paused_until is not None and row.paused_until > utcnow()
        (line,) = sync_status.status(session)
    assert line["paused"] and line["dead"] == 0
    with engine.begin() as c:
        c.execute(text("UPDATE outbox SET next_attempt_at = created_at"))
    calls = dict(fake.requests)
    assert not deliverer.run_once()  # paused: nothing is tried
    assert dict(fake.requests) == calls
