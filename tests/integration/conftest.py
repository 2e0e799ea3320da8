"""Fixtures of the sync integration tests: a real hospital (Medplum + oidc-provider) per test, a fault proxy
in front of it, the demo clinic, and helpers that run the sync worker and check the hospital's holdings."""

from __future__ import annotations

import collections
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from gateway.core.config import Settings
from gateway.db.engine import session_scope
from gateway.db.tables import EhrConnectionRow, utcnow
from gateway.demo import load_demo
from gateway.sync import connections, shaping
from gateway.sync.outbox import Deliverer
from integration.peers import FaultProxy, Hospital, hospital, upstream_root

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _close_ehr_clients() -> Iterator[None]:
    yield
    connections.close_clients()


@pytest.fixture
def sync_settings(settings: Settings) -> Settings:
    """Fast retries and short timeouts, so fault tests finish in seconds."""
    return settings.model_copy(
        update={
            "sync_backoff_base_seconds": 0.05,
            "sync_backoff_cap_seconds": 1.5,
            "sync_http_timeout_seconds": 1.5,
            "sync_breaker_failures": 4,
            "sync_breaker_pause_seconds": 0.3,
            "sync_lease_seconds": 20,
        }
    )


@pytest.fixture
def demo(engine: Engine, sync_settings: Settings) -> str:
    with session_scope(engine) as session:
        load_demo(session, sync_settings, slug="demo", patients=1, seed=7, start=date(2026, 1, 5))
    return "demo"


@pytest.fixture
def ehr(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Hospital]:
    advertise = getattr(request, "param", "transaction,conditional-create")
    with hospital(tmp_path, advertise=advertise) as h:
        yield h


@pytest.fixture
def proxy(ehr: Hospital) -> Iterator[FaultProxy]:
    p = FaultProxy(upstream_root(ehr.fhir_base)).start()
    yield p
    p.stop()


def connect(
    engine: Engine, settings: Settings, ehr: Hospital, *, fhir_base: str, clinic: str = "demo"
) -> EhrConnectionRow:
    with session_scope(engine) as session:
        return connections.create_connection(
            session,
            settings,
            clinic_slug=clinic,
            name="general-hospital",
            fhir_base=fhir_base,
            client_id=ehr.client_id,
            private_key_file=str(ehr.key_file),
            kid=ehr.kid,
        )


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as c:
        return {
            r[0]: int(r[1]) for r in c.execute(text("SELECT status, count(*) FROM outbox GROUP BY status"))
        }


def drain(
    engine: Engine,
    settings: Settings,
    *,
    timeout: float = 90,
    deliverer: Deliverer | None = None,
    allow_pending: int = 0,
) -> None:
    """Runs upkeep and delivery until at most ``allow_pending`` rows are pending (waiting out backoffs), or
    fails after ``timeout``."""
    deliverer = deliverer or Deliverer(engine, settings)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        connections.upkeep(engine, settings, now=utcnow())
        if deliverer.run_once():
            continue
        if counts(engine).get("pending", 0) <= allow_pending:
            return
        time.sleep(0.05)
    raise AssertionError(f"sync did not finish in {timeout} s: {counts(engine)}")


@dataclass
class Holdings:
    """What the hospital holds, by our resource's (type, id), and every reference it holds."""

    by_ours: dict[tuple[str, str], list[dict[str, Any]]]
    ids: set[tuple[str, str]]
    references: list[tuple[str, str]]


def ours_expected(
    engine: Engine, push: tuple[str, ...] = connections.DEFAULT_PUSH
) -> dict[tuple[str, str], dict[str, Any]]:
    """Our current, not deleted resources of the pushed types (what the hospital must hold once each)."""
    out = {}
    with engine.connect() as c:
        for resource_type, resource_id, content in c.execute(
            text("SELECT resource_type, resource_id, content FROM resource WHERE deleted = :f"), {"f": False}
        ):
            if resource_type in push:
                out[(resource_type, resource_id)] = orjson.loads(content)
    return out


def holdings(ehr: Hospital, types: set[str]) -> Holdings:
    by_ours: dict[tuple[str, str], list[dict[str, Any]]] = collections.defaultdict(list)
    ids: set[tuple[str, str]] = set()
    references: list[tuple[str, str]] = []
    for resource_type in types:
        for resource in ehr.resources(resource_type):
            ids.add((resource_type, resource["id"]))
            marks = [i.get("value") for i in resource.get("identifier") or [] if isinstance(i, dict)] + [
                t.get("code") for t in (resource.get("meta") or {}).get("tag") or []
            ]
            for mark in marks:
                if isinstance(mark, str) and mark.startswith("urn:uuid:"):
                    by_ours[(resource_type, mark.removeprefix("urn:uuid:"))].append(resource)
            references += sorted(shaping.references(resource))
    return Holdings(dict(by_ours), ids, references)


def assert_exactly_once(engine: Engine, ehr: Hospital) -> Holdings:
    """Every one of our resources is at the hospital exactly once, and every reference there resolves."""
    expected = ours_expected(engine)
    held = holdings(ehr, {t for t, _ in expected})
    missing = [ref for ref in expected if ref not in held.by_ours]
    doubled = {ref: len(v) for ref, v in held.by_ours.items() if len(v) != 1}
    assert not missing, f"{len(missing)} resources never arrived, e.g. {missing[:3]}"
    assert not doubled, f"resources held more than once: {list(doubled.items())[:3]}"
    extra = set(held.by_ours) - set(expected)
    assert not extra, f"the hospital holds resources we do not have: {sorted(extra)[:3]}"
    dangling = [ref for ref in held.references if ref not in held.ids]
    assert not dangling, f"references to nothing at the hospital: {dangling[:3]}"
    return held
