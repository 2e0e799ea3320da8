"""The records API under concurrency, over real HTTP against a real uvicorn server (both databases).

No 5xx, every request answered within a bound generous enough for a loaded CI machine, one record row
however many clients race, and gap-free resource versions. The server runs fewer worker threads than there
are clients, so requests also queue for threads and connections.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import orjson
import pytest
from sqlmodel import Session, func, select
from support.live_server import LiveServer, clinic_token, live_server

from gateway.clinic_api.examples import RECORD_EXAMPLES
from gateway.core.config import Settings
from gateway.db.engine import make_engine
from gateway.db.tables import RecordRow, ResourceRow, ResourceVersionRow

PATIENT = RECORD_EXAMPLES["patients"][1]
FAST_SECONDS = 5.0  # "fast requests stay fast": generous for a shared 2-core CI machine
# the last of 50-100 simultaneous requests waits for all before it (about 10 ms of CPU each) on a CI machine
# that runs other tests at the same time; a stall (a lock or pool wait running into its timeout) is >= 10 s
PILE_SECONDS = 9.0


@pytest.fixture
def server(settings: Settings) -> Iterator[LiveServer]:
    # 16 threads (and connections) for up to 100 clients
    with live_server(settings.model_copy(update={"worker_threads": 16, "db_max_overflow": 4})) as live:
        yield live


def http(server: LiveServer, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {token}"},
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=200),
        timeout=120,
    )


async def timed(client: httpx.AsyncClient, method: str, url: str, **kwargs) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = await client.request(method, url, **kwargs)
    return response, time.perf_counter() - started


def patient_versions(server: LiveServer) -> tuple[int, list[int]]:
    with Session(server.app.state.engine) as session:
        records = session.exec(select(func.count()).select_from(RecordRow)).one()
        patient = session.exec(select(ResourceRow).where(ResourceRow.resource_type == "Patient")).one()
        versions = session.exec(
            select(ResourceVersionRow.version_id).where(ResourceVersionRow.resource_pk == patient.id)
        ).all()
    return records, sorted(versions)


def test_100_parallel_gets(server: LiveServer) -> None:
    token = clinic_token(server, "gets")

    async def run() -> list[tuple[httpx.Response, float]]:
        async with http(server, token) as client:
            assert (await client.put("/api/v1/patients/pat-1", json=PATIENT)).status_code == 201
            return await asyncio.gather(*(timed(client, "GET", "/api/v1/patients/pat-1") for _ in range(100)))

    results = asyncio.run(run())
    assert [r.status_code for r, _ in results] == [200] * 100
    assert {r.json()["record"]["family_name"] for r, _ in results} == {PATIENT["family_name"]}
    assert max(seconds for _, seconds in results) < PILE_SECONDS


def test_50_parallel_identical_puts_of_a_new_record(server: LiveServer) -> None:
    token = clinic_token(server, "same-puts")

    async def run() -> list[tuple[httpx.Response, float]]:
        async with http(server, token) as client:
            return await asyncio.gather(
                *(timed(client, "PUT", "/api/v1/patients/pat-1", json=PATIENT) for _ in range(50))
            )

    results = asyncio.run(run())
    assert sorted(r.status_code for r, _ in results) == [200] * 49 + [201]
    assert sorted(r.json()["outcome"] for r, _ in results) == ["created"] + ["unchanged"] * 49
    assert max(seconds for _, seconds in results) < PILE_SECONDS
    assert patient_versions(server) == (1, [1])  # one record row, one Patient version


def test_50_parallel_different_updates(server: LiveServer) -> None:
    token = clinic_token(server, "updates")
    phones = [f"+1 555 03{n:02d}" for n in range(50)]  # none equals the example's phone

    async def run() -> list[tuple[httpx.Response, float]]:
        async with http(server, token) as client:
            assert (await client.put("/api/v1/patients/pat-1", json=PATIENT)).status_code == 201
            return await asyncio.gather(
                *(
                    timed(client, "PUT", "/api/v1/patients/pat-1", json={**PATIENT, "phone": phone})
                    for phone in phones
                )
            )

    results = asyncio.run(run())
    assert [r.status_code for r, _ in results] == [200] * 50
    assert [r.json()["outcome"] for r, _ in results] == ["updated"] * 50
    assert max(seconds for _, seconds in results) < PILE_SECONDS
    assert patient_versions(server) == (1, list(range(1, 52)))  # v1 + one per update: no gaps, no twins


def test_a_slow_batch_upload_does_not_hold_up_other_requests(server: LiveServer) -> None:
    """A client trickles its batch body; GETs and PUTs beside it (writes included) answer while it streams."""
    token = clinic_token(server, "slow-body")
    entries = [
        {"kind": "patients", "id": f"batch-{n}", "record": {**PATIENT, "phone": f"+1 555 04{n:02d}"}}
        for n in range(3)
    ]
    body = orjson.dumps(entries)
    others_done = asyncio.Event()
    streaming = {"ended": 0.0}

    async def trickle() -> AsyncIterator[bytes]:
        yield body[:1]  # "[" -- then JSON whitespace until the fast requests are answered (at most 30 s)
        deadline = time.monotonic() + 30
        while not others_done.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            yield b" "
        streaming["ended"] = time.monotonic()
        yield body[1:]

    async def run() -> tuple[httpx.Response, list[tuple[httpx.Response, float]], float]:
        async with http(server, token) as client:
            assert (await client.put("/api/v1/patients/pat-1", json=PATIENT)).status_code == 201
            batch = asyncio.create_task(
                client.post("/api/v1/batch", content=trickle(), headers={"Content-Type": "application/json"})
            )
            await asyncio.sleep(0.5)  # the batch request is in, its token checked, its body streaming
            fast = await asyncio.gather(
                *(timed(client, "GET", "/api/v1/patients/pat-1") for _ in range(20)),
                *(
                    timed(
                        client,
                        "PUT",
                        f"/api/v1/patients/fast-{n}",
                        json={**PATIENT, "phone": f"+1 555 05{n:02d}"},
                    )
                    for n in range(10)
                ),
            )
            fast_done_at = time.monotonic()
            others_done.set()
            return await batch, fast, fast_done_at

    batch, fast, fast_done_at = asyncio.run(run())
    assert [r.status_code for r, _ in fast] == [200] * 20 + [201] * 10
    assert max(seconds for _, seconds in fast) < FAST_SECONDS
    assert fast_done_at <= streaming["ended"]  # answered while the batch body was still arriving
    assert batch.status_code == 200, batch.text
    assert batch.json()["created"] == 3


@pytest.fixture
def tight_server(settings: Settings) -> Iterator[LiveServer]:
    """One connection, short waits: the 503 paths within a second."""
    tight = settings.model_copy(
        update={
            "worker_threads": 4,
            "db_pool_size": 1,
            "db_max_overflow": 0,
            "db_pool_timeout_seconds": 0.5,
            "db_lock_timeout_seconds": 0.5,
        }
    )
    with live_server(tight) as live:
        yield live


def assert_retry_later(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    assert response.headers["content-type"] == "application/json"
    assert "busy" in response.json()["detail"] or "connection" in response.json()["detail"]


def test_no_free_connection_is_503_with_retry_after(tight_server: LiveServer) -> None:
    token = clinic_token(tight_server, "pool")
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{tight_server.base_url}/api/v1/patients/pat-1"
    with tight_server.app.state.engine.connect():  # the pool's only connection
        started = time.perf_counter()
        assert_retry_later(httpx.get(url, headers=headers, timeout=30))
        assert_retry_later(httpx.put(url, json=PATIENT, headers=headers, timeout=30))
        assert time.perf_counter() - started < FAST_SECONDS
    assert httpx.put(url, json=PATIENT, headers=headers, timeout=30).status_code == 201  # nothing was written


def test_a_held_write_lock_is_503_for_writes_and_reads_still_answer(tight_server: LiveServer) -> None:
    token = clinic_token(tight_server, "locked")
    headers = {"Authorization": f"Bearer {token}"}
    base = f"{tight_server.base_url}/api/v1/patients"
    assert httpx.put(f"{base}/pat-1", json=PATIENT, headers=headers, timeout=30).status_code == 201
    # another process's writer: SQLite's write lock, or on PostgreSQL a lock that blocks row writes
    locker = make_engine(Settings(database_url=tight_server.app.state.settings.database_url))
    try:
        with locker.connect() as connection:
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql("LOCK TABLE record IN EXCLUSIVE MODE")
            else:  # a write connection's transaction begins with BEGIN IMMEDIATE
                connection.exec_driver_sql("SELECT 1")
            changed = {**PATIENT, "phone": "+1 555 0600"}
            assert_retry_later(httpx.put(f"{base}/pat-1", json=changed, headers=headers, timeout=30))
            assert_retry_later(httpx.put(f"{base}/pat-2", json=PATIENT, headers=headers, timeout=30))
            read = httpx.get(f"{base}/pat-1", headers=headers, timeout=30)  # reads take no write lock
            assert read.status_code == 200
            assert read.json()["record"]["phone"] == PATIENT["phone"]
            connection.rollback()
    finally:
        locker.dispose()
    again = httpx.put(f"{base}/pat-2", json=PATIENT, headers=headers, timeout=30)
    assert again.status_code == 201  # the refused PUT wrote nothing
