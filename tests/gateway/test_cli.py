"""The `kap-gateway` command line: clinics, clients, db upgrade, demo, and serve on the embedded default."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from gateway.cli import app
from gateway.core.config import get_settings


@pytest.fixture
def cli_env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("KAPGW_DATABASE_URL", database_url)
    monkeypatch.setenv("KAPGW_BASE_URL", "http://testserver")
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def run(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_clinic_client_token_round_trip(cli_env: CliRunner, client) -> None:
    run(cli_env, "db", "upgrade")
    assert json.loads(
        run(cli_env, "clinics", "create", "--slug", "bright-path", "--name", "Bright Path")
    ) == {"slug": "bright-path", "name": "Bright Path"}
    created = json.loads(
        run(
            cli_env,
            "clients",
            "create",
            "--kind",
            "clinic",
            "--clinic",
            "bright-path",
            "--name",
            "EMR connector",
        )
    )
    assert set(created) == {"client_id", "client_secret"}
    token = client.post(
        "/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(created["client_id"], created["client_secret"]),
    )
    assert token.status_code == 200


def test_duplicate_clinic_and_unknown_clinic_fail(cli_env: CliRunner) -> None:
    run(cli_env, "clinics", "create", "--slug", "bright-path", "--name", "Bright Path")
    assert (
        cli_env.invoke(app, ["clinics", "create", "--slug", "bright-path", "--name", "Again"]).exit_code != 0
    )
    result = cli_env.invoke(app, ["clients", "create", "--kind", "clinic", "--clinic", "nope", "--name", "x"])
    assert result.exit_code != 0


def test_demo_loads_and_prints_credentials(cli_env: CliRunner, client) -> None:
    output = run(cli_env, "demo", "--patients", "2")
    counts = json.loads(output[: output.index("}") + 1])
    assert counts["patients"] == 2 and counts["doses"] > 0
    client_id = output.split("client_id=")[1].split()[0]
    secret = output.split("client_secret=")[1].split()[0]
    token = client.post(
        "/auth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    ).json()
    patients = client.get(
        "/api/v1/patients", headers={"Authorization": f"Bearer {token['access_token']}"}
    ).json()
    assert len(patients["items"]) == 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_runs_on_the_embedded_default(tmp_path: Path) -> None:
    """`kap-gateway serve` with no settings: a SQLite file under ./data/, created and migrated by itself."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAPGW_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(150):
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz")
                break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("the gateway did not start")
        assert response.json() == {"status": "ok"}
        assert httpx.get(f"http://127.0.0.1:{port}/openapi.json").status_code == 200
        assert (tmp_path / "data" / "kap-gateway.db").exists()
    finally:
        process.terminate()
        process.wait(10)
