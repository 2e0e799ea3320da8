"""Helpers for SMART App Launch tests: an app, a clinician, patients, PKCE, and the browser's part of a
standalone launch (authorize -> sign-in page -> consent page -> redirect with the code)."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlmodel import Session

from gateway.auth.launch_clients import create_app_client
from gateway.auth.users import create_user
from gateway.core.ids import resource_id

REDIRECT_URI = "https://app.test/callback"
PASSWORD = "correct horse battery staple"
APP_SCOPE = "launch/patient patient/*.rs user/*.rs openid fhirUser profile offline_access online_access"
PATIENT = {"given_name": "Ada", "family_name": "Testperson", "birth_date": "1980-02-03", "sex": "female"}


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


@dataclass
class App:
    client_id: str
    client_secret: str | None
    clinic_slug: str
    redirect_uri: str = REDIRECT_URI


@dataclass
class Launch:
    """One authorization request's parameters (a fresh state and PKCE pair each)."""

    app: App
    aud: str
    scope: str = "launch/patient patient/*.rs openid fhirUser offline_access"
    verifier: str = ""
    challenge: str = ""
    state: str = field(default_factory=lambda: secrets.token_urlsafe(12))

    def __post_init__(self) -> None:
        if not self.verifier:
            self.verifier, self.challenge = pkce_pair()

    def params(self, **overrides: Any) -> dict[str, str]:
        params = {
            "response_type": "code",
            "client_id": self.app.client_id,
            "redirect_uri": self.app.redirect_uri,
            "scope": self.scope,
            "state": self.state,
            "aud": self.aud,
            "code_challenge": self.challenge,
            "code_challenge_method": "S256",
        }
        params.update(overrides)
        return {k: v for k, v in params.items() if v is not None}

    def token_form(self, code: str, **overrides: Any) -> dict[str, str]:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.app.redirect_uri,
            "code_verifier": self.verifier,
        }
        if self.app.client_secret is None:
            form["client_id"] = self.app.client_id
        form.update(overrides)
        return {k: v for k, v in form.items() if v is not None}

    def auth(self) -> tuple[str, str] | None:
        return (self.app.client_id, self.app.client_secret) if self.app.client_secret else None


def make_app(
    engine: Any, clinic_slug: str, *, public: bool = True, scope: str = APP_SCOPE, **kwargs: Any
) -> App:
    with Session(engine, expire_on_commit=False) as session:
        created = create_app_client(
            session,
            clinic_slug=clinic_slug,
            name="Test app",
            redirect_uris=[kwargs.pop("redirect_uri", REDIRECT_URI)],
            scope=scope,
            public=public,
            **kwargs,
        )
    return App(created.client_id, created.client_secret, clinic_slug)


def make_user(engine: Any, username: str, clinics: list[str], practitioner: str | None = "pr-1") -> None:
    with Session(engine, expire_on_commit=False) as session:
        create_user(
            session,
            username=username,
            password=PASSWORD,
            clinic_slugs=clinics,
            display_name=f"Dr {username}",
            practitioner=practitioner,
        )


def patient_id(clinic_slug: str, external_id: str) -> str:
    return resource_id(clinic_slug, "patients", external_id)


def hidden_inputs(html: str) -> dict[str, str]:
    import html as html_lib

    return {
        name: html_lib.unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html)
    }


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def browse_to_code(
    http: Any,
    launch: Launch,
    *,
    username: str = "dr-a",
    password: str = PASSWORD,
    patient: str | None = None,
    decision: str = "approve",
    method: str = "GET",
) -> dict[str, str]:
    """Plays the browser: authorize, sign in, consent; returns the query of the redirect to the app."""
    if method == "GET":
        page = http.get("/auth/authorize", params=launch.params(), follow_redirects=False)
    else:
        page = http.post("/auth/authorize", data=launch.params(), follow_redirects=False)
    assert page.status_code == 200, page.text
    form = hidden_inputs(page.text)
    consent = http.post(
        "/auth/login",
        data={**form, "username": username, "password": password},
        follow_redirects=False,
    )
    assert consent.status_code == 200, consent.text
    form = hidden_inputs(consent.text)
    data = {**form, "decision": decision}
    if patient is not None:
        data["patient"] = patient
    done = http.post("/auth/consent", data=data, follow_redirects=False)
    assert done.status_code == 303, done.text
    location = done.headers["location"]
    assert location.startswith(launch.app.redirect_uri)
    return query_of(location)
