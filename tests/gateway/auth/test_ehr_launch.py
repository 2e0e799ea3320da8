"""SMART EHR launch (checklist AUTHZ-7, TOK-2, TOK-3, DISC-7): minting launches (CLI, admin API), the
launch at /auth/authorize (spent once, bound to the app), and the launch context in the token response."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import update
from sqlmodel import Session, col, select
from support.launch import (
    PASSWORD,
    PATIENT,
    Launch,
    hidden_inputs,
    make_app,
    make_user,
    patient_id,
    query_of,
)
from typer.testing import CliRunner

from gateway.auth.clients import create_admin_client
from gateway.auth.ehr_launch import InvalidLaunchError, create_launch
from gateway.cli import app as cli_app
from gateway.core.config import get_settings
from gateway.core.ids import resource_id
from gateway.db.tables import EhrLaunchRow, ResourceRow

AUD = "http://testserver/fhir"
LAUNCH_URL = "https://app.test/launch"
SCOPE = "launch openid fhirUser patient/*.rs user/*.rs"
SESSION = {
    "patient_id": "p-1",
    "kind": "integration",
    "start": "2026-11-09T10:00:00Z",
    "end": "2026-11-09T11:00:00Z",
    "status": "completed",
}


@pytest.fixture
def records(clinic):
    clinic.put("patients", "p-1", PATIENT)
    clinic.put("patients", "p-2", {**PATIENT, "given_name": "Bea"})
    clinic.put("sessions", "s-1", SESSION)
    clinic.put("sessions", "s-2", {**SESSION, "patient_id": "p-2"})
    return clinic


@pytest.fixture
def app(engine, records):
    make_user(engine, "dr-a", [records.slug])
    make_user(engine, "dr-b", [records.slug])
    return make_app(engine, records.slug, scope=SCOPE, launch_url=LAUNCH_URL)


def encounter_id(external_id: str) -> str:
    return resource_id("clinic-a", "sessions", external_id)


def mint(engine, settings, app, **kwargs):
    kwargs.setdefault("patient_id", patient_id("clinic-a", "p-1"))
    with Session(engine, expire_on_commit=False) as session:
        return create_launch(session, settings, client_id=app.client_id, **kwargs)


def authorize(client, app, launch_value: str | None, *, scope: str = SCOPE) -> tuple[Launch, object]:
    launch = Launch(app, aud=AUD, scope=scope)
    params = launch.params() if launch_value is None else launch.params(launch=launch_value)
    return launch, client.get("/auth/authorize", params=params, follow_redirects=False)


def sign_in_and_approve(client, page, *, username: str = "dr-a", patient: str | None = None):
    consent = client.post(
        "/auth/login", data={**hidden_inputs(page.text), "username": username, "password": PASSWORD}
    )
    assert consent.status_code == 200, consent.text
    data = {**hidden_inputs(consent.text), "decision": "approve"}
    if patient is not None:
        data["patient"] = patient
    return consent, client.post("/auth/consent", data=data, follow_redirects=False)


def exchange(client, launch: Launch, code: str):
    return client.post("/auth/token", data=launch.token_form(code))


# --- the happy path ---


def test_ehr_launch_with_patient_encounter_and_fhir_context(client, engine, settings, app) -> None:
    minted = mint(engine, settings, app, encounter_id=encounter_id("s-1"))
    launch_url = urlsplit(minted.url)
    assert minted.url.startswith(LAUNCH_URL + "?")
    sent = parse_qs(launch_url.query)
    assert sent["iss"] == [AUD] and minted.iss == AUD  # byte-identical to the FHIR base
    assert sent["launch"] == [minted.launch]
    launch, page = authorize(client, app, minted.launch)
    assert page.status_code == 200 and 'name="password"' in page.text
    consent, done = sign_in_and_approve(client, page)
    options = consent.text.count("<option ")
    assert options == 1 and patient_id("clinic-a", "p-1") in consent.text  # the launch fixed the patient
    assert done.status_code == 303
    redirect = query_of(done.headers["location"])
    assert set(redirect) == {"code", "state"} and redirect["state"] == launch.state
    response = exchange(client, launch, redirect["code"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["patient"] == patient_id("clinic-a", "p-1")
    assert body["encounter"] == encounter_id("s-1")
    assert body["need_patient_banner"] is True  # TOK-3: the key is present
    assert "fhirContext" not in body  # nothing beyond patient and encounter
    assert set(body["scope"].split()) == set(SCOPE.split())
    style = client.get(body["smart_style_url"].removeprefix("http://testserver"))
    assert style.status_code == 200 and style.headers["content-type"].startswith("application/json")
    assert style.json()["color_background"].startswith("#")
    introspected = client.post(
        "/auth/introspect",
        data={"token": body["access_token"]},
        headers={"Authorization": f"Bearer {body['access_token']}"},
    ).json()
    assert introspected["patient"] == body["patient"] and introspected["encounter"] == body["encounter"]


def test_fhir_context_lists_further_resources(client, engine, settings, app) -> None:
    with pytest.raises(InvalidLaunchError, match="--encounter"):  # SMART 2.2: not in fhirContext
        mint(engine, settings, app, fhir_context=[f"Encounter/{encounter_id('s-1')}"])
    with pytest.raises(InvalidLaunchError, match="not a resource of the app's clinic"):
        mint(engine, settings, app, fhir_context=["Observation/does-not-exist"])
    with pytest.raises(InvalidLaunchError, match="relative reference"):
        mint(engine, settings, app, fhir_context=["http://elsewhere.test/fhir/Observation/1"])
    with Session(engine) as session:  # a resource of the clinic other than the patient and encounters
        other = session.exec(
            select(ResourceRow).where(col(ResourceRow.resource_type).not_in(["Patient", "Encounter"]))
        ).first()
        assert other is not None
        reference = f"{other.resource_type}/{other.resource_id}"
    minted = mint(engine, settings, app, fhir_context=[reference])
    launch, page = authorize(client, app, minted.launch)
    _, done = sign_in_and_approve(client, page)
    body = exchange(client, launch, query_of(done.headers["location"])["code"]).json()
    assert body["fhirContext"] == [{"reference": reference, "type": other.resource_type}]
    assert "encounter" not in body


def test_launch_for_one_clinician(client, engine, settings, app) -> None:
    minted = mint(engine, settings, app, username="dr-a")
    _, page = authorize(client, app, minted.launch)
    _, done = sign_in_and_approve(client, page, username="dr-b")
    assert done.status_code == 303
    redirect = query_of(done.headers["location"])
    assert redirect["error"] == "access_denied" and "code" not in redirect


def test_form_cannot_swap_the_launch_patient(client, engine, settings, app) -> None:
    minted = mint(engine, settings, app)
    _, page = authorize(client, app, minted.launch)
    _, done = sign_in_and_approve(client, page, patient=patient_id("clinic-a", "p-2"))
    redirect = query_of(done.headers["location"])
    assert redirect["error"] == "access_denied" and "code" not in redirect


def test_auto_approve_uses_the_launch(engine, settings, app) -> None:
    from fastapi.testclient import TestClient

    from gateway.app import create_app

    auto = settings.model_copy(update={"launch_auto_approve": True, "launch_auto_approve_user": "dr-a"})
    minted = mint(
        engine, settings, app, encounter_id=encounter_id("s-2"), patient_id=patient_id("clinic-a", "p-2")
    )
    with TestClient(create_app(auto, migrate_sqlite=False)) as http:
        launch, done = authorize(http, app, minted.launch)
        assert done.status_code == 302
        body = exchange(http, launch, query_of(done.headers["location"])["code"]).json()
    assert body["patient"] == patient_id("clinic-a", "p-2") and body["encounter"] == encounter_id("s-2")


# --- negative cases (AUTHZ-7): an error redirect with invalid_request and no code ---


def _refused(response, error: str = "invalid_request") -> dict[str, str]:
    assert response.status_code == 302, response.text
    redirect = query_of(response.headers["location"])
    assert redirect["error"] == error and "code" not in redirect
    return redirect


def test_unknown_launch(client, app) -> None:
    launch, response = authorize(client, app, "not-a-launch")
    assert _refused(response)["state"] == launch.state


def test_reused_launch(client, engine, settings, app) -> None:
    minted = mint(engine, settings, app)
    _, first = authorize(client, app, minted.launch)
    assert first.status_code == 200
    _, second = authorize(client, app, minted.launch)
    _refused(second)


def test_expired_launch(client, engine, settings, app) -> None:
    minted = mint(engine, settings, app)
    with Session(engine) as session:
        session.exec(update(EhrLaunchRow).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        session.commit()
    _, response = authorize(client, app, minted.launch)
    _refused(response)


def test_another_apps_launch(client, engine, settings, app) -> None:
    other = make_app(engine, "clinic-a", scope=SCOPE, launch_url="https://other.test/launch")
    minted = mint(engine, settings, other)
    _, response = authorize(client, app, minted.launch)
    _refused(response)
    _, still_usable = authorize(client, other, minted.launch)  # a foreign attempt does not spend it
    assert still_usable.status_code == 200


def test_launch_scope_needs_the_launch_parameter(client, app) -> None:
    _, response = authorize(client, app, None)
    _refused(response)


def test_launch_parameter_needs_the_launch_scope(client, engine, settings, app) -> None:
    minted = mint(engine, settings, app)
    _, response = authorize(client, app, minted.launch, scope="openid patient/*.rs")
    _refused(response)


def test_app_without_launch_url_gets_no_launch_scope(client, engine, records) -> None:
    make_user(engine, "dr-a", [records.slug])
    plain = make_app(engine, records.slug, scope=SCOPE)
    with Session(engine) as session, pytest.raises(InvalidLaunchError, match="no launch URL"):
        create_launch(
            session, get_settings(), client_id=plain.client_id, patient_id=patient_id("clinic-a", "p-1")
        )
    _, response = authorize(client, plain, "whatever")
    _refused(response)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"patient_id": "no-such-patient"}, "not a patient of the app's clinic", id="patient"),
        pytest.param({"encounter_id": "no-such-encounter"}, "not an Encounter", id="encounter"),
        pytest.param({"username": "nobody"}, "not known", id="user"),
    ],
)
def test_mint_refuses_bad_context(engine, settings, app, kwargs, message) -> None:
    with pytest.raises(InvalidLaunchError, match=message):
        mint(engine, settings, app, **kwargs)
    with Session(engine) as session:
        assert session.exec(select(EhrLaunchRow)).first() is None  # nothing written


def test_encounter_of_another_patient_is_refused(engine, settings, app) -> None:
    with pytest.raises(InvalidLaunchError, match="not an encounter of patient"):
        mint(engine, settings, app, encounter_id=encounter_id("s-2"))


# --- minting by admin API and CLI ---


def _admin_token(client, engine) -> str:
    with Session(engine, expire_on_commit=False) as session:
        admin = create_admin_client(session, name="ehr integration")
    response = client.post(
        "/auth/token", data={"grant_type": "client_credentials"}, auth=(admin.client_id, admin.client_secret)
    )
    return response.json()["access_token"]


def test_admin_api_mints_a_launch(client, engine, app, records) -> None:
    headers = {"Authorization": f"Bearer {_admin_token(client, engine)}"}
    body = {
        "client_id": app.client_id,
        "patient": patient_id("clinic-a", "p-1"),
        "encounter": encounter_id("s-1"),
    }
    created = client.post("/admin/launches", json=body, headers=headers)
    assert created.status_code == 201, created.text
    minted = created.json()
    assert minted["iss"] == AUD and minted["launch_url"].startswith(LAUNCH_URL + "?iss=")
    assert created.headers["cache-control"] == "no-store"
    _, page = authorize(client, app, minted["launch"])
    assert page.status_code == 200
    refused = client.post("/admin/launches", json={**body, "patient": "nobody"}, headers=headers)
    assert refused.status_code == 422
    not_admin = client.post("/admin/launches", json=body, headers=records.headers)
    assert not_admin.status_code == 403
    assert client.post("/admin/launches", json=body).status_code == 401


def test_cli_launch_create(database_url, monkeypatch, app) -> None:
    monkeypatch.setenv("KAPGW_DATABASE_URL", database_url)
    monkeypatch.setenv("KAPGW_BASE_URL", "http://testserver")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        args = ["launch", "create", "--client-id", app.client_id, "--patient", patient_id("clinic-a", "p-1")]
        result = runner.invoke(cli_app, [*args, "--encounter", encounter_id("s-1"), "--user", "dr-a"])
        assert result.exit_code == 0, result.output
        minted = json.loads(result.stdout)
        assert parse_qs(urlsplit(minted["launch_url"]).query) == {"iss": [AUD], "launch": [minted["launch"]]}
        wrong = runner.invoke(cli_app, ["launch", "create", "--client-id", "nope", "--patient", "x"])
        assert wrong.exit_code == 1 and "app client nope is not known" in wrong.output
    finally:
        get_settings.cache_clear()


def test_discovery_advertises_the_ehr_launch(client) -> None:
    capabilities = client.get("/.well-known/smart-configuration").json()["capabilities"]
    assert {
        "launch-ehr",
        "context-ehr-patient",
        "context-ehr-encounter",
        "context-banner",
        "context-style",
    } <= set(capabilities)


def test_spent_launches_are_cleaned_up(engine, settings, app, monkeypatch) -> None:
    from gateway.auth import maintenance

    old = mint(engine, settings, app)
    with Session(engine) as session:
        session.exec(update(EhrLaunchRow).values(expires_at=datetime.now(UTC) - timedelta(hours=2)))
        session.commit()
    fresh = mint(engine, settings, app)
    monkeypatch.setattr(maintenance, "_last_run", [float("-inf")])
    maintenance.delete_expired_jtis(engine, settings)
    maintenance.delete_expired_jtis(engine, settings)  # run twice: the second changes nothing
    with Session(engine) as session:
        left = [row.launch_hash for row in session.exec(select(EhrLaunchRow))]
    from gateway.auth.ehr_launch import launch_hash

    assert left == [launch_hash(settings, fresh.launch)] and old.launch != fresh.launch


def test_cli_registers_an_app_with_a_launch_url(database_url, monkeypatch, records) -> None:
    monkeypatch.setenv("KAPGW_DATABASE_URL", database_url)
    monkeypatch.setenv("KAPGW_BASE_URL", "http://testserver")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        base = ["clients", "create", "--kind", "app", "--name", "Viewer", "--clinic", records.slug]
        base += ["--redirect-uri", "https://viewer.test/cb", "--public"]
        created = runner.invoke(cli_app, [*base, "--launch-url", "https://viewer.test/launch?tenant=a"])
        assert created.exit_code == 0, created.output
        client_id = json.loads(created.stdout)["client_id"]
        args = ["launch", "create", "--client-id", client_id, "--patient", patient_id("clinic-a", "p-2")]
        minted = json.loads(runner.invoke(cli_app, args).stdout)
        assert minted["launch_url"].startswith("https://viewer.test/launch?tenant=a&iss=")  # its query kept
        refused = runner.invoke(cli_app, [*base, "--launch-url", "http://viewer.test/launch"])
        assert refused.exit_code == 1 and "launch URL" in refused.output
        not_app = runner.invoke(
            cli_app,
            ["clients", "create", "--kind", "admin", "--name", "x", "--launch-url", "https://a.test/l"],
        )
        assert not_app.exit_code == 2
    finally:
        get_settings.cache_clear()
