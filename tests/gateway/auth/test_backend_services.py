"""SMART Backend Services at /auth/token (checklist §7 BS-1..BS-7, AL-5, AL-6, TOK-4, TOK-7).

Every negative case asserts the status, the RFC 6749 error, that no token came back and that nothing was
issued. Assertions are signed with the synthetic keys in fixtures/keys (tests/support/smart.py).
"""

from __future__ import annotations

import base64
import json
import time

import pytest
from joserfc import jwk, jwt
from sqlalchemy import func, select, update
from sqlmodel import Session
from support.smart import (
    ES384,
    IMPOSTOR,
    ROTATED,
    RS384,
    jwks_server,
    private_jwk,
    public_jwks,
    register_ehr_client,
    sign_assertion,
    token_form,
)

from gateway.auth.discovery import token_url
from gateway.db.tables import AccessTokenRow, AssertionJtiRow, ClientRow
from gateway.sync.jwks import default_fetcher

AUD = "http://testserver/auth/token"


@pytest.fixture(autouse=True)
def _fresh_jwks_cache():
    default_fetcher.clear()
    yield
    default_fetcher.clear()


@pytest.fixture
def ehr(engine) -> str:
    return register_ehr_client(engine, clinics=("clinic-a", "clinic-b"))


def tokens_issued(engine) -> int:
    with Session(engine) as session:
        return session.execute(select(func.count()).select_from(AccessTokenRow)).scalar_one()


def post(client, form):
    return client.post("/auth/token", data=form, headers={"Accept": "application/json"})


def assert_refused(response, status: int, error: str, engine=None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == error
    assert body["error_description"]
    assert "access_token" not in body
    assert "no-store" in response.headers["cache-control"]
    if engine is not None:
        assert tokens_issued(engine) == 0


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


# --- success ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [RS384, ES384])
def test_token_issued_for_a_valid_assertion(client, engine, ehr, settings, key) -> None:
    assert token_url(settings) == AUD
    response = post(client, token_form(sign_assertion(ehr, AUD, key=key), scope="system/*.rs"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"].lower() == "bearer"
    assert isinstance(body["expires_in"], int) and 0 < body["expires_in"] <= 300
    assert body["scope"] == "system/*.rs"
    assert "refresh_token" not in body
    assert "no-store" in response.headers["cache-control"]
    assert "no-cache" in response.headers["pragma"]
    with Session(engine) as session:
        row = session.execute(select(AccessTokenRow)).scalar_one()
        assert row.clinic_pk is None  # all granted clinics


@pytest.mark.parametrize(
    ("requested", "granted"),
    [
        pytest.param("system/*.read", "system/*.read", id="v1-inferno-default"),
        pytest.param(
            "system/Observation.rs system/Patient.r", "system/Observation.rs system/Patient.r", id="v2"
        ),
        pytest.param(
            "system/Observation.rs?category=vital-signs",
            "system/Observation.rs?category=vital-signs",
            id="v2-constrained",
        ),
        pytest.param(None, "system/*.rs", id="omitted-is-the-ceiling"),
    ],
)
def test_granted_scope(client, ehr, requested, granted) -> None:
    response = post(client, token_form(sign_assertion(ehr, AUD), scope=requested))
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == granted


def test_token_reads_as_an_ehr_principal(client, engine, ehr, settings) -> None:
    from gateway.auth.service import authenticate_bearer

    token = post(client, token_form(sign_assertion(ehr, AUD))).json()["access_token"]
    with Session(engine) as session:
        principal = authenticate_bearer(session, settings, authorization=f"Bearer {token}")
    assert principal.kind == "ehr"
    assert principal.client_id == ehr
    assert len(principal.clinic_pks) == 2
    assert principal.scopes == frozenset({"system/*.rs"})
    assert principal.patient_id is None


# --- BS-2, BS-3, BS-4 ---------------------------------------------------------------------------------------


def test_unsupported_grant_type(client, engine, ehr) -> None:
    form = token_form(sign_assertion(ehr, AUD)) | {"grant_type": "not_a_grant_type"}
    assert_refused(post(client, form), 400, "unsupported_grant_type", engine)


def test_bad_client_assertion_type_is_400_invalid_client(client, engine, ehr) -> None:
    form = token_form(sign_assertion(ehr, AUD)) | {"client_assertion_type": "not_an_assertion_type"}
    assert_refused(post(client, form), 400, "invalid_client", engine)


def test_assertion_type_without_assertion(client, engine, ehr) -> None:
    form = token_form(sign_assertion(ehr, AUD))
    del form["client_assertion"]
    assert_refused(post(client, form), 400, "invalid_client", engine)


def test_invalid_iss(client, engine, ehr) -> None:
    assertion = sign_assertion(ehr, AUD, claims={"iss": "not_a_valid_iss"})
    assert_refused(post(client, token_form(assertion)), 400, "invalid_client", engine)


# --- BS-5: one test per row ---------------------------------------------------------------------------------


def forged(header: dict, claims: dict, signature: str = "") -> str:
    return f"{b64(header)}.{b64(claims)}.{signature}"


def claims_for(client_id: str, **extra) -> dict:
    now = int(time.time())
    return {
        "iss": client_id,
        "sub": client_id,
        "aud": AUD,
        "exp": now + 300,
        "jti": f"j{now}{extra}",
        **extra,
    }


def test_alg_none_is_refused(client, engine, ehr) -> None:
    assertion = forged({"alg": "none", "kid": "kapgw-test-rs384-1", "typ": "JWT"}, claims_for(ehr))
    assert_refused(post(client, token_form(assertion)), 400, "invalid_client", engine)


def test_hs256_with_the_public_key_as_secret_is_refused(client, engine, ehr) -> None:
    """The classic key-confusion attack: HMAC keyed with the RSA public key the server knows."""
    public = json.dumps(public_jwks(RS384)["keys"][0]).encode()
    secret = jwk.OctKey.import_key(public)
    header = {"alg": "HS256", "kid": "kapgw-test-rs384-1", "typ": "JWT"}
    assertion = jwt.encode(header, claims_for(ehr), secret, algorithms=["HS256"])
    assert_refused(post(client, token_form(assertion)), 400, "invalid_client", engine)


def test_rs256_is_refused(client, engine, ehr) -> None:
    assertion = sign_assertion(ehr, AUD, alg="RS256")
    assert_refused(post(client, token_form(assertion)), 400, "invalid_client", engine)


@pytest.mark.parametrize(
    "header",
    [
        pytest.param({"kid": None}, id="kid-missing"),
        pytest.param({"kid": "no-such-kid"}, id="kid-unknown"),
        pytest.param({"typ": "at+jwt"}, id="typ-not-jwt"),
        pytest.param({"typ": None}, id="typ-missing"),
        pytest.param({"jku": "https://attacker.test/jwks.json"}, id="jku-not-registered"),
        pytest.param({"jwk": {"kty": "RSA", "n": "x", "e": "AQAB"}}, id="embedded-jwk"),
    ],
)
def test_header_checks(client, engine, ehr, header) -> None:
    assertion = sign_assertion(ehr, AUD, header=header)
    assert_refused(post(client, token_form(assertion)), 400, "invalid_client", engine)


def test_kid_of_the_wrong_key_type_is_refused(client, engine, ehr) -> None:
    """ES384 signed, but kid names the RSA key: kty does not fit alg."""
    assertion = sign_assertion(ehr, AUD, key=ES384, header={"kid": "kapgw-test-rs384-1"})
    assert_refused(post(client, token_form(assertion)), 400, "invalid_client", engine)


def test_signature_by_another_key_with_the_same_kid_is_refused(client, engine, ehr) -> None:
    assert private_jwk(IMPOSTOR)["kid"] == private_jwk(RS384)["kid"]
    assertion = sign_assertion(ehr, AUD, key=IMPOSTOR)
    assert_refused(post(client, token_form(assertion)), 400, "invalid_client", engine)


def test_tampered_claims_fail_the_signature(client, engine, ehr) -> None:
    head, _, signature = sign_assertion(ehr, AUD).split(".")
    assertion = f"{head}.{b64(claims_for(ehr, extra='x'))}.{signature}"
    assert_refused(post(client, token_form(assertion)), 400, "invalid_client", engine)


@pytest.mark.parametrize(
    ("claims", "drop"),
    [
        pytest.param({"sub": "someone-else"}, (), id="iss-not-sub"),
        pytest.param({}, ("iss",), id="iss-missing"),
        pytest.param({}, ("sub",), id="sub-missing"),
        pytest.param({"aud": "http://testserver/auth/token/"}, (), id="aud-trailing-slash"),
        pytest.param({"aud": "https://other.test/token"}, (), id="aud-wrong"),
        pytest.param({}, ("aud",), id="aud-missing"),
        pytest.param({}, ("exp",), id="exp-missing"),
        pytest.param({"exp": int(time.time()) - 120}, (), id="expired"),
        pytest.param({"exp": int(time.time()) + 600}, (), id="exp-too-far"),
        pytest.param({"exp": "soon"}, (), id="exp-not-a-number"),
        pytest.param({"nbf": int(time.time()) + 600}, (), id="not-yet-valid"),
        pytest.param({}, ("jti",), id="jti-missing"),
        pytest.param({"jti": 42}, (), id="jti-not-a-string"),
    ],
)
def test_claim_checks(client, engine, ehr, claims, drop) -> None:
    assertion = sign_assertion(ehr, AUD, claims=claims, drop=drop)
    assert_refused(post(client, token_form(assertion)), 400, "invalid_client", engine)


def test_exp_exactly_five_minutes_ahead_is_accepted(client, ehr) -> None:
    """Inferno sends exp = now + 300."""
    assert post(client, token_form(sign_assertion(ehr, AUD, lifetime=300))).status_code == 200


def test_aud_as_a_list_naming_us_is_accepted(client, ehr) -> None:
    assertion = sign_assertion(ehr, AUD, claims={"aud": [AUD]})
    assert post(client, token_form(assertion)).status_code == 200


def test_form_client_id_must_be_the_issuer(client, engine, ehr) -> None:
    form = token_form(sign_assertion(ehr, AUD)) | {"client_id": "someone-else"}
    assert_refused(post(client, form), 400, "invalid_client", engine)
    form = token_form(sign_assertion(ehr, AUD)) | {"client_id": ehr}
    assert post(client, form).status_code == 200


def test_replayed_jti_is_refused(client, engine, ehr) -> None:
    assertion = sign_assertion(ehr, AUD)
    assert post(client, token_form(assertion)).status_code == 200
    replay = post(client, token_form(assertion))
    assert_refused(replay, 400, "invalid_client")
    assert "jti" in replay.json()["error_description"]
    assert tokens_issued(engine) == 1


def test_jti_is_used_even_when_the_grant_then_fails(client, engine, ehr) -> None:
    """A replay with another scope must fail too: the jti is spent by the first try."""
    assertion = sign_assertion(ehr, AUD)
    assert_refused(post(client, token_form(assertion, scope="system/*.cruds")), 400, "invalid_scope", engine)
    assert_refused(post(client, token_form(assertion, scope="system/*.rs")), 400, "invalid_client", engine)


def test_same_jti_from_another_client_is_not_a_replay(client, engine, ehr) -> None:
    other = register_ehr_client(engine, clinics=("clinic-a",), name="Other EHR")
    jti = "shared-jti-value"
    assert post(client, token_form(sign_assertion(ehr, AUD, claims={"jti": jti}))).status_code == 200
    assert post(client, token_form(sign_assertion(other, AUD, claims={"jti": jti}))).status_code == 200


def test_replay_store_is_in_the_database(client, engine, ehr) -> None:
    """Another process (a second app on the same database) refuses the replay too."""
    from fastapi.testclient import TestClient

    from gateway.app import create_app

    assertion = sign_assertion(ehr, AUD)
    assert post(client, token_form(assertion)).status_code == 200
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(AssertionJtiRow)).scalar_one() == 1
    second = create_app(client.app.state.settings, migrate_sqlite=False)
    with TestClient(second) as other_process:
        assert_refused(post(other_process, token_form(assertion)), 400, "invalid_client")


# --- the client itself --------------------------------------------------------------------------------------


def test_disabled_client_is_refused(client, engine, ehr) -> None:
    with Session(engine) as session:
        session.execute(update(ClientRow).where(ClientRow.client_id == ehr).values(disabled=True))
        session.commit()
    assert_refused(post(client, token_form(sign_assertion(ehr, AUD))), 400, "invalid_client", engine)


def test_unknown_client_is_refused(client, engine) -> None:
    register_ehr_client(engine)
    assertion = sign_assertion("no-such-client", AUD)
    assert_refused(post(client, token_form(assertion)), 400, "invalid_client", engine)


def test_clinic_client_cannot_use_an_assertion(client, engine, clinic) -> None:
    """A client_secret_basic client has no keys: an assertion in its name is refused."""
    before = tokens_issued(engine)
    response = post(client, token_form(sign_assertion(clinic.client_id, AUD), scope=None))
    assert_refused(response, 400, "invalid_client")
    assert tokens_issued(engine) == before


def test_basic_and_assertion_together_is_invalid_request(client, engine, ehr) -> None:
    response = client.post("/auth/token", data=token_form(sign_assertion(ehr, AUD)), auth=(ehr, "x"))
    assert_refused(response, 400, "invalid_request", engine)


# --- BS-7: scope ceiling -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scope",
    [
        pytest.param("system/*.cruds", id="more-permissions"),
        pytest.param("system/*.write", id="v1-write"),
        pytest.param("patient/*.rs", id="patient-context"),
        pytest.param("user/Observation.rs", id="user-context"),
        pytest.param("clinic/records.write", id="clinic-scope"),
        pytest.param("system/Observation.dus", id="malformed"),
        pytest.param("system/*.rs launch", id="launch"),
    ],
)
def test_scope_outside_the_ceiling_is_invalid_scope(client, engine, ehr, scope) -> None:
    assert_refused(
        post(client, token_form(sign_assertion(ehr, AUD), scope=scope)), 400, "invalid_scope", engine
    )


def test_narrow_ceiling(client, engine) -> None:
    ehr = register_ehr_client(engine, scope="system/Observation.rs system/Patient.rs")
    assert post(client, token_form(sign_assertion(ehr, AUD), scope="system/Patient.r")).status_code == 200
    assert_refused(
        post(client, token_form(sign_assertion(ehr, AUD), scope="system/*.rs")), 400, "invalid_scope"
    )


# --- JWKS by URL (BS-6), jku, caching, rotation -------------------------------------------------------------


def test_jwks_url_client(client, engine) -> None:
    with jwks_server() as server:
        ehr = register_ehr_client(engine, jwks_uri=server.url)
        for key in (RS384, ES384, RS384):
            assert post(client, token_form(sign_assertion(ehr, AUD, key=key))).status_code == 200
        assert len(server.hits) == 1  # cached (max-age=300)
        assert server.hits[0].get("Accept") == "application/json"
        assert "Authorization" not in server.hits[0]


def test_jku_equal_to_the_registered_url_is_accepted(client, engine) -> None:
    with jwks_server() as server:
        ehr = register_ehr_client(engine, jwks_uri=server.url)
        assertion = sign_assertion(ehr, AUD, header={"jku": server.url})
        assert post(client, token_form(assertion)).status_code == 200


def test_jku_elsewhere_is_refused_and_never_fetched(client, engine) -> None:
    with jwks_server() as registered, jwks_server() as elsewhere:
        ehr = register_ehr_client(engine, jwks_uri=registered.url)
        assertion = sign_assertion(ehr, AUD, header={"jku": elsewhere.url})
        assert_refused(post(client, token_form(assertion)), 400, "invalid_client", engine)
        assert elsewhere.hits == []


def test_key_rotation_via_jwks_url(client, engine) -> None:
    """The client publishes a new key: an unknown kid re-fetches the set once, then it is cached."""
    with jwks_server(public_jwks(RS384)) as server:
        ehr = register_ehr_client(engine, jwks_uri=server.url)
        assert post(client, token_form(sign_assertion(ehr, AUD))).status_code == 200
        server.jwks = public_jwks(ROTATED)
        default_fetcher.min_refresh_seconds = 0
        try:
            assert post(client, token_form(sign_assertion(ehr, AUD, key=ROTATED))).status_code == 200
            assert len(server.hits) == 2
            assert post(client, token_form(sign_assertion(ehr, AUD, key=ROTATED))).status_code == 200
            assert len(server.hits) == 2
            # the old key is gone from the set: after the next refresh it no longer verifies
            assert_refused(
                post(client, token_form(sign_assertion(ehr, AUD, key=RS384))), 400, "invalid_client"
            )
        finally:
            default_fetcher.min_refresh_seconds = 10


def test_unknown_kid_refetches_at_most_once_per_interval(client, engine) -> None:
    with jwks_server(public_jwks(RS384)) as server:
        ehr = register_ehr_client(engine, jwks_uri=server.url)
        assert post(client, token_form(sign_assertion(ehr, AUD))).status_code == 200
        for _ in range(3):
            assertion = sign_assertion(ehr, AUD, header={"kid": "unknown-kid"})
            assert_refused(post(client, token_form(assertion)), 400, "invalid_client")
        assert len(server.hits) == 1  # fetched a moment ago: unknown kids do not re-fetch within the interval


def test_no_store_is_not_cached(client, engine) -> None:
    with jwks_server() as server:
        server.cache_control = "no-store"
        ehr = register_ehr_client(engine, jwks_uri=server.url)
        for _ in range(2):
            assert post(client, token_form(sign_assertion(ehr, AUD))).status_code == 200
        assert len(server.hits) == 2


def test_unreachable_jwks_url_is_invalid_client(client, engine) -> None:
    with jwks_server() as server:
        server.status = 500
        ehr = register_ehr_client(engine, jwks_uri=server.url)
        assert_refused(post(client, token_form(sign_assertion(ehr, AUD))), 400, "invalid_client", engine)


# --- throttle -----------------------------------------------------------------------------------------------


def test_failed_assertions_count_toward_the_throttle(client, engine, ehr, settings) -> None:
    for _ in range(settings.token_throttle_client_failures):
        bad = sign_assertion(ehr, AUD, key=IMPOSTOR)
        assert post(client, token_form(bad)).status_code == 400
    response = post(client, token_form(sign_assertion(ehr, AUD)))
    assert response.status_code == 429
    assert response.json()["error"] == "slow_down"
    assert int(response.headers["retry-after"]) >= 1


def test_successful_assertions_do_not_count(client, ehr, settings) -> None:
    for _ in range(settings.token_throttle_client_failures + 2):
        assert post(client, token_form(sign_assertion(ehr, AUD))).status_code == 200
