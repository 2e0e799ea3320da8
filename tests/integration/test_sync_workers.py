"""Worker processes against the real hospital: a worker killed mid-batch (SIGKILL) and another taking over,
and two workers in parallel on PostgreSQL, lose and duplicate nothing."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from gateway.core.config import Settings
from integration.conftest import assert_exactly_once, connect, counts
from integration.peers import FaultProxy, Hospital

pytestmark = pytest.mark.integration


def _worker(settings: Settings, *, until_idle: bool, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "KAPGW_DATABASE_URL": settings.database_url,
        "KAPGW_IDENTIFIER_BASE": settings.identifier_base,
        "KAPGW_SYNC_LEASE_SECONDS": "3",
        "KAPGW_SYNC_BACKOFF_BASE_SECONDS": "0.05",
        "KAPGW_SYNC_BACKOFF_CAP_SECONDS": "1",
        "KAPGW_SYNC_HTTP_TIMEOUT_SECONDS": "5",
        "KAPGW_WORKER_POLL_SECONDS": "0.1",
        "KAPGW_LOG_JSON": "true",
    }
    command = [sys.executable, "-m", "gateway.cli", "worker", *(["--until-idle"] if until_idle else [])]
    with log.open("wb") as stderr:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)


def _wait_until(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def _finish(engine: Engine, settings: Settings, tmp_path: Path, timeout: float = 90) -> None:
    worker = _worker(settings, until_idle=False, log=tmp_path / "finisher.log")
    try:
        _wait_until(
            lambda: counts(engine).get("pending", 0) == 0 and counts(engine).get("delivered", 0) > 0, timeout
        )
    finally:
        worker.terminate()
        worker.wait(timeout=10)


def _sent_identities(proxy_log: list[bytes]) -> collections.Counter[str]:
    """How often each of our resources was sent as a create (our identifier in a POST)."""
    sent: collections.Counter[str] = collections.Counter()
    for body in proxy_log:
        parsed = json.loads(body)
        entries = (
            [e for e in parsed.get("entry", []) if e.get("request", {}).get("method") == "POST"]
            if parsed.get("resourceType") == "Bundle"
            else [{"resource": parsed}]
        )
        for entry in entries:
            resource = entry.get("resource") or {}
            identifiers = resource.get("identifier") or []
            identifiers = identifiers if isinstance(identifiers, list) else [identifiers]
            tags = resource.get("meta", {}).get("tag", [])
            for mark in [i.get("value") for i in identifiers] + [t.get("code") for t in tags]:
                if isinstance(mark, str) and mark.startswith("urn:uuid:"):
                    sent[f"{resource.get('resourceType')}/{mark}"] += 1
    return sent


def test_a_worker_killed_mid_batch_loses_and_duplicates_nothing(
    engine: Engine, sync_settings: Settings, demo: str, ehr: Hospital, proxy: FaultProxy, tmp_path: Path
) -> None:
    connect(engine, sync_settings, ehr, fhir_base=proxy.base)
    victim = _worker(sync_settings, until_idle=False, log=tmp_path / "victim.log")
    try:
        _wait_until(lambda: counts(engine).get("delivered", 0) >= 50, 60)
    finally:
        victim.send_signal(signal.SIGKILL)  # mid-batch: its lease and claimed rows are left behind
        victim.wait(timeout=10)
    assert counts(engine).get("pending", 0) > 0, "the worker was killed before it finished"
    _finish(engine, sync_settings, tmp_path)
    assert_exactly_once(engine, ehr)
    assert counts(engine).keys() == {"delivered"}


@pytest.mark.backends("postgresql")  # parallel worker processes: SQLite has one writer
def test_two_workers_in_parallel_never_send_the_same_item_twice(
    engine: Engine,
    sync_settings: Settings,
    demo: str,
    ehr: Hospital,
    proxy: FaultProxy,
    tmp_path: Path,
    database_url: str,
) -> None:
    connect(engine, sync_settings, ehr, fhir_base=proxy.base)
    proxy.record_bodies = True
    workers = [_worker(sync_settings, until_idle=False, log=tmp_path / f"w{i}.log") for i in range(2)]
    try:
        _wait_until(
            lambda: counts(engine).get("pending", 0) == 0 and counts(engine).get("delivered", 0) > 0, 120
        )
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait(timeout=10)
    assert_exactly_once(engine, ehr)
    sent = _sent_identities(proxy.bodies)
    assert sent and max(sent.values()) == 1, [k for k, v in sent.items() if v > 1][:3]
