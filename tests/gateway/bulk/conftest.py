"""Bulk export fixtures: a small demo clinic (plus a second clinic it must never leak into), /fhir tokens
of ehr clients, kick-off and worker helpers.

``token`` is a real SMART Backend Services token (tests/support/smart.py); ``make_token`` writes token rows
as the authorization server does, for other scopes, clinic grants and patient contexts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session
from support.tokens import write_token

from gateway.bulk.runner import run_export_turn
from gateway.core.config import Settings
from gateway.demo import load_demo

FHIR_JSON = "application/fhir+json"
NDJSON = "application/fhir+ndjson"
ASYNC = {"Accept": FHIR_JSON, "Prefer": "respond-async"}


@pytest.fixture
def settings(settings: Settings, tmp_path) -> Settings:
    """Small files (several per type) so file splitting and resuming are exercised."""
    return settings.model_copy(
        update={"export_dir": tmp_path / "exports", "export_file_max_resources": 150, "export_batch_size": 40}
    )


@pytest.fixture
def demo(engine: Engine, settings: Settings, client: TestClient) -> str:
    """The demo clinic with 3 synthetic patients, and clinic ``other`` with 1 (its own ids)."""
    with Session(engine, expire_on_commit=False) as session:
        load_demo(session, settings, slug="demo", patients=3, seed=1, start=date(2026, 1, 5))
        load_demo(session, settings, slug="other", patients=1, seed=2, start=date(2026, 2, 2))
    return "demo"


@pytest.fixture
def make_token(engine: Engine, settings: Settings) -> Callable[..., str]:
    """A bearer token of a new ehr client granted ``clinics`` with ``scope``."""

    def make(
        scope: str = "system/*.read", *, clinics: tuple[str, ...] = ("demo",), patient: str | None = None
    ) -> str:
        return write_token(engine, settings, scope=scope, clinics=clinics, patient=patient)

    return make


@pytest.fixture
def backend_client_token(demo: str, client: TestClient, engine: Engine) -> Callable[[], str]:
    """A real SMART Backend Services token of a new ehr client (synthetic keys of fixtures/keys, a signed
    private_key_jwt client_credentials request for system/*.read), granted the demo clinic."""
    from support.smart import backend_token, register_ehr_client

    def make() -> str:
        ehr = register_ehr_client(engine, clinics=("demo",), scope="system/*.read")
        return backend_token(client, ehr, scope="system/*.read")

    return make


@pytest.fixture
def token(backend_client_token) -> str:
    return backend_client_token()


def auth(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


def local(url: str) -> str:
    assert url.startswith("http://testserver/fhir/"), url
    return url.removeprefix("http://testserver")


@dataclass
class Export:
    """A finished export: the manifest and each output file's lines, parsed."""

    manifest: dict[str, Any]
    files: dict[str, list[dict[str, Any]]]
    raw: dict[str, bytes]

    def resources(self) -> list[dict[str, Any]]:
        """The exported resources (the ``output`` files)."""
        outputs = {item["url"] for item in self.manifest["output"]}
        return [r for url, lines in self.files.items() if url in outputs for r in lines]

    def deleted(self) -> list[dict[str, Any]]:
        """The ``deleted`` files' Bundles."""
        urls = {item["url"] for item in self.manifest.get("deleted", [])}
        return [r for url, lines in self.files.items() if url in urls for r in lines]

    def ids(self) -> list[tuple[str, str]]:
        return [(r["resourceType"], r["id"]) for r in self.resources()]


def drain(engine: Engine, settings: Settings, owner: str = "test-worker") -> int:
    """Runs the export task until it finds no work; returns the number of turns."""
    turns = 0
    while run_export_turn(engine, settings, owner=owner):
        turns += 1
        assert turns < 1000, "the export never finished"
    return turns


@pytest.fixture
def export(client: TestClient, engine: Engine, settings: Settings) -> Callable[..., Export]:
    """Kick-off at ``path`` with ``params`` (GET), or with a ``Parameters`` resource (POST), run the
    worker, fetch the manifest and every file (``output``, ``error`` and ``deleted``)."""

    def run(
        path: str,
        token: str,
        params: Any = None,
        headers: dict[str, str] | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> Export:
        sent = auth(token, **{**ASYNC, **(headers or {})})
        if parameters is not None:
            body = orjson.dumps(parameters)
            sent["Content-Type"] = FHIR_JSON
            kicked = client.post(f"/fhir/{path}", content=body, headers=sent)
        else:
            kicked = client.get(f"/fhir/{path}", params=params, headers=sent)
        assert kicked.status_code == 202, kicked.text
        status_path = local(kicked.headers["Content-Location"])
        drain(engine, settings)
        status = client.get(status_path, headers=auth(token, Accept="application/json"))
        assert status.status_code == 200, status.text
        manifest = status.json()
        files: dict[str, list[dict[str, Any]]] = {}
        raw: dict[str, bytes] = {}
        for item in manifest["output"] + manifest["error"] + manifest.get("deleted", []):
            got = client.get(local(item["url"]), headers=auth(token, Accept=NDJSON))
            assert got.status_code == 200, got.text
            assert got.headers["content-type"].startswith(NDJSON)
            lines = got.content.split(b"\n")
            assert lines[-1] == b""
            parsed = [orjson.loads(line) for line in lines[:-1]]
            assert all(r["resourceType"] == item["type"] for r in parsed)
            assert len(parsed) == item["count"]
            files[item["url"]] = parsed
            raw[item["url"]] = got.content
        return Export(manifest, files, raw)

    return run


def store_rows(
    engine: Engine, clinic: str, types: tuple[str, ...] | None = None
) -> dict[tuple[str, str], bytes]:
    """The store's current, non-deleted resources of a clinic: (type, id) -> stored JSON."""
    query = (
        "SELECT r.resource_type, r.resource_id, r.content FROM resource r JOIN clinic c ON c.id = r.clinic_pk"
        " WHERE c.slug = :slug AND r.deleted = :no"
    )
    with engine.connect() as connection:
        rows = connection.execute(text(query), {"slug": clinic, "no": False})
        return {
            (r.resource_type, r.resource_id): bytes(r.content)
            for r in rows
            if types is None or r.resource_type in types
        }
