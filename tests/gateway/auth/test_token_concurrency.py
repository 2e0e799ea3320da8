"""Parallel failed token requests against a real uvicorn server neither stall other requests nor fail with 5xx.

Issue 6: 4-8 parallel bad-secret requests used to freeze the whole service (scrypt and database work on
the event loop, with SQLite's write lock held through the hash). The bound below is generous for CI.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from sqlmodel import Session
from support.live_gateway import LiveGateway

from gateway.auth.clients import create_clinic, create_clinic_client

PARALLEL = 8
FAST_SECONDS = 5.0
GRANT = {"grant_type": "client_credentials"}


def burst_beside_probes(base_url: str, token: str, auths: list[tuple[str, str]]) -> tuple[list[int], list]:
    """Sends the token requests all at once while probing /healthz and a records GET; returns the token
    statuses and the probes as (path, status, seconds)."""
    done = threading.Event()
    probes: list[tuple[str, int, float]] = []

    def probe() -> None:
        with httpx.Client(base_url=base_url, timeout=60) as http:
            while not done.is_set():
                for path, headers in (
                    ("/healthz", {}),
                    ("/api/v1/patients", {"Authorization": f"Bearer {token}"}),
                ):
                    started = time.perf_counter()
                    status = http.get(path, headers=headers).status_code
                    probes.append((path, status, time.perf_counter() - started))

    barrier = threading.Barrier(len(auths))

    def bad_token(auth: tuple[str, str]) -> int:
        with httpx.Client(base_url=base_url, timeout=120) as http:
            barrier.wait(timeout=120)  # BrokenBarrierError, not a hang, if a sender never gets here
            return http.post("/auth/token", data=GRANT, auth=auth).status_code

    prober = threading.Thread(target=probe, daemon=True)  # never holds the interpreter open at exit
    prober.start()
    try:
        with ThreadPoolExecutor(len(auths)) as pool:
            statuses = list(pool.map(bad_token, auths))
    finally:
        done.set()
        prober.join(60)
        assert not prober.is_alive(), "the probe thread did not stop within 60 s"
    return statuses, probes


def assert_probes_fast(probes: list[tuple[str, int, float]]) -> None:
    assert {path for path, _, _ in probes} == {"/healthz", "/api/v1/patients"}
    assert all(status == 200 for _, status, _ in probes), probes
    slowest = max(seconds for _, _, seconds in probes)
    assert slowest < FAST_SECONDS, f"a request beside the token burst took {slowest:.1f} s"


def test_parallel_bad_secret_token_requests_do_not_stall_the_gateway(
    database_url: str, engine, tmp_path: Path
) -> None:
    with Session(engine, expire_on_commit=False) as session:
        create_clinic(session, slug="clinic-a", name="Clinic A")
        created = create_clinic_client(session, clinic_slug="clinic-a", name="test")
    with LiveGateway(database_url, workdir=tmp_path) as gateway:
        good = httpx.post(
            f"{gateway.base_url}/auth/token", data=GRANT, auth=(created.client_id, created.client_secret)
        )
        assert good.status_code == 200
        token = good.json()["access_token"]

        # eight unknown client ids: each below its own limit, so every request pays its scrypt
        statuses, probes = burst_beside_probes(
            gateway.base_url, token, [(f"guess-{i}", "wrong") for i in range(PARALLEL)]
        )
        assert statuses == [401] * PARALLEL
        assert_probes_fast(probes)

        # eight wrong secrets for the one known client: the limit (5) holds under concurrency
        statuses, probes = burst_beside_probes(
            gateway.base_url, token, [(created.client_id, "wrong")] * PARALLEL
        )
        assert sorted(statuses) == [401] * 5 + [429] * 3
        assert_probes_fast(probes)
