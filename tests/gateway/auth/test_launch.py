"""SMART App Launch: authorize (AUTHZ-1..8), authorization_code at the token endpoint (TOK-1..7), refresh
(REF-1..2), OpenID Connect id_token (OIDC-1), the sign-in and consent pages."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import update
from sqlmodel import Session, select
from support import smart
from support.launch import (
    PASSWORD,
    PATIENT,
    REDIRECT_URI,
    Launch,
    browse_to_code,
    hidden_inputs,
    make_app,
    make_user,
    patient_id,
    query_of,
)

from gateway.auth.clients import create_clinic
from gateway.auth.service import authenticate_bearer
from gateway.core.errors import UnauthorizedError
from gateway.db.tables import AuditEventRow, AuthorizationCodeRow

AUD = "http://testserver/fhir"


@pytest.fixture
def app(engine, clinic):
    clinic.put("patients", "p-1", PATIENT)
    clinic.put("patients", "p-2", {**PATIENT, "given_name": "Bea"})
    make_user(engine, "dr-a", [clinic.slug])
    return make_app(engine, clinic.slug)


@pytest.fixture
def launch(app) -> Launch:
    return Launch(app, aud=AUD)


def principal_of(engine, settings, token: str):
    with Session(engine) as session:
        return authenticate_bearer(session, settings, authorization=f"Bearer {token}")


def is_revoked(engine, settings, token: str) -> bool:
    try:
        principal_of(engine, settings, token)
    except UnauthorizedError:
        return True
    return False


def exchange(client, launch: Launch, code: str, **overrides):
    return client.post("/auth/token", data=launch.token_form(code, **overrides), auth=launch.auth())


def full_launch(client, launch: Launch, **browse):
    redirect = browse_to_code(
        client, launch, patient=browse.pop("patient", patient_id("clinic-a", "p-1")), **browse
    )
    response = exchange(client, launch, redirect["code"])
    assert response.status_code == 200, response.text
    return response


# --- the happy path ---


@pytest.mark.parametrize("method", [pytest.param("GET", id="get"), pytest.param("POST", id="post")])
def test_standalone_patient_launch(client, engine, settings, launch, method) -> None:
    chosen = patient_id("clinic-a", "p-2")
    redirect = browse_to_code(client, launch, patient=chosen, method=method)
    assert redirect["state"] == launch.state  # AUTHZ-6: state round-trips exactly
    assert set(redirect) == {"code", "state"}
    response = exchange(client, launch, redirect["code"])
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"  # TOK-4
    assert "no-cache" in response.headers["pragma"]
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert isinstance(body["expires_in"], int) and 0 < body["expires_in"] <= 3600  # TOK-2, TOK-6
    assert body["scope"] == launch.scope
    assert body["patient"] == chosen
    assert body["need_patient_banner"] is True
    assert isinstance(body["refresh_token"], str) and body["refresh_token"]
    assert "fhirUser" not in body  # an id_token claim, not a token-response field
    principal = principal_of(engine, settings, body["access_token"])
    assert principal.kind == "app"
    assert principal.patient_id == chosen  # /fhir shows only this patient
    assert principal.fhir_user is not None and "/fhir/Practitioner/" in principal.fhir_user
    assert principal.scopes == frozenset(launch.scope.split())


def test_id_token_is_rs256_signed_by_the_jwks_key(client, launch) -> None:
    launch.scope = "openid fhirUser profile launch/patient patient/*.rs"
    page = client.get("/auth/authorize", params=launch.params(nonce="n-123"), follow_redirects=False)
    form = hidden_inputs(page.text)
    consent = client.post("/auth/login", data={**form, "username": "dr-a", "password": PASSWORD})
    done = client.post(
        "/auth/consent",
        data={**hidden_inputs(consent.text), "decision": "approve", "patient": patient_id("clinic-a", "p-1")},
        follow_redirects=False,
    )
    body = exchange(client, launch, query_of(done.headers["location"])["code"]).json()
    assert "refresh_token" not in body  # no offline_access / online_access: no refresh token (TOK-6)
    keys = client.get("/auth/jwks")
    assert keys.status_code == 200 and keys.headers["content-type"].startswith("application/json")
    jwks = keys.json()
    assert all(k["kty"] == "RSA" and "d" not in k and "p" not in k for k in jwks["keys"])
    token = jwt.decode(body["id_token"], KeySet.import_key_set(jwks), algorithms=["RS256"])
    assert token.header["alg"] == "RS256"
    assert token.header["kid"] in {k["kid"] for k in jwks["keys"]}
    claims = token.claims
    assert claims["iss"] == "http://testserver"
    assert claims["aud"] == launch.app.client_id
    assert claims["sub"] and len(claims["sub"]) <= 255
    assert claims["exp"] > time.time() >= claims["iat"] - 5
    assert claims["nonce"] == "n-123"
    assert claims["name"] == "Dr dr-a"
    assert claims["fhirUser"].startswith("http://testserver/fhir/Practitioner/")
    oidc = client.get("/.well-known/openid-configuration").json()
    assert oidc["issuer"] == claims["iss"] and oidc["jwks_uri"] == "http://testserver/auth/jwks"


def test_no_fhir_user_claim_without_the_scope(client, launch) -> None:
    launch.scope = "openid launch/patient patient/*.rs"
    body = full_launch(client, launch).json()
    claims = jwt.decode(
        body["id_token"], KeySet.import_key_set(client.get("/auth/jwks").json()), algorithms=["RS256"]
    ).claims
    assert "fhirUser" not in claims


def test_user_level_launch_has_no_patient(client, engine, settings, launch) -> None:
    launch.scope = "user/*.rs openid fhirUser"
    redirect = browse_to_code(client, launch)
    body = exchange(client, launch, redirect["code"]).json()
    assert "patient" not in body
    assert principal_of(engine, settings, body["access_token"]).patient_id is None


def test_scope_is_narrowed_to_the_registered_scopes(client, launch) -> None:
    launch.scope = "launch/patient patient/Observation.rs system/*.rs openid"
    body = full_launch(client, launch).json()
    assert body["scope"] == "launch/patient patient/Observation.rs openid"


def test_confidential_symmetric_app(client, engine, clinic) -> None:
    clinic.put("patients", "p-1", PATIENT)
    make_user(engine, "dr-a", [clinic.slug])
    app = make_app(engine, clinic.slug, public=False)
    assert app.client_secret
    launch = Launch(app, aud=AUD)
    code = browse_to_code(client, launch, patient=patient_id("clinic-a", "p-1"))["code"]
    wrong = client.post("/auth/token", data=launch.token_form(code), auth=(app.client_id, "wrong"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert "www-authenticate" in wrong.headers
    no_secret = client.post("/auth/token", data={**launch.token_form(code), "client_id": app.client_id})
    assert no_secret.status_code == 400 and no_secret.json()["error"] == "invalid_client"
    ok = client.post("/auth/token", data=launch.token_form(code), auth=(app.client_id, app.client_secret))
    assert ok.status_code == 200, ok.text


# --- authorize errors (AUTHZ-3, 4, 5, 8) ---


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"client_id": "nobody"}, id="unknown-client"),
        pytest.param({"client_id": None}, id="no-client"),
        pytest.param({"redirect_uri": "https://evil.test/callback"}, id="unregistered-redirect"),
        pytest.param({"redirect_uri": REDIRECT_URI + "/"}, id="redirect-not-exact"),
        pytest.param({"redirect_uri": None}, id="no-redirect"),
    ],
)
def test_untrusted_client_or_redirect_gets_an_error_page(client, launch, overrides) -> None:
    response = client.get("/auth/authorize", params=launch.params(**overrides), follow_redirects=False)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        pytest.param({"aud": "https://inferno.healthit.gov/invalid_aud"}, "invalid_request", id="wrong-aud"),
        pytest.param({"aud": None}, "invalid_request", id="no-aud"),
        pytest.param({"code_challenge": None}, "invalid_request", id="no-pkce"),
        pytest.param({"code_challenge_method": "plain"}, "invalid_request", id="plain-pkce"),
        pytest.param({"code_challenge_method": None}, "invalid_request", id="pkce-method-missing"),
        pytest.param({"code_challenge": "short"}, "invalid_request", id="pkce-malformed"),
        pytest.param({"response_type": "token"}, "unsupported_response_type", id="implicit"),
        pytest.param({"response_type": None}, "invalid_request", id="no-response-type"),
        pytest.param({"scope": "system/*.rs"}, "invalid_scope", id="scope-not-registered"),
        pytest.param({"scope": "patient/Observation.dus"}, "invalid_scope", id="scope-malformed"),
        pytest.param({"scope": None}, "invalid_scope", id="no-scope"),
        pytest.param({"launch": "xyz"}, "invalid_request", id="launch-without-launch-scope"),
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_authorize_errors_redirect_with_state(client, launch, overrides, error, method) -> None:
    params = launch.params(**overrides)
    if method == "GET":
        response = client.get("/auth/authorize", params=params, follow_redirects=False)
    else:
        response = client.post("/auth/authorize", data=params, follow_redirects=False)
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    query = query_of(location)
    assert query["error"] == error
    assert query["state"] == launch.state
    assert "code" not in query


def test_missing_state_is_refused(client, launch) -> None:
    response = client.get("/auth/authorize", params=launch.params(state=None), follow_redirects=False)
    query = query_of(response.headers["location"])
    assert query["error"] == "invalid_request" and "state" not in query and "code" not in query


def test_repeated_parameter_is_refused(client, launch) -> None:
    params = [*launch.params().items(), ("scope", "openid")]
    response = client.get("/auth/authorize", params=params, follow_redirects=False)
    assert response.status_code == 400 and "location" not in response.headers


def test_deny_redirects_access_denied(client, launch) -> None:
    redirect = browse_to_code(client, launch, decision="deny")
    assert redirect["error"] == "access_denied" and redirect["state"] == launch.state
    assert "code" not in redirect


def test_patient_of_another_clinic_cannot_be_chosen(client, engine, make_clinic, launch) -> None:
    other = make_clinic("clinic-b")
    other.put("patients", "p-9", PATIENT)
    redirect = browse_to_code(client, launch, patient=patient_id("clinic-b", "p-9"))
    assert redirect["error"] == "access_denied" and "code" not in redirect


def test_patient_scope_needs_a_patient(client, launch) -> None:
    redirect = browse_to_code(client, launch, patient=None)
    assert redirect["error"] == "access_denied"


# --- token errors (TOK-5, TOK-7) ---


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"code_verifier": None}, id="no-verifier"),
        pytest.param({"code_verifier": ""}, id="blank-verifier"),
        pytest.param({"code_verifier": "x" * 43}, id="wrong-verifier"),
        pytest.param({"code_verifier": "challenge"}, id="plain-verifier"),
        pytest.param({"redirect_uri": "https://app.test/other"}, id="other-redirect-uri"),
        pytest.param({"redirect_uri": None}, id="no-redirect-uri"),
        pytest.param({"code": "BAD_CODE"}, id="bad-code"),
    ],
)
def test_code_exchange_errors(client, engine, settings, launch, overrides) -> None:
    code = browse_to_code(client, launch, patient=patient_id("clinic-a", "p-1"))["code"]
    form = launch.token_form(code)
    for name, value in overrides.items():
        if value is None:
            del form[name]
        else:
            form[name] = launch.challenge if value == "challenge" else value
    response = client.post("/auth/token", data=form)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant"
    assert set(response.json()) == {"error", "error_description"}
    assert "access_token" not in response.text
    # the code was not spent by the failed attempt
    assert exchange(client, launch, code).status_code == 200


def test_reused_code_is_refused_and_revokes_the_first_tokens(client, engine, settings, launch) -> None:
    code = browse_to_code(client, launch, patient=patient_id("clinic-a", "p-1"))["code"]
    first = exchange(client, launch, code).json()
    assert not is_revoked(engine, settings, first["access_token"])
    second = exchange(client, launch, code)
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    assert is_revoked(engine, settings, first["access_token"])
    refresh = client.post(
        "/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "client_id": launch.app.client_id,
        },
    )
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"


def test_expired_code_is_refused(client, engine, launch) -> None:
    code = browse_to_code(client, launch, patient=patient_id("clinic-a", "p-1"))["code"]
    with Session(engine) as session:
        session.exec(update(AuthorizationCodeRow).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        session.commit()
    response = exchange(client, launch, code)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert "expired" in response.json()["error_description"]


def test_code_lifetime_is_short(client, engine, launch) -> None:
    browse_to_code(client, launch, patient=patient_id("clinic-a", "p-1"))
    with Session(engine) as session:
        row = session.exec(select(AuthorizationCodeRow)).one()
    assert (row.expires_at - row.created_at).total_seconds() == 60


def test_code_of_another_client_is_refused(client, engine, launch) -> None:
    code = browse_to_code(client, launch, patient=patient_id("clinic-a", "p-1"))["code"]
    other = make_app(engine, "clinic-a")
    response = client.post("/auth/token", data={**launch.token_form(code), "client_id": other.client_id})
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_public_app_cannot_use_client_credentials(client, launch) -> None:
    response = client.post(
        "/auth/token", data={"grant_type": "client_credentials", "client_id": launch.app.client_id}
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_client"


def test_unknown_public_client_is_invalid_client(client, launch) -> None:
    response = client.post("/auth/token", data={**launch.token_form("abc"), "client_id": "nobody"})
    assert response.status_code == 400 and response.json()["error"] == "invalid_client"


# --- refresh (REF-1, REF-2, TOK-6) ---


def refresh(client, launch: Launch, token: str, **extra):
    return client.post(
        "/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": token,
            "client_id": launch.app.client_id,
            **extra,
        },
    )


def test_refresh_twice_rotates_and_keeps_the_context(client, engine, settings, launch) -> None:
    first = full_launch(client, launch).json()
    again = refresh(client, launch, first["refresh_token"])
    assert again.status_code == 200, again.text
    assert again.headers["cache-control"] == "no-store" and "no-cache" in again.headers["pragma"]
    body = again.json()
    assert body["scope"] == launch.scope and isinstance(body["expires_in"], int)
    assert body["refresh_token"] != first["refresh_token"]
    assert body["patient"] == first["patient"]
    third = refresh(client, launch, body["refresh_token"], scope=body["scope"])
    assert third.status_code == 200, third.text
    assert principal_of(engine, settings, third.json()["access_token"]).patient_id == first["patient"]


def test_refresh_may_narrow_but_not_widen(client, launch) -> None:
    first = full_launch(client, launch).json()
    narrowed = refresh(client, launch, first["refresh_token"], scope="patient/*.rs")
    assert narrowed.status_code == 200 and narrowed.json()["scope"] == "patient/*.rs"
    wider = refresh(client, launch, narrowed.json()["refresh_token"], scope="patient/*.rs user/*.rs")
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"


def test_rotated_refresh_token_reused_ends_the_grant(client, engine, settings, launch) -> None:
    first = full_launch(client, launch).json()
    second = refresh(client, launch, first["refresh_token"]).json()
    replay = refresh(client, launch, first["refresh_token"])
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert is_revoked(engine, settings, second["access_token"])
    assert refresh(client, launch, second["refresh_token"]).status_code == 400


def test_random_refresh_token_is_refused(client, launch) -> None:
    response = refresh(client, launch, "not-a-refresh-token")
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_no_refresh_token_without_offline_or_online_access(client, launch) -> None:
    launch.scope = "launch/patient patient/*.rs"
    assert "refresh_token" not in full_launch(client, launch).json()


def test_online_access_gives_a_refresh_token(client, launch) -> None:
    launch.scope = "launch/patient patient/*.rs online_access"
    assert full_launch(client, launch).json()["refresh_token"]


# --- revocation (RFC 7009, REF-2) ---


def revoke(client, launch: Launch, token: str, **extra):
    return client.post("/auth/revoke", data={"token": token, "client_id": launch.app.client_id, **extra})


def test_revoked_refresh_token_ends_the_grant(client, engine, settings, launch) -> None:
    body = full_launch(client, launch).json()
    response = revoke(client, launch, body["refresh_token"], token_type_hint="refresh_token")
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    assert is_revoked(engine, settings, body["access_token"])
    after = refresh(client, launch, body["refresh_token"])
    assert after.status_code == 400 and after.json()["error"] == "invalid_grant"


def test_revoked_access_token_stops_working(client, engine, settings, launch) -> None:
    body = full_launch(client, launch).json()
    assert revoke(client, launch, body["access_token"]).status_code == 200
    assert is_revoked(engine, settings, body["access_token"])


def test_revoke_unknown_or_foreign_token_changes_nothing(client, engine, settings, launch) -> None:
    body = full_launch(client, launch).json()
    other = Launch(make_app(engine, "clinic-a"), aud=AUD)
    assert revoke(client, launch, "no-such-token").status_code == 200
    assert revoke(client, other, body["access_token"]).status_code == 200
    assert not is_revoked(engine, settings, body["access_token"])


def test_revoke_needs_client_authentication(client, launch) -> None:
    body = full_launch(client, launch).json()
    response = client.post("/auth/revoke", data={"token": body["access_token"]})
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    missing = client.post("/auth/revoke", data={"client_id": launch.app.client_id})
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"


# --- sign-in and consent pages ---


def test_pages_are_self_contained_and_framing_refused(client, launch) -> None:
    page = client.get("/auth/authorize", params=launch.params(), follow_redirects=False)
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert "<script" not in page.text and "src=" not in page.text and "<link" not in page.text
    consent = client.post(
        "/auth/login", data={**hidden_inputs(page.text), "username": "dr-a", "password": PASSWORD}
    )
    assert "https://app.test" in consent.headers["content-security-policy"]  # consent redirects there
    assert "Bea Testperson" in consent.text and "Ada Testperson" in consent.text  # the patient picker


def test_wrong_password_shows_the_sign_in_page_again(client, launch) -> None:
    page = client.get("/auth/authorize", params=launch.params(), follow_redirects=False)
    response = client.post(
        "/auth/login", data={**hidden_inputs(page.text), "username": "dr-a", "password": "not the password"}
    )
    assert response.status_code == 401
    assert 'name="username"' in response.text and "decision" not in response.text


def test_user_of_another_clinic_cannot_sign_in(client, engine, launch) -> None:
    with Session(engine) as session:
        create_clinic(session, slug="clinic-b", name="B")
    make_user(engine, "dr-b", ["clinic-b"])
    page = client.get("/auth/authorize", params=launch.params(), follow_redirects=False)
    response = client.post(
        "/auth/login", data={**hidden_inputs(page.text), "username": "dr-b", "password": PASSWORD}
    )
    assert response.status_code == 401


def test_sign_in_is_throttled(client, launch) -> None:
    page = client.get("/auth/authorize", params=launch.params(), follow_redirects=False)
    form = hidden_inputs(page.text)
    statuses = [
        client.post(
            "/auth/login", data={**form, "username": "dr-a", "password": "wrong password"}
        ).status_code
        for _ in range(6)
    ]
    assert statuses == [401] * 5 + [429]
    blocked = client.post("/auth/login", data={**form, "username": "dr-a", "password": PASSWORD})
    assert blocked.status_code == 429


@pytest.mark.parametrize("attack", ["no-cookie", "other-cookie", "altered-request", "no-csrf"])
def test_forms_are_csrf_protected(client, launch, attack) -> None:
    page = client.get("/auth/authorize", params=launch.params(), follow_redirects=False)
    form = {**hidden_inputs(page.text), "username": "dr-a", "password": PASSWORD}
    if attack == "no-cookie":
        client.cookies.clear()
    elif attack == "other-cookie":
        client.cookies.set("kapgw_csrf", "x" * 43, path="/auth")
        form["csrf"] = "x" * 43
    elif attack == "altered-request":
        form["request"] = form["request"].replace(
            form["request"][5], "A" if form["request"][5] != "A" else "B", 1
        )
    else:
        del form["csrf"]
    response = client.post("/auth/login", data=form)
    assert response.status_code == 403
    assert "decision" not in response.text


def test_consent_needs_a_signed_in_user(client, launch) -> None:
    page = client.get("/auth/authorize", params=launch.params(), follow_redirects=False)
    response = client.post("/auth/consent", data={**hidden_inputs(page.text), "decision": "approve"})
    assert response.status_code == 403 and "location" not in response.headers


def test_public_client_refreshes_with_the_refresh_token_alone(client, launch) -> None:
    first = full_launch(client, launch).json()
    response = client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert response.status_code == 200, response.text
    assert response.json()["patient"] == first["patient"]


def test_confidential_client_must_authenticate_to_refresh(client, engine, clinic) -> None:
    clinic.put("patients", "p-1", PATIENT)
    make_user(engine, "dr-a", [clinic.slug])
    launch = Launch(make_app(engine, clinic.slug, public=False), aud=AUD)
    code = browse_to_code(client, launch, patient=patient_id("clinic-a", "p-1"))["code"]
    first = exchange(client, launch, code).json()
    bare = client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert bare.status_code == 401 and bare.json()["error"] == "invalid_client"
    named = client.post(
        "/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "client_id": launch.app.client_id,
        },
    )
    assert named.status_code == 400 and named.json()["error"] == "invalid_client"
    ok = client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=launch.auth(),
    )
    assert ok.status_code == 200, ok.text


def test_confidential_asymmetric_app_exchanges_refreshes_and_revokes(
    client, engine, settings, clinic
) -> None:
    clinic.put("patients", "p-1", PATIENT)
    make_user(engine, "dr-a", [clinic.slug])
    app = make_app(engine, clinic.slug, public=False, jwks=smart.public_jwks(smart.RS384))
    assert app.client_secret is None
    launch = Launch(app, aud=AUD)
    code = browse_to_code(client, launch, patient=patient_id("clinic-a", "p-1"))["code"]

    def assertion(**kwargs) -> dict[str, str]:
        signed = smart.sign_assertion(app.client_id, "http://testserver/auth/token", **kwargs)
        return {"client_assertion_type": smart.ASSERTION_TYPE, "client_assertion": signed}

    form = {k: v for k, v in launch.token_form(code).items() if k != "client_id"}
    impostor = client.post("/auth/token", data={**form, **assertion(key=smart.IMPOSTOR)})
    assert impostor.status_code in (400, 401) and impostor.json()["error"] == "invalid_client"
    body = client.post("/auth/token", data={**form, **assertion()}).json()
    assert body["patient"] == patient_id("clinic-a", "p-1")
    refresh = {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    unauthenticated = client.post("/auth/token", data=refresh)
    assert unauthenticated.status_code == 401 and unauthenticated.json()["error"] == "invalid_client"
    refreshed = client.post("/auth/token", data={**refresh, **assertion()})
    assert refreshed.status_code == 200, refreshed.text
    revoked = client.post("/auth/revoke", data={"token": refreshed.json()["refresh_token"], **assertion()})
    assert revoked.status_code == 200
    assert is_revoked(engine, settings, refreshed.json()["access_token"])


def audit_events(client, engine) -> list[dict]:
    client.app.state.audit.flush()
    with Session(engine) as session:
        rows = session.exec(select(AuditEventRow).order_by(AuditEventRow.id)).all()
    return [json.loads(row.content) | {"_action": row.action} for row in rows]


def test_sign_in_failures_and_code_exchanges_are_audited_without_secrets(client, engine, launch) -> None:
    page = client.get("/auth/authorize", params=launch.params(), follow_redirects=False)
    client.post(
        "/auth/login", data={**hidden_inputs(page.text), "username": "dr-a", "password": "not-the-Pa55word"}
    )
    code = browse_to_code(client, launch, patient=patient_id("clinic-a", "p-1"))["code"]
    body = exchange(client, launch, code).json()
    events = audit_events(client, engine)
    (failed,) = [e for e in events if e.get("outcomeDesc", "").startswith("clinician sign-in refused")]
    assert failed["_action"] == "authentication-failure" and failed["outcome"] == "4"
    issued = [e for e in events if e["_action"] == "token" and e["outcome"] == "0"]
    assert any(
        d["valueString"] == "authorization_code"
        for e in issued
        for ent in e["entity"]
        for d in ent.get("detail", [])
    )
    text = json.dumps(events)
    for secret in (
        code,
        body["access_token"],
        body["refresh_token"],
        launch.verifier,
        PASSWORD,
        "not-the-Pa55word",
    ):
        assert secret not in text
