"""POST /auth/token: client credentials with client_secret_basic; RFC 6749 §5.2 errors."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from gateway.auth.clients import create_clinic, create_clinic_client
from gateway.auth.token_request import FORM


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


@pytest.mark.parametrize(
    ("body", "content_type", "description"),
    [
        pytest.param(
            "grant_type=client_credentials&grant_type=client_credentials",
            FORM,
            "parameter grant_type is repeated",
            id="repeated-grant-type",
        ),
        pytest.param(
            "grant_type=client_credentials&scope=clinic/records.write&scope=x",
            FORM,
            "parameter scope is repeated",
            id="repeated-scope",
        ),
        pytest.param(
            "grant_type=&grant_type=client_credentials",
            FORM,
            "parameter grant_type is repeated",
            id="repeated-empty",
        ),
        pytest.param(
            "grant_type=client_credentials&scope=", FORM, "scope must not be empty", id="empty-scope"
        ),
        pytest.param(
            "grant_type=client_credentials&scope=%20", FORM, "scope must not be empty", id="blank-scope"
        ),
        pytest.param("grant_type=client_credentials&&x", FORM, "malformed form body", id="malformed"),
        pytest.param("grant_type=client_credentials&scope=%ff", FORM, "must be UTF-8", id="percent-not-utf8"),
        pytest.param(b"grant_type=client_credentials&x=\xff", FORM, "must be UTF-8", id="raw-not-utf8"),
        pytest.param(
            "grant_type=client_credentials", FORM + "; charset=latin-1", "must be UTF-8", id="charset-latin1"
        ),
        pytest.param(
            "&".join(f"p{i}=v" for i in range(40)), FORM, "malformed form body", id="too-many-parameters"
        ),
        pytest.param(
            "grant_type=client_credentials", "multipart/form-data; boundary=x", FORM, id="multipart"
        ),
        pytest.param("grant_type=client_credentials", None, FORM, id="no-content-type"),
        pytest.param("grant_type=", FORM, "grant_type is required", id="empty-grant-type"),
    ],
)
def test_malformed_token_requests_are_invalid_request(
    client, credentials, body, content_type, description
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post(
        "/auth/token",
        content=body.encode() if isinstance(body, str) else body,
        headers=headers,
        auth=credentials,
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert response.json()["error"] == "invalid_request"
    assert description in response.json()["error_description"]


def test_charset_utf8_and_blank_parameters_are_accepted(client, credentials) -> None:
    response = client.post(
        "/auth/token",
        content=b"grant_type=client_credentials&unused=",
        headers={"Content-Type": FORM + "; charset=UTF-8"},
        auth=credentials,
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("scope", "granted"),
    [
        pytest.param("clinic/records.write", "clinic/records.write", id="the-clinic-scope"),
        pytest.param(
            "clinic/records.write clinic/records.write", "clinic/records.write", id="repeated-token"
        ),
    ],
)
def test_requested_scope(client, credentials, scope, granted) -> None:
    response = client.post(
        "/auth/token", data={"grant_type": "client_credentials", "scope": scope}, auth=credentials
    )
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == granted


def test_scope_with_double_space_is_invalid_scope(client, credentials) -> None:
    response = client.post(
        "/auth/token",
        data={"grant_type": "client_credentials", "scope": "clinic/records.write  clinic/records.write"},
        auth=credentials,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_body_client_id_must_match_basic(client, credentials) -> None:
    response = client.post(
        "/auth/token",
        data={"grant_type": "client_credentials", "client_id": "someone-else"},
        auth=credentials,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    same = client.post(
        "/auth/token",
        data={"grant_type": "client_credentials", "client_id": credentials[0]},
        auth=credentials,
    )
    assert same.status_code == 200


@pytest.mark.parametrize(
    "who",
    [
        pytest.param("unknown", id="unknown-client-id"),
        pytest.param("disabled", id="disabled-client"),
        pytest.param("wrong-secret", id="known-client-wrong-secret"),
        pytest.param("right-secret", id="known-client-right-secret"),
    ],
)
def test_every_authentication_costs_one_scrypt(client, credentials, engine, monkeypatch, who) -> None:
    """Unknown and disabled clients pay the same password hash as a wrong secret (no timing oracle)."""
    import hashlib

    from sqlalchemy import update

    from gateway.db.tables import ClientRow

    client_id, secret = credentials
    if who == "disabled":
        with Session(engine) as session:
            session.execute(update(ClientRow).values(disabled=True))
            session.commit()
    auth = {
        "unknown": ("no-such-client", secret),
        "disabled": (client_id, secret),
        "wrong-secret": (client_id, "not-the-secret"),
        "right-secret": (client_id, secret),
    }[who]
    calls: list[dict] = []
    real_scrypt = hashlib.scrypt

    def counting_scrypt(password, **kwargs):
        calls.append(kwargs)
        return real_scrypt(password, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", counting_scrypt)
    response = client.post("/auth/token", data={"grant_type": "client_credentials"}, auth=auth)
    assert response.status_code == (200 if who == "right-secret" else 401)
    assert len(calls) == 1
    assert {k: v for k, v in calls[0].items() if k != "salt"} == {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


@pytest.mark.parametrize(
    "client_id",
    [
        pytest.param("nul\x00byte", id="nul"),
        pytest.param("tab\tand\x7fdel", id="control-characters"),
        pytest.param("x" * 5000, id="very-long"),
        pytest.param("ünïcödé-ïd", id="non-ascii"),
    ],
)
def test_impossible_client_ids_are_invalid_client(client, client_id) -> None:
    import base64

    basic = base64.b64encode(f"{client_id}:secret".encode()).decode()
    response = client.post(
        "/auth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"}
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("Basic !!!", id="not-base64"),
        pytest.param("Basic " + "bm8tY29sb24=", id="no-colon"),
        pytest.param("Basic " + "OnNlY3JldA==", id="empty-id"),
        pytest.param("Basic " + "/w==", id="not-utf8"),
        pytest.param("Bearer abc", id="other-scheme"),
    ],
)
def test_malformed_basic_credentials(client, header) -> None:
    response = client.post(
        "/auth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": header}
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"] == 'Basic realm="kap-gateway"'
