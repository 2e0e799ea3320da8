"""SMART discovery (checklist DISC-1..9): the well-known document at the root and under /fhir."""

from __future__ import annotations

import re

import pytest

from gateway.auth.discovery import oauth_uris, smart_configuration

PATHS = ["/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration"]
#: DISC-6 (US Core 7): the resource scope pattern at least one scopes_supported entry must match
US_CORE_SCOPE = re.compile(
    r"^(patient|user|system|\*)/([a-zA-Z*]+)\.([cruds]+)(\?\w+=[^\s&]+(&\w+=[^\s&]+)*)?$"
)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("accept", ["application/json", "*/*", "application/fhir+json", None])
def test_served_as_json_whatever_accept_says(client, path, accept) -> None:
    headers = {"Accept": accept} if accept else {}
    response = client.get(path, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert isinstance(response.json(), dict)


@pytest.mark.parametrize("path", PATHS)
def test_required_fields_and_types(client, path) -> None:
    document = client.get(path).json()
    assert isinstance(document["authorization_endpoint"], str)
    assert isinstance(document["token_endpoint"], str)
    assert document["capabilities"] and all(isinstance(c, str) for c in document["capabilities"])
    assert {"authorization_code", "client_credentials"} <= set(document["grant_types_supported"])
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert "private_key_jwt" in document["token_endpoint_auth_methods_supported"]
    assert set(document["token_endpoint_auth_signing_alg_values_supported"]) == {"RS384", "ES384"}
    assert document["response_types_supported"] == ["code"]
    assert isinstance(document["introspection_endpoint"], str)
    assert isinstance(document["scopes_supported"], list)
    assert any(US_CORE_SCOPE.match(scope) for scope in document["scopes_supported"])


def test_endpoints_are_absolute_and_are_ours(client, settings) -> None:
    document = client.get(PATHS[0]).json()
    endpoints = {key: value for key, value in document.items() if key.endswith(("_endpoint", "_uri"))}
    assert endpoints == {
        "authorization_endpoint": "http://testserver/auth/authorize",
        "token_endpoint": "http://testserver/auth/token",
        "introspection_endpoint": "http://testserver/auth/introspect",
        "revocation_endpoint": "http://testserver/auth/revoke",
        "jwks_uri": "http://testserver/auth/jwks",
    }
    assert document == client.get(PATHS[1]).json() == smart_configuration(settings)


def test_openid_fields_present_with_sso_capability(client) -> None:
    document = client.get(PATHS[0]).json()
    assert "sso-openid-connect" in document["capabilities"]
    assert document["issuer"] == "http://testserver"
    assert document["jwks_uri"].startswith("http://testserver/")


def test_advertised_capabilities(client) -> None:
    capabilities = set(client.get(PATHS[0]).json()["capabilities"])
    assert {
        "client-confidential-asymmetric",
        "permission-v1",
        "permission-v2",
        "launch-standalone",
        "client-public",
        "permission-patient",
        "permission-offline",
        "authorize-post",
        "context-standalone-patient",
    } <= capabilities


def test_openid_configuration(client) -> None:
    response = client.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    document = response.json()
    smart = client.get(PATHS[0]).json()
    assert document["issuer"] == smart["issuer"]
    assert document["jwks_uri"] == smart["jwks_uri"]
    assert "RS256" in document["id_token_signing_alg_values_supported"]
    for key in (
        "authorization_endpoint",
        "token_endpoint",
        "response_types_supported",
        "subject_types_supported",
    ):
        assert document[key]


@pytest.mark.parametrize("path", [*PATHS, "/.well-known/openid-configuration"])
def test_cors_for_any_origin(client, path) -> None:
    response = client.get(path, headers={"Origin": "https://x.test"})
    assert response.headers["access-control-allow-origin"] in {"*", "https://x.test"}
    preflight = client.options(
        path,
        headers={
            "Origin": "https://x.test",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "accept",
        },
    )
    assert preflight.status_code in {200, 204}
    assert preflight.headers["access-control-allow-origin"] in {"*", "https://x.test"}
    assert "GET" in preflight.headers["access-control-allow-methods"]


def test_oauth_uris_agree_with_well_known(settings) -> None:
    """DISC-9: every oauth-uris entry equals its well-known field, and no URL is in only one of them."""
    document = smart_configuration(settings)
    uris = oauth_uris(settings)
    assert uris == {
        "authorize": document["authorization_endpoint"],
        "token": document["token_endpoint"],
        "introspect": document["introspection_endpoint"],
        "revoke": document["revocation_endpoint"],
    }
    assert "management_endpoint" not in document and "registration_endpoint" not in document


def test_base_url_trailing_slash_is_normalized(settings) -> None:
    document = smart_configuration(settings.model_copy(update={"base_url": "https://gw.test/"}))
    assert document["token_endpoint"] == "https://gw.test/auth/token"
