"""`kap-gateway users` and `kap-gateway signing-keys`: clinician users and id_token key rotation."""

from __future__ import annotations

import json

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from sqlmodel import Session, select
from support.launch import PASSWORD, PATIENT, Launch, browse_to_code, make_app, patient_id
from typer.testing import CliRunner

from gateway.cli import app as cli_app
from gateway.core.config import get_settings
from gateway.db.tables import ClientRow, SigningKeyRow, UserRow


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("KAPGW_DATABASE_URL", database_url)
    monkeypatch.setenv("KAPGW_BASE_URL", "http://testserver")
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def run(runner: CliRunner, *args: str, input: str | None = None, code: int = 0):
    result = runner.invoke(cli_app, list(args), input=input)
    assert result.exit_code == code, result.output
    return result


def test_users_create_then_sign_in(cli, client, engine, clinic) -> None:
    clinic.put("patients", "p-1", PATIENT)
    result = run(
        cli,
        "users",
        "create",
        "--username",
        "dr-a",
        "--clinic",
        clinic.slug,
        "--practitioner",
        "pr-7",
        "--password-stdin",
        input=PASSWORD + "\n",
    )
    created = json.loads(result.stdout)
    assert created["username"] == "dr-a" and created["clinics"] == [clinic.slug]
    assert created["fhirUser"].startswith("http://testserver/fhir/Practitioner/")
    with Session(engine) as session:
        user = session.exec(select(UserRow)).one()
        assert user.password_hash.startswith("scrypt$") and PASSWORD not in user.password_hash
    launch = Launch(make_app(engine, clinic.slug), aud="http://testserver/fhir")
    redirect = browse_to_code(client, launch, patient=patient_id(clinic.slug, "p-1"))
    assert redirect["code"]
    listed = run(cli, "users", "list").stdout
    assert "dr-a" in listed and "scrypt" not in listed


def test_users_create_with_a_prompt(cli, clinic) -> None:
    run(
        cli,
        "users",
        "create",
        "--username",
        "dr-b",
        "--clinic",
        clinic.slug,
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )


@pytest.mark.parametrize(
    ("args", "password", "message"),
    [
        pytest.param(
            ["--username", "dr-a", "--clinic", "nowhere"], PASSWORD, "clinic nowhere", id="unknown-clinic"
        ),
        pytest.param(["--username", "dr a", "--clinic", "clinic-a"], PASSWORD, "username", id="bad-username"),
        pytest.param(
            ["--username", "dr-a", "--clinic", "clinic-a"], "short", "password", id="short-password"
        ),
    ],
)
def test_users_create_operator_errors(cli, clinic, args, password, message) -> None:
    result = run(cli, "users", "create", *args, "--password-stdin", input=password + "\n", code=1)
    assert result.stderr.startswith("error: ") and message in result.stderr


def test_duplicate_user_is_refused(cli, clinic) -> None:
    args = ["users", "create", "--username", "dr-a", "--clinic", clinic.slug, "--password-stdin"]
    run(cli, *args, input=PASSWORD + "\n")
    assert "exists" in run(cli, *args, input=PASSWORD + "\n", code=1).stderr


def _id_token(client, engine, clinic_slug: str) -> str:
    launch = Launch(
        make_app(engine, clinic_slug), aud="http://testserver/fhir", scope="openid fhirUser user/*.rs"
    )
    code = browse_to_code(client, launch)["code"]
    response = client.post("/auth/token", data=launch.token_form(code))
    assert response.status_code == 200, response.text
    return response.json()["id_token"]


def test_signing_key_rotation(cli, client, engine, clinic) -> None:
    run(
        cli,
        "users",
        "create",
        "--username",
        "dr-a",
        "--clinic",
        clinic.slug,
        "--password-stdin",
        input=PASSWORD,
    )
    old_token = _id_token(client, engine, clinic.slug)
    old_kid = jwt.decode(old_token, KeySet.import_key_set(client.get("/auth/jwks").json())).header["kid"]
    new_kid = json.loads(run(cli, "signing-keys", "rotate").stdout)["kid"]
    assert new_kid != old_kid
    jwks = client.get("/auth/jwks").json()
    assert {k["kid"] for k in jwks["keys"]} == {old_kid, new_kid}  # the retired key is still served
    keys = KeySet.import_key_set(jwks)
    assert jwt.decode(old_token, keys, algorithms=["RS256"]).claims["aud"]
    new_token = _id_token(client, engine, clinic.slug)
    assert jwt.decode(new_token, keys, algorithms=["RS256"]).header["kid"] == new_kid
    listed = [json.loads(line) for line in run(cli, "signing-keys", "list").stdout.splitlines()]
    assert {k["kid"] for k in listed} == {old_kid, new_kid}


def test_private_keys_are_sealed_in_the_database(cli, client, engine, clinic) -> None:
    run(cli, "signing-keys", "rotate")
    with Session(engine) as session:
        row = session.exec(select(SigningKeyRow)).one()
    assert "PRIVATE KEY" not in row.sealed_private_key
    assert "d" not in row.public_jwk and row.public_jwk["kty"] == "RSA"


def _create_app(cli, *args: str, code: int = 0):
    return run(cli, "clients", "create", "--kind", "app", "--name", "Test app", *args, code=code)


def test_clients_create_app_kinds(cli, client, engine, clinic, tmp_path) -> None:
    base = ["--clinic", clinic.slug, "--redirect-uri", "https://app.test/callback"]
    public = json.loads(_create_app(cli, *base, "--public").stdout)
    assert set(public) == {"client_id", "token_endpoint_auth_method"}
    assert public["token_endpoint_auth_method"] == "none"
    symmetric = json.loads(_create_app(cli, *base, "--scope", "launch/patient patient/*.rs openid").stdout)
    assert symmetric["token_endpoint_auth_method"] == "client_secret_basic" and symmetric["client_secret"]
    key = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS384"})
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    asymmetric = json.loads(_create_app(cli, *base, "--jwks-file", str(jwks_file)).stdout)
    assert asymmetric["token_endpoint_auth_method"] == "private_key_jwt" and "client_secret" not in asymmetric
    with Session(engine) as session:
        rows = {row.client_id: row for row in session.exec(select(ClientRow).where(ClientRow.kind == "app"))}
    assert rows[symmetric["client_id"]].scopes == "launch/patient patient/*.rs openid"
    assert rows[public["client_id"]].redirect_uris == "https://app.test/callback"
    assert rows[asymmetric["client_id"]].jwks == {"keys": [key.as_dict(private=False)]}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--clinic", "clinic-a"], "redirect", id="no-redirect-uri"),
        pytest.param(["--clinic", "clinic-a", "--redirect-uri", "http://app.test/cb"], "https", id="http"),
        pytest.param(
            ["--clinic", "clinic-a", "--redirect-uri", "https://app.test/cb#x"], "fragment", id="fragment"
        ),
        pytest.param(
            ["--clinic", "nowhere", "--redirect-uri", "https://app.test/cb"], "nowhere", id="unknown-clinic"
        ),
        pytest.param(
            ["--clinic", "clinic-a", "--clinic", "clinic-a", "--redirect-uri", "https://a.test/cb"],
            "one --clinic",
            id="two-clinics",
        ),
        pytest.param(
            ["--clinic", "clinic-a", "--redirect-uri", "https://a.test/cb", "--scope", "patient/*.dus"],
            "scope",
            id="bad-scope",
        ),
    ],
)
def test_clients_create_app_errors(cli, clinic, args, message) -> None:
    result = _create_app(cli, *args, code=1 if "one --clinic" not in message else 2)
    assert message in result.output + result.stderr


def test_app_options_are_refused_for_other_kinds(cli, clinic) -> None:
    result = run(
        cli,
        "clients",
        "create",
        "--kind",
        "clinic",
        "--name",
        "x",
        "--clinic",
        clinic.slug,
        "--public",
        code=2,
    )
    assert "app clients" in result.output + result.stderr


def test_private_key_in_the_app_jwks_is_refused(cli, clinic, tmp_path) -> None:
    key = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS384"})
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps({"keys": [key.as_dict(private=True)]}))
    result = _create_app(
        cli,
        "--clinic",
        clinic.slug,
        "--redirect-uri",
        "https://a.test/cb",
        "--jwks-file",
        str(jwks_file),
        code=1,
    )
    assert "private" in result.stderr
