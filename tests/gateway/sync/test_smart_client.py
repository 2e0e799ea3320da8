"""The SMART Backend Services client against httpx.MockTransport (the real flow: tests/integration)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from gateway.sync.errors import EhrAuthError, EhrStatusError, EhrTransportError
from gateway.sync.keys import generate_key, load_private_key
from gateway.sync.smart_client import Endpoint, SmartClient, parse_location, retry_after_seconds

TOKEN_URL = "https://as.example/token"
BASE = "https://ehr.example/fhir"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["RS384", "ES384"])
def keypair(request: pytest.FixtureRequest, tmp_path):
    generated = generate_key(request.param, "k1")
    path = tmp_path / "key.pem"
    path.write_bytes(generated.private_pem)
    return request.param, load_private_key(alg=request.param, path=str(path)), generated.public_jwks


def make_client(keypair, handler, clock=None) -> SmartClient:
    alg, key, _ = keypair
    endpoint = Endpoint(BASE, TOKEN_URL, "gw", "system/*.cruds", alg, "k1", key)
    return SmartClient(endpoint, timeout=5, transport=httpx.MockTransport(handler), clock=clock or Clock())


def test_assertions_are_signed_fresh_and_short_lived(keypair) -> None:
    alg, _, public = keypair
    seen: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        form = parse_qs(request.content.decode())
        assert form["grant_type"] == ["client_credentials"]
        assert form["client_assertion_type"] == ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]
        token = jwt.decode(form["client_assertion"][0], KeySet.import_key_set(public), algorithms=[alg])
        seen.append({**token.header, **token.claims})
        return httpx.Response(200, json={"access_token": f"t{len(seen)}", "expires_in": 60})

    clock = Clock()
    client = make_client(keypair, handler, clock)
    client.token()
    clock.now += 100  # past the token's life: a new assertion
    client.token()
    first, second = seen
    assert first["alg"] == alg and first["kid"] == "k1"
    assert first["iss"] == first["sub"] == "gw" and first["aud"] == TOKEN_URL
    assert 0 < first["exp"] - first["iat"] <= 300
    assert first["jti"] != second["jti"]


def test_the_token_is_cached_and_refreshed_before_it_expires(keypair) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(200, json={"access_token": f"t{len(calls)}", "expires_in": 300})

    clock = Clock()
    client = make_client(keypair, handler, clock)
    assert client.token() == "t1"
    clock.now += 200
    assert client.token() == "t1"  # cached
    clock.now += 50  # 250 s of 300: within the last minute -> refreshed early
    assert client.token() == "t2"


def test_a_401_re_authenticates_once_then_gives_up(keypair) -> None:
    tokens = iter(["t1", "t2", "t3"])
    answers: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            return httpx.Response(200, json={"access_token": next(tokens), "expires_in": 300})
        answers.append(401)
        return httpx.Response(401, json={"resourceType": "OperationOutcome", "issue": []})

    client = make_client(keypair, handler)
    with pytest.raises(EhrAuthError):
        client.request("GET", "Patient")
    assert answers == [401, 401]  # the original request and exactly one retry with a fresh token


def test_a_201_with_an_empty_body_gives_the_id_from_location(keypair) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 300})
        assert request.headers["content-type"] == "application/fhir+json"
        assert json.loads(request.content)["resourceType"] == "Patient"
        return httpx.Response(201, headers={"location": f"{BASE}/Patient/abc/_history/3"})

    response = make_client(keypair, handler).request("POST", "Patient", json={"resourceType": "Patient"})
    assert response.body is None
    assert response.location == ("Patient", "abc", "3")


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        pytest.param(400, False, id="400"),
        pytest.param(404, False, id="404"),
        pytest.param(422, False, id="422"),
        pytest.param(408, True, id="408"),
        pytest.param(429, True, id="429"),
        pytest.param(500, True, id="500"),
        pytest.param(503, True, id="503"),
    ],
)
def test_statuses_become_status_errors_with_the_outcome(keypair, status: int, retryable: bool) -> None:
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "invalid"}]}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 300})
        return httpx.Response(status, json=outcome, headers={"retry-after": "7"})

    with pytest.raises(EhrStatusError) as caught:
        make_client(keypair, handler).request("POST", "Patient", json={})
    assert caught.value.status_code == status
    assert caught.value.retryable is retryable
    assert caught.value.outcome == outcome and caught.value.outcome_code == "invalid"
    assert caught.value.retry_after == 7


def test_transport_failures_are_transport_errors(keypair) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 300})
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(EhrTransportError):
        make_client(keypair, handler).request("GET", "Patient")


def test_a_refused_client_is_an_auth_error(keypair) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": "invalid_client"})

    with pytest.raises(EhrAuthError, match="invalid_client"):
        make_client(keypair, handler).token()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("https://e/fhir/Patient/1/_history/2", ("Patient", "1", "2"), id="absolute-versioned"),
        pytest.param("Observation/x", ("Observation", "x", None), id="relative"),
        pytest.param("https://e/fhir/", None, id="no-resource"),
    ],
)
def test_parse_location(value: str, expected) -> None:
    assert parse_location(value) == expected


def test_retry_after_takes_seconds_and_http_dates() -> None:
    assert retry_after_seconds("12", 0) == 12
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470) == 10
    assert retry_after_seconds("soon", 0) is None
