"""Token introspection (RFC 7662 + SMART; checklist INTRO-1..4) and who may introspect."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlmodel import Session
from support.smart import ASSERTION_TYPE, backend_token, register_ehr_client, sign_assertion

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


# --- private_key_jwt (INTRO-4, AL-8) ---

TOKEN_URL = "http://testserver/auth/token"
INTROSPECT_URL = "http://testserver" + URL


def with_assertion(client, token: str, assertion: str, assertion_type: str = ASSERTION_TYPE):
    form = {"token": token, "client_assertion_type": assertion_type, "client_assertion": assertion}
    return client.post(URL, data=form, headers={"Accept": "application/json"})


@pytest.mark.parametrize("audience", [TOKEN_URL, INTROSPECT_URL], ids=["aud-token", "aud-introspect"])
def test_private_key_jwt_caller(client, ehr, audience) -> None:
    token = backend_token(client, ehr, scope="system/Patient.rs")
    response = with_assertion(client, token, sign_assertion(ehr, audience))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["active"] is True and body["client_id"] == ehr and body["scope"] == "system/Patient.rs"


@pytest.mark.parametrize(
    "case",
    ["replayed", "wrong-aud", "wrong-type", "unknown-client", "expired", "basic-and-assertion"],
)
def test_private_key_jwt_failures_are_401(client, ehr, case) -> None:
    token = backend_token(client, ehr)
    assertion = sign_assertion(ehr, TOKEN_URL)
    if case == "replayed":
        assert with_assertion(client, token, assertion).status_code == 200
    elif case == "wrong-aud":
        assertion = sign_assertion(ehr, "https://elsewhere.test/token")
    elif case == "unknown-client":
        assertion = sign_assertion("no-such-client", TOKEN_URL)
    elif case == "expired":
        assertion = sign_assertion(ehr, TOKEN_URL, lifetime=-120)
    if case == "wrong-type":
        response = with_assertion(client, token, assertion, "not_an_assertion_type")
    elif case == "basic-and-assertion":
        form = {"token": token, "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
        response = client.post(URL, data=form, auth=(ehr, "x"))
    else:
        response = with_assertion(client, token, assertion)
    expected = (400, "invalid_request") if case == "basic-and-assertion" else (401, "invalid_client")
    assert (response.status_code, response.json()["error"]) == expected
    assert "active" not in response.json()


def test_public_client_naming_itself_is_not_authenticated(client, ehr) -> None:
    token = backend_token(client, ehr)
    response = client.post(URL, data={"token": token, "client_id": ehr})
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
