"""kap-gateway keys / connections / sync commands (the EHR itself: tests/integration)."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from gateway.core.config import get_settings


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("KAPGW_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def run(runner: CliRunner, *args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, (result.output, result.stderr if hasattr(result, "stderr") else "")
    return result.output


def test_keys_generate_writes_a_private_file_and_prints_only_the_public_jwks(
    cli: CliRunner, tmp_path: Path
) -> None:
    key = tmp_path / "gw.pem"
    jwks = json.loads(run(cli, "keys", "generate", "--out", str(key), "--alg", "ES384", "--kid", "gw-1"))
    (public,) = jwks["keys"]
    assert (public["kid"], public["alg"], public["kty"], public["crv"]) == ("gw-1", "ES384", "EC", "P-384")
    assert "d" not in public
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and b"PRIVATE KEY" in key.read_bytes()
    before = key.read_bytes()
    assert "exists" in run(cli, "keys", "generate", "--out", str(key), code=1)  # never overwrites a key
    assert key.read_bytes() == before


def test_connections_create_list_show_disable_and_sync_status(cli: CliRunner, tmp_path: Path) -> None:
    key = tmp_path / "gw.pem"
    run(cli, "keys", "generate", "--out", str(key))
    run(cli, "clinics", "create", "--slug", "c1", "--name", "Clinic 1")
    args = ["connections", "create", "--clinic", "c1", "--name", "gh", "--fhir-base", "https://ehr.test/fhir"]
    args += [
        "--client-id",
        "gw",
        "--kid",
        "k1",
        "--private-key-file",
        str(key),
        "--no-probe",
        "--push",
        "Patient,Encounter",
    ]
    created = json.loads(run(cli, *args))
    assert created["private_key"] == f"file:{key.resolve()}" and created["push"] == ["Patient", "Encounter"]
    assert "PRIVATE" not in json.dumps(created)
    run(cli, *args, code=1)  # the same name twice
    (listed,) = [json.loads(line) for line in run(cli, "connections", "list").splitlines()]
    assert listed["name"] == "gh" and listed["clinic"] == "c1"
    shown = json.loads(run(cli, "connections", "show", "--clinic", "c1", "--name", "gh"))
    assert shown["disabled"] is False
    assert (
        json.loads(run(cli, "connections", "disable", "--clinic", "c1", "--name", "gh"))["disabled"] is True
    )
    (line,) = [json.loads(s) for s in run(cli, "sync", "status").splitlines()]
    assert (line["connection"], line["pending"], line["dead"], line["disabled"]) == ("gh", 0, 0, True)
    assert run(cli, "sync", "dead-letters") == ""
    assert json.loads(run(cli, "sync", "replay", "--clinic", "c1")) == {"replayed": 0}


def test_a_connection_with_a_missing_key_is_one_line_of_error(cli: CliRunner, tmp_path: Path) -> None:
    run(cli, "clinics", "create", "--slug", "c2", "--name", "Clinic 2")
    result = CliRunner().invoke(
        app,
        [
            "connections",
            "create",
            "--clinic",
            "c2",
            "--name",
            "gh",
            "--fhir-base",
            "https://ehr.test/fhir",
            "--client-id",
            "gw",
            "--kid",
            "k1",
            "--private-key-file",
            str(tmp_path / "none.pem"),
            "--no-probe",
        ],
    )
    assert result.exit_code == 1
    assert "none.pem" in result.output and "Traceback" not in result.output
