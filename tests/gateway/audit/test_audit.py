"""The audit trail: AuditEvents (IHE BALP shape) for token requests and failed authentications, stored in
batches, searchable by an admin (API and CLI), never holding a secret."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from fhir.resources.R4B.auditevent import AuditEvent
from sqlalchemy import func, select
from sqlmodel import Session
from support.audit import token_entry
from support.smart import IMPOSTOR, register_ehr_client, sign_assertion, token_form
from typer.testing import CliRunner

from gateway.audit import events
from gateway.audit.recorder import AuditRecorder
from gateway.audit.trail import record_fhir
from gateway.auth.clients import create_admin_client
from gateway.auth.service import Principal
from gateway.cli import app as cli_app
from gateway.core.config import get_settings
from gateway.db.tables import AuditEventRow

AUD = "http://testserver/auth/token"


@pytest.fixture
def admin(client, engine) -> dict[str, str]:
    with Session(engine, expire_on_commit=False) as session:
        created = create_admin_client(session, name="auditor")
    response = client.post(
        "/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(created.client_id, created.client_secret),
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def stored(client, engine) -> list[dict]:
    client.app.state.audit.flush()
    with Session(engine) as session:
        rows = session.execute(select(AuditEventRow).order_by(AuditEventRow.id)).scalars().all()
        return [json.loads(row.content) | {"_action": row.action, "_client": row.client_id} for row in rows]


def test_token_issue_is_audited_without_secrets(client, engine) -> None:
    ehr = register_ehr_client(engine)
    assertion = sign_assertion(ehr, AUD)
    response = client.post("/auth/token", data=token_form(assertion))
    assert response.status_code == 200
    token = response.json()["access_token"]
    (event,) = [e for e in stored(client, engine) if e["_client"] == ehr]
    assert event["_action"] == "token"
    assert event["outcome"] == "0"
    assert event["type"]["code"] == "110114"
    assert event["agent"][0]["who"]["identifier"]["value"] == ehr
    assert event["agent"][0]["requestor"] is True
    text = json.dumps(event)
    assert token not in text
    assert assertion not in text and assertion.split(".")[2] not in text
    AuditEvent.model_validate({k: v for k, v in event.items() if not k.startswith("_")})


def test_failed_client_authentication_is_audited(client, engine) -> None:
    ehr = register_ehr_client(engine)
    response = client.post("/auth/token", data=token_form(sign_assertion(ehr, AUD, key=IMPOSTOR)))
    assert response.status_code == 400
    (event,) = [e for e in stored(client, engine) if e["_client"] == ehr]
    assert event["_action"] == "authentication-failure"
    assert event["outcome"] == "4"
    assert "invalid_client" in event["outcomeDesc"]


def test_wrong_secret_is_audited_without_the_secret(client, engine, clinic) -> None:
    response = client.post(
        "/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(clinic.client_id, "guessed-secret-123"),
    )
    assert response.status_code == 401
    failures = [e for e in stored(client, engine) if e["_action"] == "authentication-failure"]
    assert failures and failures[-1]["_client"] == clinic.client_id
    assert "guessed-secret-123" not in json.dumps(failures)
    assert clinic.client_secret not in json.dumps(stored(client, engine))


def test_refused_bearer_token_is_audited(client, engine, admin) -> None:
    response = client.get("/admin/audit-events", headers={"Authorization": "Bearer forged-token-value"})
    assert response.status_code == 401
    failures = [e for e in stored(client, engine) if e["_action"] == "authentication-failure"]
    assert len(failures) == 1
    assert "forged-token-value" not in json.dumps(failures)
    assert failures[0]["entity"][-1]["detail"][0]["valueString"] == "/admin/audit-events"


def test_fhir_read_and_search_events_have_the_balp_shape(settings) -> None:
    server = events.Server(base_url=settings.base_url)
    now = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    read = events.rest_event(
        server,
        event_id="e1",
        now=now,
        interaction="read",
        resource_type="Observation",
        resource_id="obs-1",
        patient_id="pat-1",
        client_id="ehr-1",
        clinic_pk=1,
        status_code=200,
    )
    assert read.action == "read" and read.patient_id == "pat-1" and read.outcome == "0"
    assert read.resource["meta"]["profile"][0].endswith("IHE.BasicAudit.PatientRead")
    roles = {e["role"]["code"]: e["what"]["reference"] for e in read.resource["entity"]}
    assert roles == {"1": "Patient/pat-1", "4": "Observation/obs-1"}
    search = events.rest_event(
        server,
        event_id="e2",
        now=now,
        interaction="search-type",
        resource_type="Observation",
        resource_id=None,
        patient_id=None,
        client_id="ehr-1",
        clinic_pk=None,
        status_code=403,
        query="category=vital-signs&access_token=SECRET",
    )
    assert search.action == "search" and search.outcome == "4"
    assert search.resource["action"] == "E"
    (query,) = [e for e in search.resource["entity"] if e["role"]["code"] == "24"]
    assert base64.b64decode(query["query"]).decode() == "category=vital-signs"
    for entry in (read, search):
        AuditEvent.model_validate(entry.resource)


def test_record_fhir_uses_the_principal(client, engine, settings) -> None:
    principal = Principal(
        client_pk=1,
        client_id="app-1",
        kind="app",
        clinic_pk=None,
        clinic_pks=(1,),
        scopes=frozenset({"patient/*.rs"}),
        patient_id="pat-9",
    )
    record_fhir(
        client.app.state.audit,
        settings,
        principal,
        interaction="search-type",
        resource_type="Condition",
        status_code=200,
    )
    (event,) = stored(client, engine)
    assert event["_action"] == "search" and event["_client"] == "app-1"
    assert {"reference": "Patient/pat-9"} in [e.get("what") for e in event["entity"]]


def test_admin_search_filters_and_pages(client, engine, admin) -> None:
    ehr = register_ehr_client(engine)
    for _ in range(3):
        assert client.post("/auth/token", data=token_form(sign_assertion(ehr, AUD))).status_code == 200
    client.post("/auth/token", data=token_form(sign_assertion(ehr, AUD, key=IMPOSTOR)))
    client.app.state.audit.flush()
    response = client.get("/admin/audit-events", params={"client_id": ehr, "action": "token"}, headers=admin)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    page = response.json()
    assert len(page["events"]) == 3 and page["next"] is None
    assert all(e["resourceType"] == "AuditEvent" for e in page["events"])
    recorded = [e["recorded"] for e in page["events"]]
    assert recorded == sorted(recorded, reverse=True)
    first = client.get("/admin/audit-events", params={"client_id": ehr, "limit": 2}, headers=admin).json()
    assert len(first["events"]) == 2 and first["next"]
    second = client.get(first["next"], headers=admin).json()
    ids = [e["id"] for e in first["events"] + second["events"]]
    assert len(ids) == len(set(ids)) == 4
    failures = client.get("/admin/audit-events", params={"outcome": "4"}, headers=admin).json()["events"]
    assert len(failures) == 1
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    later = client.get("/admin/audit-events", params={"since": future}, headers=admin).json()
    assert later["events"] == []


def test_admin_search_needs_an_admin_token(client, engine, clinic) -> None:
    assert client.get("/admin/audit-events").status_code == 401
    response = client.get("/admin/audit-events", headers=clinic.headers)
    assert response.status_code == 403


def test_cli_audit_search(client, engine, database_url, monkeypatch) -> None:
    ehr = register_ehr_client(engine)
    assert client.post("/auth/token", data=token_form(sign_assertion(ehr, AUD))).status_code == 200
    client.app.state.audit.flush()
    monkeypatch.setenv("KAPGW_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli_app, ["audit", "search", "--client-id", ehr, "--action", "token"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert len(lines) == 1 and lines[0]["resourceType"] == "AuditEvent"


def test_recorder_writes_in_batches_and_flushes_on_close(engine, settings) -> None:
    recorder = AuditRecorder(engine, batch_size=50, interval_seconds=0.05)
    for n in range(120):
        recorder.record(token_entry(settings, event_id=f"ev-{n}"))
    recorder.close()
    assert recorder.written == 120
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(AuditEventRow)).scalar_one() == 120


@pytest.mark.parametrize(
    ("method", "path", "query", "expected", "patient"),
    [
        ("GET", "/fhir/Patient/p1", "", ("read", "Patient", "p1"), "p1"),
        (
            "GET",
            "/fhir/Observation",
            "patient=Patient/p2&category=x",
            ("search-type", "Observation", None),
            "p2",
        ),
        ("POST", "/fhir/Condition/_search", "", ("search-type", "Condition", None), None),
        ("GET", "/fhir/Observation/o1/_history/2", "", ("vread", "Observation", "o1"), None),
        ("GET", "/fhir/Patient/p1/$everything", "", ("$everything", "Patient", "p1"), "p1"),
        ("GET", "/fhir/Group/g1/$export", "", ("$export", "Group", "g1"), None),
        ("GET", "/fhir/Observation", "patient=p1,p2", ("search-type", "Observation", None), None),
        ("GET", "/fhir/metadata", "", None, None),
        ("GET", "/fhir/.well-known/smart-configuration", "", None, None),
        ("DELETE", "/fhir/Patient/p1", "", None, None),
    ],
)
def test_middleware_classifies_fhir_requests(method, path, query, expected, patient) -> None:
    from gateway.audit.middleware import classify, patient_of

    assert classify(method, path) == expected
    if expected is not None:
        assert patient_of(expected[1], expected[2], query) == patient


def test_a_full_queue_refuses_on_the_event_loop_and_waits_elsewhere(engine, settings) -> None:
    recorder = AuditRecorder(engine, batch_size=10, interval_seconds=30, max_queued=2)

    def event(n: int) -> events.AuditEntry:
        return token_entry(settings, event_id=f"full-{n}")

    try:
        assert recorder.try_record(event(0)) and recorder.try_record(event(1))
        assert not recorder.try_record(event(2))  # full: the middleware then waits in a worker thread
        recorder.record(event(2))  # wakes the writer and waits until it made room: nothing is dropped
        assert recorder.written >= 2
    finally:
        recorder.close()
    assert recorder.written == 3
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(AuditEventRow)).scalar_one() == 3
