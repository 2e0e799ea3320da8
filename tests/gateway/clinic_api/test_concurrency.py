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

from gateway.clinic_api.examples import RECORD_EXAMPLES
from gateway.core.config import Settings
from gateway.db.tables import RecordRow, ResourceRow, ResourceVersionRow
from support.live_server import LiveServer, clinic_token, live_server

PATIENT = RECORD_EXAMPLES["patients"][1]
FAST_SECONDS = 5.0  # "fast requests stay fast": generous for a shared 2-core CI machine


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
    assert max(seconds for _, seconds in results) < FAST_SECONDS


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
    assert max(seconds for _, seconds in results) < FAST_SECONDS
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
    assert max(seconds for _, seconds in results) < FAST_SECONDS
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
