"""Token introspection (RFC 7662 + SMART; checklist INTRO-1..4) and who may introspect."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlmodel import Session
from support.smart import backend_token, register_ehr_client

from gateway.auth.clients import create_admin_client
from gateway.db.tables import AccessTokenRow

URL = "/auth/introspect"


@pytest.fixture
def ehr(engine) -> str:
    return register_ehr_client(engine, clinics=("clinic-a",))


def introspect(client, token: str, *, bearer: str | None = None, basic=None):
    headers = {"Accept": "application/json"}
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    return client.post(URL, data={"token": token}, headers=headers, auth=basic)


def test_active_backend_token_fields(client, ehr) -> None:
    token = backend_token(client, ehr, scope="system/Observation.rs system/Patient.rs")
    response = introspect(client, token, bearer=token)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert "no-store" in response.headers["cache-control"]
    body = response.json()
    assert body["active"] is True
    assert body["scope"] == "system/Observation.rs system/Patient.rs"  # same set and count as granted
    assert body["client_id"] == ehr
    assert body["token_type"] == "Bearer"
    assert isinstance(body["exp"], int) and body["exp"] > datetime.now(UTC).timestamp()
    assert 0 < body["exp"] - body["iat"] <= 300
    assert body["iss"] == "http://testserver"
    assert body["aud"] == "http://testserver/fhir"
    assert body["sub"] == ehr
    assert "patient" not in body


def test_clinic_client_with_basic(client, clinic) -> None:
    response = introspect(client, clinic.token, basic=(clinic.client_id, clinic.client_secret))
    assert response.status_code == 200
    assert response.json()["active"] is True
    assert response.json()["scope"] == "clinic/records.write"


@pytest.mark.parametrize("case", ["unknown", "expired", "revoked", "empty-looking"])
def test_inactive_is_exactly_active_false(client, engine, ehr, case) -> None:
    caller = backend_token(client, ehr)
    target = backend_token(client, ehr)
    if case == "unknown":
        target = "x" * 43
    elif case in {"expired", "revoked"}:
        values = (
            {"expires_at": datetime.now(UTC) - timedelta(seconds=1)}
            if case == "expired"
            else {"revoked": True}
        )
        with Session(engine) as session:
            session.execute(update(AccessTokenRow).where(AccessTokenRow.id == 2).values(**values))
            session.commit()
    elif case == "empty-looking":
        target = "Bearer"
    response = introspect(client, target, bearer=caller)
    assert response.status_code == 200
    assert response.json() == {"active": False}


def test_another_clients_token_is_inactive(client, engine, clinic, ehr) -> None:
    other = register_ehr_client(engine, clinics=("clinic-b",), name="Other")
    mine = backend_token(client, ehr)
    theirs = backend_token(client, other)
    assert introspect(client, theirs, bearer=mine).json() == {"active": False}
    assert introspect(client, clinic.token, bearer=mine).json() == {"active": False}


def test_admin_may_introspect_any_token(client, engine, ehr) -> None:
    with Session(engine, expire_on_commit=False) as session:
        admin = create_admin_client(session, name="auditor")
    target = backend_token(client, ehr)
    response = introspect(client, target, basic=(admin.client_id, admin.client_secret))
    assert response.status_code == 200
    assert response.json()["active"] is True
    assert response.json()["client_id"] == ehr


@pytest.mark.parametrize(
    "auth",
    [
        pytest.param({}, id="none"),
        pytest.param({"headers": {"Authorization": "Bearer not-a-token"}}, id="bad-bearer"),
        pytest.param({"auth": ("nobody", "x")}, id="unknown-basic"),
    ],
)
def test_unauthenticated_callers_get_401(client, ehr, auth) -> None:
    token = backend_token(client, ehr)
    response = client.post(URL, data={"token": token}, **auth)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "active" not in response.json()


def test_wrong_secret_counts_toward_the_throttle(client, clinic, settings) -> None:
    for _ in range(settings.token_throttle_client_failures):
        assert introspect(client, clinic.token, basic=(clinic.client_id, "wrong")).status_code == 401
    response = introspect(client, clinic.token, basic=(clinic.client_id, clinic.client_secret))
    assert response.status_code == 429
    assert response.headers["retry-after"]


def test_token_is_required(client, ehr) -> None:
    token = backend_token(client, ehr)
    response = client.post(URL, data={}, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_advertised_in_well_known(client) -> None:
    assert client.get("/.well-known/smart-configuration").json()["introspection_endpoint"].endswith(URL)
