"""Sync state over HTTP: a record's deliveries per connection (clinic token) and /admin/sync (admin token)."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session
from support.fake_ehr import FakeEhr

from gateway.auth.clients import create_admin_client
from gateway.core.config import Settings
from gateway.db.tables import utcnow
from gateway.sync import connections
from gateway.sync.outbox import Deliverer

PATIENT = {"given_name": "Ana", "family_name": "Test", "birth_date": "1990-01-01", "sex": "female"}


def _admin_headers(client, engine: Engine) -> dict[str, str]:
    with Session(engine, expire_on_commit=False) as session:
        created = create_admin_client(session, name="ops")
    token = client.post(
        "/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(created.client_id, created.client_secret),
    ).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def test_record_sync_state_and_admin_status(
    engine: Engine, settings: Settings, make_clinic, fake: FakeEhr, add_connection
) -> None:
    clinic = make_clinic("demo")
    assert clinic.put("patients", "p-1", PATIENT).status_code in (200, 201)
    add_connection(engine, settings, fake)
    connections.upkeep(engine, settings, now=utcnow())
    pending = clinic.get("/api/v1/patients/p-1/sync").json()["deliveries"]
    assert {d["resource"].split("/")[0] for d in pending} == {"Patient", "Provenance"}
    assert {d["status"] for d in pending} == {"pending"}
    deliverer = Deliverer(engine, settings)
    for _ in range(10_000):
        if not deliverer.run_once():
            break
    else:
        raise AssertionError("the outbox never drains")
    done = clinic.get("/api/v1/patients/p-1/sync").json()["deliveries"]
    patient = next(d for d in done if d["resource"].startswith("Patient/"))
    assert patient["status"] == "delivered" and patient["connection"] == "h"
    assert patient["ehr_id"] == next(iter(fake.ours("Patient").values()))[0]["id"]
    assert clinic.get("/api/v1/patients/nobody/sync").status_code == 404

    assert clinic.get("/admin/sync/status").status_code == 403  # a clinic token is not an admin's
    headers = _admin_headers(clinic.http, engine)
    (line,) = clinic.http.get("/admin/sync/status", headers=headers).json()
    assert (line["connection"], line["pending"], line["dead"]) == ("h", 0, 0)
    assert clinic.http.get("/admin/sync/dead-letters", headers=headers).json() == []
    assert clinic.http.post("/admin/sync/replay", json={}, headers=headers).json() == {"replayed": 0}
