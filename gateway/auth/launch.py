"""SMART App Launch, the authorization endpoint: validate a request, sign the clinician in, record consent,
issue the authorization code.

Specs: RFC 6749 §4.1 (https://www.rfc-editor.org/rfc/rfc6749#section-4.1), PKCE RFC 7636 (S256 only),
SMART App Launch 2.x "App Launch" (https://hl7.org/fhir/smart-app-launch/app-launch.html); checklist
AUTHZ-1..8. EHR launch (AUTHZ-7): ``launch=<value>`` with the ``launch`` scope spends a launch minted by
``gateway.auth.ehr_launch``; its patient (and encounter, fhirContext, clinician) are fixed for the grant.

Order of checks (RFC 6749 §4.1.2.1): the client and its ``redirect_uri`` first. Until both are known good
nothing redirects: the answer is an error page (``AuthorizeError.redirect_uri`` is None). After that every
error goes back to the app as ``redirect_uri?error=...&state=...``.

Between the pages the validated request travels as a signed, short-lived blob (``seal_request``): the
login and consent forms carry it with a CSRF token that must equal the ``kapgw_csrf`` cookie (double
submit) and is bound into the blob, so a form cannot be replayed with another browser's cookie or with
altered parameters. With ``KAPGW_LAUNCH_AUTO_APPROVE`` (test mode, refused in production) the request is
approved at once as ``KAPGW_LAUNCH_AUTO_APPROVE_USER``, so headless SMART clients can run.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from gateway.auth import credentials, ehr_launch, throttle, users
from gateway.auth.scopes import is_malformed_resource_scope, parse_scope, scope_within
from gateway.core.config import Settings
from gateway.db.engine import Session
from gateway.db.repositories import clinics as clinic_repo
from gateway.db.repositories import launch as launch_repo
from gateway.db.repositories import users as user_repo
from gateway.db.tables import AuthorizationCodeRow, ClientRow, UserRow

PARAMETERS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "aud",
    "code_challenge",
    "code_challenge_method",
    "nonce",
    "launch",
)
#: RFC 7636 §4.2: the S256 challenge is BASE64URL(SHA256(verifier)): 43 characters; allow the RFC's range
CODE_CHALLENGE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
#: RFC 7636 §4.1
CODE_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
MAX_STATE = 1024
MAX_NONCE = 255
#: a login or consent page is valid this long
PAGE_LIFETIME_SECONDS = 600
CSRF_COOKIE = "kapgw_csrf"
#: patients a consent page offers at most
PATIENT_CHOICES = 500
PATIENT_SCOPE_MARKERS = ("launch/patient",)


class AuthorizeError(Exception):
    """An authorization request refused: redirected to ``redirect_uri`` with ``error`` when it is trusted,
    else shown as an error page (400)."""

    def __init__(
        self, error: str, description: str, *, redirect_uri: str | None = None, state: str | None = None
    ):
        super().__init__(description)
        self.error = error
        self.description = description
        self.redirect_uri = redirect_uri
        self.state = state

    def location(self) -> str:
        assert self.redirect_uri is not None
        params = {"error": self.error, "error_description": self.description}
        if self.state is not None:
            params["state"] = self.state
        return with_query(self.redirect_uri, params)


class PageError(Exception):
    """A login or consent form that cannot be used (expired, tampered, CSRF mismatch): an error page."""


@dataclass(frozen=True)
class AuthorizationRequest:
    """A validated authorization request; ``scope`` is what may be granted (requested within the client's)."""

    client_id: str
    client_name: str
    clinic_pk: int
    redirect_uri: str
    scope: str
    state: str
    code_challenge: str
    nonce: str | None
    #: EHR launch: the context of the spent launch (the patient is then fixed, no picker)
    launch_patient: str | None = None
    launch_encounter: str | None = None
    launch_fhir_context: tuple[str, ...] = ()
    #: EHR launch for one clinician: only this user may approve it
    launch_user_pk: int | None = None

    @property
    def scopes(self) -> list[str]:
        return self.scope.split()

    @property
    def needs_patient(self) -> bool:
        """SMART: ``launch/patient`` or any ``patient/`` scope establishes a patient context (an EHR launch
        always has one)."""
        if self.launch_patient is not None:
            return True
        return any(s in PATIENT_SCOPE_MARKERS for s in self.scopes) or any(
            (parsed := parse_scope(s)) is not None and parsed.context == "patient" for s in self.scopes
        )


def with_query(uri: str, params: Mapping[str, str]) -> str:
    """``uri`` with ``params`` added to its query (its own query parameters kept, RFC 6749 §3.1.2)."""
    parts = urlsplit(uri)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def single_values(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """RFC 6749 §3.1: parameters sent without a value are omitted; none may be repeated."""
    values: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in pairs:
        if name in seen and name in PARAMETERS:
            raise AuthorizeError("invalid_request", f"parameter {name} is repeated")
        seen.add(name)
        if value:
            values[name] = value
    return values


def validate(session: Session, settings: Settings, params: Mapping[str, str]) -> AuthorizationRequest:
    """Checks an authorization request (AUTHZ-2..5, 8); raises AuthorizeError."""
    client_id = params.get("client_id")
    client = (
        clinic_repo.get_client(session, client_id=client_id) if client_id and len(client_id) <= 64 else None
    )
    if client is None or client.disabled or client.kind != "app":
        raise AuthorizeError("invalid_request", "unknown client_id")
    redirect_uri = params.get("redirect_uri")
    if not redirect_uri or redirect_uri not in client.redirect_uris.split():
        raise AuthorizeError("invalid_request", "redirect_uri is missing or not registered for this client")
    state = params.get("state")
    if state is not None and len(state) > MAX_STATE:
        state = None  # never echo an oversized value

    def refuse(error: str, description: str) -> AuthorizeError:
        return AuthorizeError(error, description, redirect_uri=redirect_uri, state=state)

    if state is None:
        raise refuse("invalid_request", f"state is required (at most {MAX_STATE} characters)")
    if params.get("response_type") != "code":
        error = "invalid_request" if "response_type" not in params else "unsupported_response_type"
        raise refuse(error, "response_type must be code")
    aud = params.get("aud")
    if aud is None or aud.rstrip("/") != settings.fhir_base_url.rstrip("/"):
        raise refuse("invalid_request", f"aud must be this server's FHIR base URL, {settings.fhir_base_url}")
    challenge = params.get("code_challenge")
    if challenge is None or not CODE_CHALLENGE.fullmatch(challenge):
        raise refuse(
            "invalid_request", "PKCE is required: code_challenge (S256, 43-128 unreserved characters)"
        )
    if params.get("code_challenge_method") != "S256":
        raise refuse("invalid_request", "code_challenge_method must be S256 (plain is not supported)")
    nonce = params.get("nonce")
    if nonce is not None and len(nonce) > MAX_NONCE:
        raise refuse("invalid_request", f"nonce: at most {MAX_NONCE} characters")
    scope = _grantable_scope(client, params.get("scope"), refuse)
    clinic_pks = clinic_repo.granted_clinic_pks(session, client_pk=_pk(client))
    if len(clinic_pks) != 1:
        raise refuse("unauthorized_client", "an app client is granted exactly one clinic")
    context = _ehr_launch(session, settings, client, params.get("launch"), scope.split(), refuse)
    return AuthorizationRequest(
        client_id=client.client_id,
        client_name=client.name,
        clinic_pk=clinic_pks[0],
        redirect_uri=redirect_uri,
        scope=scope,
        state=state,
        code_challenge=challenge,
        nonce=nonce,
        launch_patient=context.patient if context else None,
        launch_encounter=context.encounter if context else None,
        launch_fhir_context=context.fhir_context if context else (),
        launch_user_pk=context.user_pk if context else None,
    )


def _ehr_launch(
    session: Session,
    settings: Settings,
    client: ClientRow,
    launch: str | None,
    scopes: list[str],
    refuse: Any,
) -> ehr_launch.LaunchContext | None:
    """AUTHZ-7: the last check, because it spends the launch (and commits): a ``launch`` value needs the
    ``launch`` scope and vice versa; an unknown, expired, reused or another app's launch is refused."""
    if launch is None:
        if "launch" in scopes:
            raise refuse(
                "invalid_request", "scope launch is for an EHR launch: the launch parameter is missing"
            )
        return None
    if "launch" not in scopes:
        raise refuse(
            "invalid_request",
            "an EHR launch (launch parameter) needs the launch scope, and an app registered with a launch URL",
        )
    context = ehr_launch.use_launch(session, settings, launch=launch, client_pk=_pk(client))
    if context is None:
        raise refuse("invalid_request", "the launch is unknown, expired, already used or not for this app")
    return context


def _grantable_scope(client: ClientRow, requested: str | None, refuse: Any) -> str:
    """The requested scopes the client is registered for (a narrower grant is allowed, SMART TOK-6); the
    ``launch`` scope for apps registered with a launch URL (EHR launch)."""
    if not requested or not requested.strip():
        raise refuse("invalid_scope", "scope is required")
    asked = list(dict.fromkeys(requested.split()))
    malformed = [s for s in asked if is_malformed_resource_scope(s)]
    if malformed:
        raise refuse("invalid_scope", "malformed scope: " + " ".join(malformed))
    ceiling = client.scopes.split() + (["launch"] if client.launch_url else [])
    granted = [s for s in asked if s in ceiling or (parse_scope(s) is not None and scope_within(s, ceiling))]
    if not granted:
        raise refuse("invalid_scope", "none of the requested scopes is allowed for this client")
    return " ".join(granted)


def _pk(row: Any) -> int:
    assert row.id is not None
    return int(row.id)


# --- the signed request blob and CSRF ---


def _mac(settings: Settings, data: bytes) -> str:
    pepper = settings.token_signing_secret.get_secret_value().encode()
    digest = hmac.new(pepper, b"kapgw-authorize-page\0" + data, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def seal_request(
    settings: Settings, request: AuthorizationRequest, *, csrf: str, user_pk: int | None = None
) -> str:
    """The request, the page's CSRF token (hashed) and the signed-in user, signed and time-limited."""
    payload = {
        "r": asdict(request),
        "c": hashlib.sha256(csrf.encode()).hexdigest(),
        "u": user_pk,
        "e": int(time.time()) + PAGE_LIFETIME_SECONDS,
    }
    data = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()
    return data + "." + _mac(settings, data.encode())


def open_request(
    settings: Settings, sealed: str | None, *, csrf_form: str | None, csrf_cookie: str | None
) -> tuple[AuthorizationRequest, int | None]:
    """The request and user a form carries; PageError when expired, altered or not from this browser."""
    if not sealed or "." not in sealed:
        raise PageError("the sign-in form is incomplete; start again from the app")
    data, _, mac = sealed.rpartition(".")
    if not hmac.compare_digest(mac, _mac(settings, data.encode())):
        raise PageError("the sign-in form was altered; start again from the app")
    payload = json.loads(base64.urlsafe_b64decode(data.encode()))
    if payload["e"] < time.time():
        raise PageError("the sign-in page has expired; start again from the app")
    if not csrf_form or not csrf_cookie or not hmac.compare_digest(csrf_form, csrf_cookie):
        raise PageError("the form did not come from this browser's session (CSRF check failed)")
    if not hmac.compare_digest(payload["c"], hashlib.sha256(csrf_form.encode()).hexdigest()):
        raise PageError("the form did not come from this browser's session (CSRF check failed)")
    fields = payload["r"]
    fields["launch_fhir_context"] = tuple(fields.get("launch_fhir_context") or ())
    return AuthorizationRequest(**fields), payload["u"]


# --- sign-in and consent ---


@dataclass(frozen=True)
class SignIn:
    user: UserRow | None
    retry_after: int | None = None


def sign_in(
    session: Session,
    settings: Settings,
    request: AuthorizationRequest,
    *,
    username: str,
    password: str,
    address: str,
) -> SignIn:
    """Checks a clinician's password (throttled like client authentication, per username and address) and
    that the user belongs to the app's clinic. Commits."""
    attempt = throttle.count_attempt(session, settings, client_id="user:" + username, address=address)
    session.commit()  # no transaction stays open through the password hash
    if attempt.retry_after is not None:
        return SignIn(None, attempt.retry_after)
    user = users.authenticate_user(session, username=username, password=password)
    if user is not None and request.clinic_pk not in user_repo.user_clinic_pks(session, user_pk=_pk(user)):
        user = None
    if user is not None:
        throttle.forgive(session, attempt)
    session.commit()
    return SignIn(user)


def signed_in_user(session: Session, user_pk: int | None) -> UserRow:
    user = user_repo.get_user_by_pk(session, pk=user_pk) if user_pk is not None else None
    if user is None or user.disabled:
        raise PageError("sign in first; start again from the app")
    return user


def patient_choices(session: Session, request: AuthorizationRequest) -> list[tuple[str, str]]:
    """(FHIR id, display text) of the patients the clinician may pick (the app's clinic; an EHR launch: its
    patient only)."""
    if request.launch_patient is not None:
        content = launch_repo.resource_content(
            session, clinic_pk=request.clinic_pk, resource_type="Patient", resource_id=request.launch_patient
        )
        return [(request.launch_patient, _patient_label(json.loads(content)))] if content else []
    choices = []
    for patient_id, content in launch_repo.patient_choices(
        session, clinic_pk=request.clinic_pk, limit=PATIENT_CHOICES
    ):
        choices.append((patient_id, _patient_label(json.loads(content))))
    return sorted(choices, key=lambda choice: choice[1].lower())


def _patient_label(patient: dict[str, Any]) -> str:
    names = patient.get("name") or [{}]
    name = names[0]
    text = name.get("text") or " ".join([*name.get("given", []), name.get("family", "")]).strip()
    birth = patient.get("birthDate")
    return f"{text or 'unnamed'}" + (f" (born {birth})" if birth else "")


def approve(
    session: Session,
    settings: Settings,
    request: AuthorizationRequest,
    *,
    user: UserRow,
    patient_id: str | None,
) -> str:
    """Issues the authorization code (AUTHZ-6) and returns the redirect with ``code`` and ``state``. Commits."""
    if request.launch_user_pk is not None and user.id != request.launch_user_pk:
        raise AuthorizeError(
            "access_denied",
            "the EHR launch was opened for another clinician",
            redirect_uri=request.redirect_uri,
            state=request.state,
        )
    if request.launch_patient is not None:  # EHR launch: the launch fixed the patient
        if patient_id not in (None, request.launch_patient):
            raise AuthorizeError(
                "access_denied",
                "the EHR launch fixed another patient",
                redirect_uri=request.redirect_uri,
                state=request.state,
            )
        patient_id = request.launch_patient
    elif request.needs_patient:
        if not patient_id or not launch_repo.patient_in_clinic(
            session, clinic_pk=request.clinic_pk, patient_id=patient_id
        ):
            raise AuthorizeError(
                "access_denied",
                "no patient of the app's clinic was selected",
                redirect_uri=request.redirect_uri,
                state=request.state,
            )
    else:
        patient_id = None
    client = clinic_repo.get_client(session, client_id=request.client_id)
    if client is None or client.disabled:
        raise PageError("the app is no longer registered")
    code = credentials.new_token()
    now = datetime.now(UTC)
    launch_repo.delete_expired_codes(session, before=now - timedelta(minutes=5))
    launch_repo.add_code(
        session,
        code=AuthorizationCodeRow(
            code_hash=code_hash(settings, code),
            client_pk=_pk(client),
            user_pk=_pk(user),
            clinic_pk=request.clinic_pk,
            redirect_uri=request.redirect_uri,
            scope=request.scope,
            code_challenge=request.code_challenge,
            nonce=request.nonce,
            patient_id=patient_id,
            launch_context=_grant_launch_context(request),
            created_at=now,
            expires_at=now + timedelta(seconds=settings.authorization_code_lifetime_seconds),
        ),
    )
    session.commit()
    return with_query(request.redirect_uri, {"code": code, "state": request.state})


def _grant_launch_context(request: AuthorizationRequest) -> dict[str, Any] | None:
    context: dict[str, Any] = {}
    if request.launch_patient is not None:
        context["ehr_launch"] = True
    if request.launch_encounter is not None:
        context["encounter"] = request.launch_encounter
    if request.launch_fhir_context:
        context["fhirContext"] = list(request.launch_fhir_context)
    return context or None


def deny(request: AuthorizationRequest) -> str:
    return AuthorizeError(
        "access_denied", "the user denied the request", redirect_uri=request.redirect_uri, state=request.state
    ).location()


def auto_approve(session: Session, settings: Settings, request: AuthorizationRequest) -> str:
    """Test mode: approve as the configured user (an EHR launch for one clinician: as that clinician), with
    the launch's, the configured or the clinic's first patient."""
    assert settings.launch_auto_approve_user is not None
    if request.launch_user_pk is not None:
        user = user_repo.get_user_by_pk(session, pk=request.launch_user_pk)
    else:
        user = user_repo.get_user(session, username=settings.launch_auto_approve_user)
    if user is None or request.clinic_pk not in user_repo.user_clinic_pks(session, user_pk=_pk(user)):
        raise AuthorizeError(
            "access_denied",
            "the auto-approve user does not exist or is not in the app's clinic",
            redirect_uri=request.redirect_uri,
            state=request.state,
        )
    patient_id = request.launch_patient or settings.launch_auto_approve_patient
    if request.needs_patient and patient_id is None:
        first = launch_repo.patient_choices(session, clinic_pk=request.clinic_pk, limit=1)
        patient_id = first[0][0] if first else None
    return approve(session, settings, request, user=user, patient_id=patient_id)


def code_hash(settings: Settings, code: str) -> str:
    return credentials.token_hash("code:" + code, settings.token_signing_secret.get_secret_value())
