"""Standalone SMART App Launch against a live gateway (`kap-gateway serve`, uvicorn, a free port) driven by
independent SMART clients over real HTTP:

* Python ``fhirclient`` (smart-on-fhir/client-py): it discovers the endpoints from the CapabilityStatement's
  oauth-uris, and a clinician signs in and consents on the gateway's own pages (played with httpx and a
  cookie jar), then the client exchanges the code, refreshes, and reads the patient with its R4 models.
* the SMART JS client (npm ``fhirclient``, tools/smart-client/launch.js on Node), headless against a
  gateway in auto-approve test mode: as a public client and as a confidential-asymmetric client
  (private_key_jwt, RS384), and in an EHR launch (a launch minted at /admin/launches, opened as the app's
  launch URL with ``iss`` and ``launch``).

Every id_token is verified against the gateway's /auth/jwks with joserfc.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from sqlmodel import Session
from support.launch import PASSWORD, PATIENT, hidden_inputs, patient_id
from support.live_gateway import REPO_ROOT, LiveGateway

from gateway.auth.clients import create_admin_client, create_clinic, create_clinic_client
from gateway.auth.launch_clients import create_app_client
from gateway.auth.users import create_user
from gateway.core.config import Settings
from gateway.core.ids import resource_id
from gateway.db.engine import make_engine

pytestmark = pytest.mark.integration

TOOL = REPO_ROOT / "tools" / "smart-client"
REDIRECT_URI = "https://app.test/callback"
LAUNCH_URL = "https://app.test/launch"
SESSION = {
    "patient_id": "p-1",
    "kind": "integration",
    "start": "2026-11-09T10:00:00Z",
    "end": "2026-11-09T11:00:00Z",
    "status": "completed",
}
SLUG = "clinic-a"


@dataclass
class Seeded:
    gateway: LiveGateway
    public_app: str
    rs384_app: str
    rs384_private_jwk: dict
    practitioner_url: str
    ehr_app: str
    admin: tuple[str, str]

    @property
    def fhir_base(self) -> str:
        return self.gateway.base_url + "/fhir"


def _seed(database_url: str, gateway: LiveGateway) -> Seeded:
    """A clinic with two patients and a practitioner (through the records API), a clinician, and two apps."""
    key = RSAKey.generate_key(2048, parameters={"kid": "app-rs384", "alg": "RS384", "use": "sig"})
    engine = make_engine(Settings(database_url=database_url))
    try:
        with Session(engine, expire_on_commit=False) as session:
            create_clinic(session, slug=SLUG, name="Clinic A")
            records = create_clinic_client(session, clinic_slug=SLUG, name="records")
            create_user(session, username="dr-a", password=PASSWORD, clinic_slugs=[SLUG], practitioner="pr-1")
            scope = "launch/patient patient/*.rs openid fhirUser offline_access"
            public = create_app_client(
                session,
                clinic_slug=SLUG,
                name="Public app",
                redirect_uris=[REDIRECT_URI],
                scope=scope,
                public=True,
            )
            rs384 = create_app_client(
                session,
                clinic_slug=SLUG,
                name="Asymmetric app",
                redirect_uris=[REDIRECT_URI],
                scope=scope,
                jwks={"keys": [key.as_dict(private=False)]},
            )
            ehr_app = create_app_client(
                session,
                clinic_slug=SLUG,
                name="EHR-launched app",
                redirect_uris=[REDIRECT_URI],
                scope="launch openid fhirUser patient/*.rs",
                public=True,
                launch_url=LAUNCH_URL,
            )
            admin = create_admin_client(session, name="EHR integration")
    finally:
        engine.dispose()
    token = httpx.post(
        f"{gateway.base_url}/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(records.client_id, records.client_secret),
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    for external_id, given in (("p-1", "Ada"), ("p-2", "Bea")):
        put = httpx.put(
            f"{gateway.base_url}/api/v1/patients/{external_id}",
            json={**PATIENT, "given_name": given},
            headers=headers,
        )
        assert put.status_code in (200, 201), put.text
    put = httpx.put(
        f"{gateway.base_url}/api/v1/practitioners/pr-1", json={"name": "Dr A Clinician"}, headers=headers
    )
    assert put.status_code in (200, 201), put.text
    put = httpx.put(f"{gateway.base_url}/api/v1/sessions/s-1", json=SESSION, headers=headers)
    assert put.status_code in (200, 201), put.text
    return Seeded(
        gateway=gateway,
        public_app=public.client_id,
        rs384_app=rs384.client_id,
        rs384_private_jwk=dict(key.as_dict(private=True)),
        practitioner_url=f"{gateway.base_url}/fhir/Practitioner/{resource_id(SLUG, 'practitioners', 'pr-1')}",
        ehr_app=ehr_app.client_id,
        admin=(admin.client_id, admin.client_secret),
    )


def _gateway(database_url: str, tmp_path: Path, **env: str) -> Iterator[Seeded]:
    with LiveGateway(database_url, workdir=tmp_path, env={"KAPGW_ENV": "test", **env}) as gateway:
        yield _seed(database_url, gateway)


@pytest.fixture
def gateway(database_url: str, tmp_path: Path) -> Iterator[Seeded]:
    yield from _gateway(database_url, tmp_path)


@pytest.fixture
def auto_gateway(database_url: str, tmp_path: Path) -> Iterator[Seeded]:
    yield from _gateway(
        database_url,
        tmp_path,
        KAPGW_LAUNCH_AUTO_APPROVE="true",
        KAPGW_LAUNCH_AUTO_APPROVE_USER="dr-a",
        KAPGW_LAUNCH_AUTO_APPROVE_PATIENT=patient_id(SLUG, "p-2"),
    )


def fhir_server_answers(seeded: Seeded) -> bool:
    """Whether the FHIR API (another part of the gateway) serves the CapabilityStatement yet."""
    return httpx.get(seeded.fhir_base + "/metadata").status_code == 200


def verified_id_token(seeded: Seeded, id_token: str, client_id: str) -> dict:
    jwks = httpx.get(seeded.gateway.base_url + "/auth/jwks").json()
    token = jwt.decode(id_token, KeySet.import_key_set(jwks), algorithms=["RS256"])
    claims = dict(token.claims)
    assert token.header["kid"] in {k["kid"] for k in jwks["keys"]}
    assert claims["iss"] == seeded.gateway.base_url and claims["aud"] == client_id and claims["sub"]
    return claims


def test_python_fhirclient_standalone_launch_with_sign_in_and_consent(gateway: Seeded) -> None:
    from fhirclient import client as fhir_client
    from fhirclient.auth import FHIROAuth2Auth

    smart = fhir_client.FHIRClient(
        settings={
            "app_id": gateway.public_app,
            "api_base": gateway.fhir_base,
            "redirect_uri": REDIRECT_URI,
            "scope": "openid fhirUser patient/*.rs offline_access",  # fhirclient adds launch/patient
        }
    )
    fhir_api = fhir_server_answers(gateway)
    if not fhir_api:  # until /fhir/metadata answers: the endpoints from the SMART configuration
        config = httpx.get(gateway.fhir_base + "/.well-known/smart-configuration").json()
        smart.server.auth = FHIROAuth2Auth(
            state={
                "app_id": gateway.public_app,
                "aud": gateway.fhir_base,
                "redirect_uri": REDIRECT_URI,
                "authorize_uri": config["authorization_endpoint"],
                "token_uri": config["token_endpoint"],
            }
        )
    authorize_url = smart.authorize_url
    assert "code_challenge_method=S256" in authorize_url and "launch%2Fpatient" in authorize_url
    chosen = patient_id(SLUG, "p-2")
    with httpx.Client() as browser:  # the clinician's browser: sign-in page, consent page, redirect
        page = browser.get(authorize_url)
        assert page.status_code == 200 and 'name="password"' in page.text
        consent = browser.post(
            gateway.gateway.base_url + "/auth/login",
            data={**hidden_inputs(page.text), "username": "dr-a", "password": PASSWORD},
        )
        assert consent.status_code == 200 and "Bea Testperson" in consent.text
        done = browser.post(
            gateway.gateway.base_url + "/auth/consent",
            data={**hidden_inputs(consent.text), "decision": "approve", "patient": chosen},
        )
    assert done.status_code == 303
    smart.handle_callback(done.headers["location"])  # checks state, exchanges the code (PKCE verifier)
    assert smart.ready and smart.patient_id == chosen
    context = smart.launch_context
    assert context["token_type"] == "Bearer" and "launch/patient" in context["scope"].split()
    claims = verified_id_token(gateway, context["id_token"], gateway.public_app)
    assert claims["fhirUser"] == gateway.practitioner_url
    first_token = smart.server.auth.access_token
    assert smart.reauthorize() is not None  # refresh_token grant (offline_access), rotated
    assert smart.server.auth.access_token != first_token
    if fhir_api:
        patient = smart.patient  # GET /fhir/Patient/{id}, parsed by fhirclient's R4 models
        assert patient is not None and patient.name[0].family == "Testperson"
        assert patient.name[0].given == ["Bea"]


def run_js_client(seeded: Seeded, **options: object) -> dict:
    if shutil.which("node") is None or not (TOOL / "node_modules" / "fhirclient").is_dir():
        reason = "the SMART JS client needs node and `npm ci --prefix tools/smart-client`"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    done = run_js_client_raw(seeded, **options)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def run_js_client_raw(seeded: Seeded, **options: object) -> subprocess.CompletedProcess[str]:
    arguments = {"serverUrl": seeded.fhir_base, "redirectUri": REDIRECT_URI, **options}
    return subprocess.run(
        ["node", str(TOOL / "launch.js"), json.dumps(arguments)], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("client_type", ["public", "confidential-asymmetric"])
def test_js_fhirclient_headless_standalone_launch(auto_gateway: Seeded, client_type: str) -> None:
    fhir_api = fhir_server_answers(auto_gateway)
    options: dict[str, object] = {
        "scope": "launch/patient patient/*.rs openid fhirUser offline_access",
        "readPatient": fhir_api,
        "refresh": True,
    }
    if client_type == "public":
        options["clientId"] = auto_gateway.public_app
    else:
        options["clientId"] = auto_gateway.rs384_app
        options["clientPrivateJwk"] = auto_gateway.rs384_private_jwk
    result = run_js_client(auto_gateway, **options)
    assert "code_challenge_method=S256" in result["authorizeUrl"]
    token = result["tokenResponse"]
    assert token["token_type"] == "Bearer" and isinstance(token["expires_in"], int)
    assert token["patient"] == patient_id(SLUG, "p-2") == result["patientId"]
    assert set(token["scope"].split()) == set(options["scope"].split())  # type: ignore[union-attr]
    claims = verified_id_token(auto_gateway, token["id_token"], str(options["clientId"]))
    assert claims["fhirUser"] == auto_gateway.practitioner_url
    assert auto_gateway.practitioner_url.endswith("/" + result["fhirUser"])  # fhirclient gives Type/id
    if client_type == "public":  # RFC 6749 §6: a public client refreshes with the refresh token alone
        assert result["refreshed"]["access_token"] != token["access_token"]
        assert result["refreshed"]["refresh_token"] != token["refresh_token"]
    else:  # fhirclient sends no client_assertion when it refreshes: a confidential client must authenticate
        assert (
            result["refreshError"]["status"] == 401 and "invalid_client" in result["refreshError"]["message"]
        )
    if fhir_api:
        assert result["patient"]["resourceType"] == "Patient"
        assert result["patient"]["id"] == patient_id(SLUG, "p-2")


def test_js_fhirclient_headless_ehr_launch(auto_gateway: Seeded) -> None:
    """AUTHZ-7 end to end: the EHR (an admin token at /admin/launches) mints a launch for patient p-1 and an
    encounter, the app is opened at its launch URL with iss and launch, fhirclient authorizes (adding the
    launch scope), exchanges the code and reads the launch patient."""
    base = auto_gateway.gateway.base_url
    admin_token = httpx.post(
        base + "/auth/token", data={"grant_type": "client_credentials"}, auth=auto_gateway.admin
    ).json()["access_token"]
    encounter = resource_id(SLUG, "sessions", "s-1")
    minted = httpx.post(
        base + "/admin/launches",
        json={"client_id": auto_gateway.ehr_app, "patient": patient_id(SLUG, "p-1"), "encounter": encounter},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert minted.status_code == 201, minted.text
    launch = minted.json()
    assert launch["launch_url"].startswith(LAUNCH_URL + "?") and launch["iss"] == auto_gateway.fhir_base
    fhir_api = fhir_server_answers(auto_gateway)
    result = run_js_client(
        auto_gateway,
        clientId=auto_gateway.ehr_app,
        scope="openid fhirUser patient/*.rs",  # fhirclient adds "launch" for an EHR launch
        launchUrl=launch["launch_url"],
        readPatient=fhir_api,
    )
    assert f"launch={launch['launch']}" in result["authorizeUrl"]
    token = result["tokenResponse"]
    # the launch's patient, not the auto-approve patient (p-2)
    assert token["patient"] == patient_id(SLUG, "p-1") == result["patientId"]
    assert token["encounter"] == encounter == result["encounterId"]
    assert "launch" in token["scope"].split() and token["need_patient_banner"] is True
    style = httpx.get(token["smart_style_url"])
    assert style.status_code == 200 and style.headers["content-type"].startswith("application/json")
    if fhir_api:
        assert result["patient"]["resourceType"] == "Patient"
        assert result["patient"]["id"] == patient_id(SLUG, "p-1")
    again = run_js_client_raw(
        auto_gateway,
        clientId=auto_gateway.ehr_app,
        scope="openid fhirUser patient/*.rs",
        launchUrl=launch["launch_url"],
    )
    assert again.returncode != 0 and "invalid_request" in again.stderr  # a launch is single use
