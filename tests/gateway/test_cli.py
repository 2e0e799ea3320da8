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
from gateway.core.config import Settings, get_settings


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


def fails(runner: CliRunner, *args: str, env: dict[str, str] | None = None, status: int = 1) -> str:
    """Runs a command that must fail as an operator error: one line on stderr, no traceback, exit 1."""
    get_settings.cache_clear()
    result = runner.invoke(app, list(args), env=env)
    get_settings.cache_clear()
    assert result.exit_code == status, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # not an uncaught exception
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_duplicate_clinic_and_unknown_clinic_fail(cli_env: CliRunner) -> None:
    run(cli_env, "clinics", "create", "--slug", "bright-path", "--name", "Bright Path")
    assert (
        fails(cli_env, "clinics", "create", "--slug", "bright-path", "--name", "Again")
        == "error: clinic bright-path exists"
    )
    assert (
        fails(cli_env, "clients", "create", "--kind", "clinic", "--clinic", "nope", "--name", "x")
        == "error: clinic nope is not known"
    )
    assert json.loads(run(cli_env, "clinics", "list")) == {"slug": "bright-path", "name": "Bright Path"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["clinics", "create", "--slug", "Bright Path", "--name", "x"], "slug 'Bright Path'", id="slug"
        ),
        pytest.param(["clinics", "create", "--slug", "-x", "--name", "x"], "slug '-x'", id="slug-dash"),
        pytest.param(
            ["clinics", "create", "--slug", "a" * 64, "--name", "x"], "1-63 characters", id="slug-long"
        ),
        pytest.param(
            ["clinics", "create", "--slug", "ok", "--name", " "], "clinic name: 1 to 200", id="name"
        ),
        pytest.param(
            ["clinics", "create", "--slug", "ok", "--name", "x" * 201], "clinic name", id="name-long"
        ),
        pytest.param(["demo", "--slug", "Demo Clinic"], "slug 'Demo Clinic'", id="demo-slug"),
        pytest.param(["db", "upgrade", "9999"], "migration: Can't locate revision", id="db-revision"),
    ],
)
def test_bad_values_are_one_line(cli_env: CliRunner, args: list[str], message: str) -> None:
    assert message in fails(cli_env, *args)


def test_client_name_is_checked(cli_env: CliRunner) -> None:
    run(cli_env, "clinics", "create", "--slug", "bright-path", "--name", "Bright Path")
    line = fails(cli_env, "clients", "create", "--kind", "clinic", "--clinic", "bright-path", "--name", "")
    assert line == "error: client name: 1 to 200 characters"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param(
            {"KAPGW_ENV": "production", "KAPGW_BASE_URL": "https://kap.example.org"},
            "error: settings: KAPGW_TOKEN_SIGNING_SECRET must be set in production",
            id="production-without-secret",
        ),
        pytest.param(
            {
                "KAPGW_ENV": "production",
                "KAPGW_BASE_URL": "http://kap.example.org",
                "KAPGW_TOKEN_SIGNING_SECRET": "s",
            },
            "error: settings: KAPGW_BASE_URL must be https in production (http only for localhost)",
            id="production-http",
        ),
        pytest.param(
            {"KAPGW_ACCESS_TOKEN_LIFETIME_SECONDS": "30"},
            "error: settings: KAPGW_ACCESS_TOKEN_LIFETIME_SECONDS: Input should be greater than or equal to 60",
            id="token-lifetime-too-short",
        ),
        pytest.param(
            {"KAPGW_ACCESS_TOKEN_LIFETIME_SECONDS": "1h"},
            "error: settings: KAPGW_ACCESS_TOKEN_LIFETIME_SECONDS: Input should be a valid integer",
            id="token-lifetime-not-a-number",
        ),
        pytest.param(
            {"KAPGW_DATABASE_URL": "mysql://u@h/db"},
            "error: settings: KAPGW_DATABASE_URL: must be a sqlite:/// or postgresql:// URL",
            id="database-url",
        ),
        pytest.param(
            {"KAPGW_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/kapgw"},
            "error: cannot connect to the database (KAPGW_DATABASE_URL): connection failed",
            id="database-unreachable",
        ),
    ],
)
def test_bad_settings_are_one_line(cli_env: CliRunner, env: dict[str, str], message: str) -> None:
    commands = [["clinics", "list"], ["db", "upgrade"], ["demo", "--patients", "1"]]
    if "cannot connect" not in message:  # serve checks the settings at once, the database on a request
        commands.append(["serve", "--port", str(free_port())])
    for command in commands:
        assert fails(cli_env, *command, env=env).startswith(message), command


def test_an_unusable_sqlite_path_is_one_line(cli_env: CliRunner, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    line = fails(cli_env, "clinics", "list", env={"KAPGW_DATABASE_URL": f"sqlite:///{blocker}/data/x.db"})
    assert line.startswith(f"error: {blocker}") and "Not a directory" in line


def test_a_database_without_the_schema_is_one_line(cli_env: CliRunner, database_url: str) -> None:
    """PostgreSQL is migrated by `db upgrade` (commands say so); the embedded SQLite upgrades itself."""
    from gateway.db.engine import make_engine
    from gateway.db.migrate import downgrade, upgrade

    engine = make_engine(Settings(database_url=database_url))
    downgrade(engine, "base")
    try:
        if database_url.startswith("sqlite"):
            assert run(cli_env, "clinics", "list") == ""
        else:
            line = fails(cli_env, "clinics", "list")
            assert (
                line == "error: the database schema is missing or out of date: run `kap-gateway db upgrade`"
            )
            run(cli_env, "db", "upgrade")
            assert run(cli_env, "clinics", "list") == ""
    finally:
        upgrade(engine)
        engine.dispose()


def test_a_bad_demo_start_date_is_a_usage_error(cli_env: CliRunner) -> None:
    result = cli_env.invoke(app, ["demo", "--start", "2026-13-01"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "Invalid value for '--start'" in result.stderr


def test_demo_loads_and_prints_credentials(cli_env: CliRunner, client) -> None:
    output = run(cli_env, "demo", "--patients", "2")
    counts = json.loads(output[: output.index("}") + 1])
    assert counts["patients"] == 2 and counts["doses"] > 0
    assert "loading records" not in output  # no progress bar when stderr is no terminal
    client_id = output.split("client_id=")[1].split()[0]
    secret = output.split("client_secret=")[1].split()[0]
    token = client.post(
        "/auth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    ).json()
    patients = client.get(
        "/api/v1/patients", headers={"Authorization": f"Bearer {token['access_token']}"}
    ).json()
    assert len(patients["items"]) == 2


def test_demo_shows_a_progress_bar_on_a_terminal(cli_env: CliRunner) -> None:
    result = cli_env.invoke(app, ["demo", "--patients", "3"], env={"TTY_COMPATIBLE": "1", "COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout[: result.stdout.index("}") + 1])  # stdout stays clean
    total = sum(counts.values())
    assert "loading records" in result.stderr
    assert f"{total}/{total}" in result.stderr
    assert "100%" in result.stderr


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
