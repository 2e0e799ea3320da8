"""The export worker: jobs run only in the worker, one worker per job (leases), a worker that dies
mid-job is resumed by another after its lease lapses (no line lost, none twice), and a second run of the
task changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from gateway.bulk.runner import run_export_turn
from gateway.db.engine import session_scope
from gateway.db.repositories import bulk as repo

from .conftest import ASYNC, auth, drain, local, store_rows


def kick(client, token, params=None) -> str:
    response = client.get("/fhir/$export", params=params, headers=auth(token, **ASYNC))
    assert response.status_code == 202, response.text
    return local(response.headers["Content-Location"])


def lines_of(client, token, status_path) -> list[bytes]:
    manifest = client.get(status_path, headers=auth(token)).json()
    out: list[bytes] = []
    for item in manifest["output"]:
        out += client.get(local(item["url"]), headers=auth(token)).content.split(b"\n")[:-1]
    return out


def lapse_leases(engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE bulk_job SET lease_until = :t"), {"t": datetime.now(UTC) - timedelta(seconds=1)}
        )


def test_the_kickoff_only_queues_the_job(demo, token, client, engine) -> None:
    status = kick(client, token)
    assert client.get(status, headers=auth(token)).status_code == 202
    with engine.connect() as connection:
        assert connection.execute(text("SELECT status FROM bulk_job")).scalar_one() == "queued"
        assert connection.execute(text("SELECT count(*) FROM bulk_file")).scalar_one() == 0


def test_a_leased_job_is_not_claimed_twice(demo, token, client, engine) -> None:
    kick(client, token)
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        first = repo.claim_job(session, owner="a", now=now, lease_until=now + timedelta(seconds=60))
        second = repo.claim_job(session, owner="b", now=now, lease_until=now + timedelta(seconds=60))
        session.commit()
    assert first is not None and second is None
    with session_scope(engine) as session:
        later = now + timedelta(seconds=61)  # a's lease has lapsed: b takes the job over
        assert (
            repo.claim_job(session, owner="b", now=later, lease_until=later + timedelta(seconds=60)) == first
        )
        session.commit()


def test_worker_dies_mid_job_and_another_resumes(demo, token, client, engine, settings) -> None:
    status = kick(client, token)
    # worker A writes two files and dies (its lease stays until it lapses)
    assert run_export_turn(engine, settings, owner="worker-a", max_files=2)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM bulk_file")).scalar_one() == 2
        job = connection.execute(text("SELECT status, lease_owner, attempts FROM bulk_job")).one()
    assert (job.status, job.lease_owner, job.attempts) == ("running", "worker-a", 1)
    # a half-written file of the dead worker lies in the directory
    job_dir = settings.export_dir / status.rsplit("/", 1)[1]
    (job_dir / "00002.AdverseEvent.ndjson.part").write_bytes(b'{"resourceType":"AdverseEvent","id":"half')
    # while A's lease holds, no other worker touches the job
    assert not run_export_turn(engine, settings, owner="worker-b")
    lapse_leases(engine)
    drain(engine, settings, owner="worker-b")
    with engine.connect() as connection:
        job = connection.execute(text("SELECT status, attempts FROM bulk_job")).one()
    assert (job.status, job.attempts) == ("completed", 2)
    lines = lines_of(client, token, status)
    assert len(lines) == len(set(lines))
    assert sorted(lines) == sorted(store_rows(engine, "demo").values())
    assert not list(job_dir.glob("*.part"))


def test_resumed_export_equals_an_uninterrupted_one(demo, token, client, engine, settings) -> None:
    clean = kick(client, token)
    drain(engine, settings)
    interrupted = kick(client, token)
    for owner in ("w1", "w2", "w3"):  # three workers, each dying after one file
        run_export_turn(engine, settings, owner=owner, max_files=1)
        lapse_leases(engine)
    drain(engine, settings, owner="w4")
    assert lines_of(client, token, interrupted) == lines_of(client, token, clean)


def test_the_task_run_again_changes_nothing(demo, token, client, engine, settings) -> None:
    status = kick(client, token)
    drain(engine, settings)
    before = client.get(status, headers=auth(token)).json()
    with engine.connect() as connection:
        files = connection.execute(text("SELECT count(*) FROM bulk_file")).scalar_one()
    assert drain(engine, settings) == 0
    assert client.get(status, headers=auth(token)).json() == before
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM bulk_file")).scalar_one() == files


def test_cancel_while_a_worker_writes(demo, token, client, engine, settings) -> None:
    status = kick(client, token)
    run_export_turn(engine, settings, owner="w1", max_files=1)
    assert client.delete(status, headers=auth(token)).status_code == 202
    # the worker's next turn finds the job cancelled: it stops and lets go of it
    assert not run_export_turn(engine, settings, owner="w1")
    with engine.connect() as connection:
        job = connection.execute(text("SELECT status, lease_owner FROM bulk_job")).one()
    assert job.status == "cancelled"


def test_a_job_failing_again_and_again_is_marked_failed(demo, token, client, engine, settings) -> None:
    status = kick(client, token)
    with engine.begin() as connection:
        connection.execute(text("UPDATE bulk_job SET attempts = 5"))
    drain(engine, settings)
    response = client.get(status, headers=auth(token))
    assert response.status_code == 500
    assert response.json()["issue"][0]["code"] == "exception"
