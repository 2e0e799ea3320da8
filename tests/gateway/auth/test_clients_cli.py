"""`kap-gateway clients create --kind ehr|admin`: registration of backend-services and admin clients."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import Session, select
from support.smart import KEYS, private_jwk, sign_assertion, token_form
from typer.testing import CliRunner

from gateway.cli import app
from gateway.core.config import get_settings
from gateway.db.repositories import clinics as clinic_repo
from gateway.db.tables import ClientRow

AUD = "http://testserver/auth/token"


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("KAPGW_DATABASE_URL", database_url)
    monkeypatch.setenv("KAPGW_BASE_URL", "http://testserver")
    get_settings.cache_clear()
    runner = CliRunner()
    for slug in ("north", "south"):
        result = runner.invoke(app, ["clinics", "create", "--slug", slug, "--name", slug.title()])
        assert result.exit_code == 0, result.output
    yield runner
    get_settings.cache_clear()


def invoke(runner: CliRunner, *args: str):
    return runner.invoke(app, ["clients", "create", *args])


def test_ehr_client_with_jwks_file_gets_a_backend_token(cli, client, engine) -> None:
    result = invoke(
        cli,
        "--kind", "ehr", "--name", "Hospital EHR", "--clinic", "north", "--clinic", "south",
        "--jwks-file", str(KEYS / "backend.jwks.json"), "--scope", "system/*.rs",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)
    assert set(created) == {"client_id"}
    with Session(engine) as session:
        row = session.exec(select(ClientRow).where(ClientRow.client_id == created["client_id"])).one()
        assert row.kind == "ehr" and row.token_endpoint_auth_method == "private_key_jwt"
        assert row.secret_hash is None and row.jwks_uri is None
        assert len(clinic_repo.granted_clinic_pks(session, client_pk=row.id)) == 2
    response = client.post("/auth/token", data=token_form(sign_assertion(created["client_id"], AUD)))
    assert response.status_code == 200, response.text


def test_ehr_client_with_jwks_url(cli, engine) -> None:
    result = invoke(
        cli, "--kind", "ehr", "--name", "EHR", "--clinic", "north", "--jwks-url", "https://ehr.test/jwks.json"
    )
    assert result.exit_code == 0, result.output
    with Session(engine) as session:
        row = session.exec(select(ClientRow).where(ClientRow.kind == "ehr")).one()
        assert row.jwks_uri == "https://ehr.test/jwks.json" and row.jwks is None
        assert row.scopes == "system/*.rs"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--clinic", "north"], "exactly one of", id="no-keys"),
        pytest.param(
            ["--clinic", "north", "--jwks-url", "https://a.test/j", "--jwks-file", "KEYS"],
            "exactly one of",
            id="both",
        ),
        pytest.param(["--clinic", "north", "--jwks-url", "http://ehr.test/jwks"], "https", id="http-url"),
        pytest.param(["--jwks-url", "https://a.test/j"], "at least one clinic", id="no-clinic"),
        pytest.param(
            ["--clinic", "nowhere", "--jwks-url", "https://a.test/j"], "not known", id="unknown-clinic"
        ),
        pytest.param(
            ["--clinic", "north", "--jwks-url", "https://a.test/j", "--scope", "patient/*.rs"],
            "system/",
            id="patient",
        ),
        pytest.param(
            ["--clinic", "north", "--jwks-url", "https://a.test/j", "--scope", "system/*.dus"],
            "system/",
            id="bad",
        ),
        pytest.param(["--clinic", "north", "--jwks-file", "PRIVATE"], "private key", id="private-key"),
    ],
)
def test_bad_ehr_registrations_write_nothing(cli, engine, tmp_path: Path, args, message) -> None:
    private = tmp_path / "private.json"
    private.write_text(json.dumps({"keys": [private_jwk("backend-rs384")]}))
    args = [
        str(KEYS / "backend.jwks.json") if a == "KEYS" else str(private) if a == "PRIVATE" else a
        for a in args
    ]
    result = invoke(cli, "--kind", "ehr", "--name", "EHR", *args)
    assert result.exit_code != 0
    assert message in result.output
    with Session(engine) as session:
        assert session.exec(select(ClientRow).where(ClientRow.kind == "ehr")).first() is None


def test_admin_client(cli, client) -> None:
    result = invoke(cli, "--kind", "admin", "--name", "Auditor")
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)
    token = client.post(
        "/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(created["client_id"], created["client_secret"]),
    )
    assert token.status_code == 200, token.text
    assert token.json()["scope"] == "admin/audit.read"
