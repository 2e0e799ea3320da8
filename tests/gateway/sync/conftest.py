"""Fixtures of the sync unit tests: fast retry settings, a fake EHR behind every connection's client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from support.fake_ehr import FakeEhr

from gateway.core.config import Settings
from gateway.db.engine import session_scope
from gateway.db.repositories import sync as sync_repo
from gateway.db.tables import EhrConnectionRow, utcnow
from gateway.sync import connections
from gateway.sync.keys import generate_key, load_private_key
from gateway.sync.smart_client import Endpoint, SmartClient

KEY = generate_key("ES384", "k")
CAPS = {
    "transaction": {"mode": "transaction"},
    "conditional": {"mode": "conditional"},
    "search": {"mode": "search"},
}


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "sync_backoff_base_seconds": 0.01,
            "sync_backoff_cap_seconds": 0.05,
            "sync_breaker_failures": 3,
            "sync_breaker_pause_seconds": 30,
        }
    )


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeEhr]:
    ehr = FakeEhr()
    key_file = tmp_path / "k.pem"
    key_file.write_bytes(KEY.private_pem)
    clients: dict[int, SmartClient] = {}

    def client_for(row: EhrConnectionRow, settings: Settings) -> SmartClient:
        assert row.id is not None
        if row.id not in clients:
            endpoint = Endpoint(
                row.fhir_base,
                "https://ehr.test/token",
                row.client_id,
                row.scope,
                "ES384",
                "k",
                load_private_key(alg="ES384", path=str(key_file)),
            )
            clients[row.id] = SmartClient(endpoint, timeout=5, transport=ehr.transport())
        return clients[row.id]

    monkeypatch.setattr(connections, "client_for", client_for)
    ehr.key_file = key_file  # type: ignore[attr-defined]
    yield ehr
    for client in clients.values():
        client.close()


@pytest.fixture
def add_connection():
    """Creates the demo clinic's connection to the fake EHR, probed as ``mode``; returns its pk."""
    return _add_connection


def _add_connection(
    engine: Engine,
    settings: Settings,
    fake: FakeEhr,
    *,
    mode: str = "transaction",
    push: list[str] | None = None,
) -> int:
    with session_scope(engine) as session:
        row = connections.create_connection(
            session,
            settings,
            clinic_slug="demo",
            name="h",
            fhir_base="https://ehr.test/fhir",
            client_id="gw",
            private_key_file=str(fake.key_file),
            kid="k",
            alg="ES384",
            push=push,
            probe=False,  # type: ignore[attr-defined]
        )
        assert row.id is not None
        sync_repo.update_connection(
            session,
            pk=row.id,
            values={"capabilities": CAPS[mode], "token_url": "https://ehr.test/token", "probed_at": utcnow()},
        )
        session.commit()
        return row.id
