"""POST /auth/token: client credentials with client_secret_basic; RFC 6749 §5.2 errors."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from gateway.auth.clients import create_clinic, create_clinic_client


@pytest.fixture
def credentials(engine) -> tuple[str, str]:
    with Session(engine, expire_on_commit=False) as session:
        create_clinic(session, slug="clinic-a", name="Clinic A")
        created = create_clinic_client(session, clinic_slug="clinic-a", name="test")
    return created.client_id, created.client_secret


def test_token_issued(client, credentials) -> None:
    response = client.post("/auth/token", data={"grant_type": "client_credentials"}, auth=credentials)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "clinic/records.write"
    assert response.headers["cache-control"] == "no-store"
    api = client.get("/api/v1/patients", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert api.status_code == 200


@pytest.mark.parametrize(
    ("data", "auth", "status", "error"),
    [
        pytest.param(
            {"grant_type": "client_credentials"}, ("nobody", "x"), 401, "invalid_client", id="unknown-client"
        ),
        pytest.param(
            {"grant_type": "client_credentials"}, "wrong-secret", 401, "invalid_client", id="wrong-secret"
        ),
        pytest.param(
            {"grant_type": "client_credentials"}, None, 401, "invalid_client", id="no-authentication"
        ),
        pytest.param({"grant_type": "password"}, "good", 400, "unsupported_grant_type", id="grant-type"),
        pytest.param({}, "good", 400, "invalid_request", id="no-grant-type"),
        pytest.param(
            {"grant_type": "client_credentials", "scope": "system/*.read"},
            "good",
            400,
            "invalid_scope",
            id="scope-not-allowed",
        ),
    ],
)
def test_token_errors_follow_rfc6749(client, credentials, data, auth, status, error) -> None:
    if auth == "good":
        auth = credentials
    elif auth == "wrong-secret":
        auth = (credentials[0], "not-the-secret")
    response = client.post("/auth/token", data=data, auth=auth)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == error
    assert "error_description" in response.json()


def test_secret_in_body_is_refused(client, credentials) -> None:
    client_id, secret = credentials
    response = client.post(
        "/auth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_json_body_is_refused(client, credentials) -> None:
    response = client.post("/auth/token", json={"grant_type": "client_credentials"}, auth=credentials)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_secret_is_stored_hashed(engine, credentials) -> None:
    from gateway.db.repositories.clinics import get_client

    with Session(engine) as session:
        row = get_client(session, client_id=credentials[0])
    assert row is not None and row.secret_hash is not None
    assert credentials[1] not in row.secret_hash
    assert row.secret_hash.startswith("scrypt$")


def test_expired_token_is_refused(client, credentials, engine) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from gateway.db.tables import AccessTokenRow

    token = client.post("/auth/token", data={"grant_type": "client_credentials"}, auth=credentials).json()
    with Session(engine) as session:
        session.execute(update(AccessTokenRow).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        session.commit()
    response = client.get("/api/v1/patients", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert response.status_code == 401
