"""CORS (checklist DISC-8): public documents for any origin; the token endpoint and the FHIR API for the
origins of registered apps (redirect and launch URLs) and KAPGW_CORS_ALLOWED_ORIGINS; preflights; no
credentials mode."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from support.launch import make_app

from gateway.app import create_app

PUBLIC = [
    "/.well-known/smart-configuration",
    "/fhir/.well-known/smart-configuration",
    "/.well-known/openid-configuration",
    "/fhir/metadata",
    "/auth/jwks",
    "/auth/smart-style.json",
]
APP_ORIGIN = "https://app.test"  # support.launch.REDIRECT_URI is https://app.test/callback
LAUNCH_ORIGIN = "https://launcher.test:8443"
STRANGER = "https://stranger.test"


def preflight(client, path: str, origin: str, method: str = "GET"):
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


@pytest.fixture
def apps(engine, clinic):
    make_app(engine, clinic.slug, launch_url=LAUNCH_ORIGIN + "/launch")
    return clinic


@pytest.mark.parametrize("path", PUBLIC)
def test_public_documents_for_any_origin(client, path) -> None:
    response = client.get(path, headers={"Origin": STRANGER})
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers
    answered = preflight(client, path, STRANGER)
    assert answered.status_code == 204
    assert answered.headers["access-control-allow-origin"] == "*"
    assert "GET" in answered.headers["access-control-allow-methods"]
    assert "authorization" in answered.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in answered.headers


@pytest.mark.parametrize("origin", [APP_ORIGIN, LAUNCH_ORIGIN], ids=["redirect-uri", "launch-url"])
def test_token_endpoint_allows_registered_app_origins(client, apps, origin) -> None:
    response = client.post(
        "/auth/token", data={"grant_type": "client_credentials"}, headers={"Origin": origin}
    )
    assert response.status_code == 401  # no client authentication: the error is readable by the app
    assert response.headers["access-control-allow-origin"] == origin
    assert response.headers["vary"] == "Origin"
    assert "access-control-allow-credentials" not in response.headers
    answered = preflight(client, "/auth/token", origin, "POST")
    assert answered.status_code == 204
    assert answered.headers["access-control-allow-origin"] == origin
    assert "POST" in answered.headers["access-control-allow-methods"]


def test_unregistered_origin_gets_no_cors(client, apps) -> None:
    for path in ("/auth/token", "/fhir/Patient"):
        response = (
            client.post(path, headers={"Origin": STRANGER})
            if "token" in path
            else client.get(path, headers={"Origin": STRANGER})
        )
        assert "access-control-allow-origin" not in response.headers
        assert response.headers["vary"] == "Origin"
        answered = preflight(client, path, STRANGER)
        assert answered.status_code == 403
        assert "access-control-allow-origin" not in answered.headers
        assert "access-control-allow-methods" not in answered.headers


def test_fhir_api_for_registered_origins(client, apps) -> None:
    response = client.get("/fhir/Patient", headers={"Origin": APP_ORIGIN})
    assert response.status_code == 401  # no token: still readable by the app (WWW-Authenticate exposed)
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "WWW-Authenticate" in response.headers["access-control-expose-headers"]
    answered = preflight(client, "/fhir/Patient/123", APP_ORIGIN)
    assert answered.status_code == 204 and answered.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "access-control-allow-credentials" not in answered.headers


def test_no_origin_no_cors_headers(client, apps) -> None:
    response = client.get("/fhir/Patient")
    assert "access-control-allow-origin" not in response.headers
    assert (
        "access-control-allow-origin"
        not in client.get("/api/v1/patients/x", headers={"Origin": APP_ORIGIN}).headers
    )


def test_configured_origins(settings, engine, clinic) -> None:
    configured = settings.model_copy(update={"cors_allowed_origins": [STRANGER]})
    with TestClient(create_app(configured, migrate_sqlite=False)) as http:
        response = http.get("/fhir/Patient", headers={"Origin": STRANGER})
        assert response.headers["access-control-allow-origin"] == STRANGER
        other = http.get("/fhir/Patient", headers={"Origin": "https://other.test"})
        assert "access-control-allow-origin" not in other.headers


def test_an_app_registered_later_is_allowed_after_the_refresh(client, engine, clinic) -> None:
    assert (
        "access-control-allow-origin"
        not in client.get("/fhir/Patient", headers={"Origin": APP_ORIGIN}).headers
    )
    make_app(engine, clinic.slug)
    client.app.state.cors_origins.expire()  # as if REFRESH_SECONDS had passed
    response = client.get("/fhir/Patient", headers={"Origin": APP_ORIGIN})
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
