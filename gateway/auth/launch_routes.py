"""/auth routes of SMART App Launch: authorize (GET and POST), the sign-in and consent forms, revocation
(RFC 7009) and the gateway's JWKS. The work is in ``gateway.auth.launch`` and ``launch_revoke``.

Routes are sync (the password hash and database work run in the thread pool); forms are read first by
async dependencies.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from gateway.audit import trail
from gateway.auth import launch, launch_keys, launch_pages, launch_revoke
from gateway.auth.token_request import FORM, MAX_PARAMETERS, TokenRequest, parse_basic_auth, parse_form
from gateway.core.config import Settings
from gateway.core.errors import OAuthError
from gateway.deps import ReadSessionDep, SessionDep, SettingsDep

router = APIRouter(prefix="/auth", tags=["authorization"])
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


async def authorize_pairs(request: Request) -> list[tuple[str, str]]:
    """The query (GET) or the form (POST, ``authorize-post``) as name/value pairs."""
    if request.method == "GET":
        return list(request.query_params.multi_items())
    media_type = (request.headers.get("content-type") or "").partition(";")[0].strip().lower()
    if media_type != FORM:
        return []
    try:
        text = (await request.body()).decode("utf-8")
        return parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_PARAMETERS)
    except (UnicodeDecodeError, ValueError):
        return []


async def page_form(request: Request) -> dict[str, str]:
    """A sign-in or consent form (urlencoded, single values)."""
    media_type = (request.headers.get("content-type") or "").partition(";")[0].strip().lower()
    if media_type != FORM:
        return {}
    try:
        pairs = parse_qsl((await request.body()).decode("utf-8"), max_num_fields=MAX_PARAMETERS)
    except (UnicodeDecodeError, ValueError):
        return {}
    return dict(pairs)


AuthorizePairsDep = Annotated[list[tuple[str, str]], Depends(authorize_pairs)]
PageFormDep = Annotated[dict[str, str], Depends(page_form)]


def _csrf_cookie(response: Response, settings: Settings, csrf: str) -> Response:
    response.set_cookie(
        launch.CSRF_COOKIE,
        csrf,
        max_age=launch.PAGE_LIFETIME_SECONDS,
        path="/auth",
        secure=settings.base_url.startswith("https://"),
        httponly=True,
        samesite="lax",
    )
    return response


def _redirect(location: str) -> Response:
    return RedirectResponse(location, status_code=302, headers=NO_STORE)


def _refused(error: launch.AuthorizeError) -> Response:
    if error.redirect_uri is None:
        return launch_pages.error_page(error.description)
    return _redirect(error.location())


def authorize(
    request: Request, pairs: AuthorizePairsDep, session: SessionDep, settings: SettingsDep
) -> Response:
    try:
        params = launch.single_values(pairs)
        validated = launch.validate(session, settings, params)
        if settings.launch_auto_approve:
            return _redirect(launch.auto_approve(session, settings, validated))
    except launch.AuthorizeError as error:
        return _refused(error)
    csrf = request.cookies.get(launch.CSRF_COOKIE) or launch.new_csrf_token()
    page = launch_pages.login_page(
        client_name=validated.client_name,
        sealed=launch.seal_request(settings, validated, csrf=csrf),
        csrf=csrf,
    )
    return _csrf_cookie(page, settings, csrf)


AUTHORIZE_DOC: dict[str, Any] = {
    "summary": "Authorize a SMART app (authorization code with PKCE S256)",
    "description": "SMART App Launch 2.x standalone launch: `response_type=code`, `client_id`, `redirect_uri` "
    "(registered, exact match), `scope`, `state`, `aud` (this server's FHIR base), `code_challenge` and "
    "`code_challenge_method=S256`, optional `nonce`. Shows the clinician sign-in and consent pages, then "
    "redirects to `redirect_uri` with `code` and `state`. Errors go to a trusted `redirect_uri` as "
    "`error` + `state` (RFC 6749 §4.1.2.1), otherwise an error page (400).",
    "response_class": Response,
    "responses": {302: {"description": "redirect to the app"}, 200: {"content": {"text/html": {}}}},
}
router.add_api_route("/authorize", authorize, methods=["GET"], operation_id="authorize", **AUTHORIZE_DOC)
router.add_api_route(
    "/authorize", authorize, methods=["POST"], operation_id="authorize_post", **AUTHORIZE_DOC
)


@router.post("/login", include_in_schema=False)
def login(
    request: Request, form: PageFormDep, session: SessionDep, settings: SettingsDep, audit: trail.AuditDep
) -> Response:
    try:
        validated, _ = launch.open_request(
            settings,
            form.get("request"),
            csrf_form=form.get("csrf"),
            csrf_cookie=request.cookies.get(launch.CSRF_COOKIE),
        )
    except launch.PageError as error:
        return launch_pages.error_page(str(error), status_code=403)
    csrf = form["csrf"]
    signed = launch.sign_in(
        session,
        settings,
        validated,
        username=form.get("username", ""),
        password=form.get("password", ""),
        address=request.client.host if request.client else "unknown",
    )
    if signed.user is None:
        trail.record_bearer_refused(  # an AuditEvent "User Authentication / Login", outcome 4; no username
            audit,
            settings,
            path="/auth/login",
            description="clinician sign-in refused (throttled)"
            if signed.retry_after
            else "clinician sign-in refused (wrong password or not a user of the app's clinic)",
            address=request.client.host if request.client else None,
        )
        message = (
            f"Too many failed sign-ins; try again in {signed.retry_after} s."
            if signed.retry_after
            else "Wrong username or password, or you are not a user of this app's clinic."
        )
        status = 429 if signed.retry_after else 401
        sealed = launch.seal_request(settings, validated, csrf=csrf)
        return launch_pages.login_page(
            client_name=validated.client_name, sealed=sealed, csrf=csrf, error=message, status_code=status
        )
    patients = launch.patient_choices(session, validated) if validated.needs_patient else None
    return launch_pages.consent_page(
        client_name=validated.client_name,
        user_name=signed.user.display_name,
        scopes=validated.scopes,
        patients=patients,
        sealed=launch.seal_request(settings, validated, csrf=csrf, user_pk=signed.user.id),
        csrf=csrf,
        redirect_uri=validated.redirect_uri,
    )


@router.post("/consent", include_in_schema=False)
def consent(request: Request, form: PageFormDep, session: SessionDep, settings: SettingsDep) -> Response:
    try:
        validated, user_pk = launch.open_request(
            settings,
            form.get("request"),
            csrf_form=form.get("csrf"),
            csrf_cookie=request.cookies.get(launch.CSRF_COOKIE),
        )
        user = launch.signed_in_user(session, user_pk)
    except launch.PageError as error:
        return launch_pages.error_page(str(error), status_code=403)
    if form.get("decision") != "approve":
        return RedirectResponse(launch.deny(validated), status_code=303, headers=NO_STORE)
    try:
        location = launch.approve(session, settings, validated, user=user, patient_id=form.get("patient"))
    except launch.AuthorizeError as error:
        return RedirectResponse(error.location(), status_code=303, headers=NO_STORE)
    return RedirectResponse(location, status_code=303, headers=NO_STORE)


@router.get(
    "/jwks",
    operation_id="jwks",
    summary="The gateway's public signing keys (JWKS, RFC 7517)",
    description="Keys that sign OpenID Connect id_tokens (RS256); a rotated key stays listed for two days.",
    response_class=JSONResponse,
)
def jwks(session: ReadSessionDep) -> JSONResponse:
    return JSONResponse(
        launch_keys.jwks(session),
        media_type="application/json",
        headers={"Cache-Control": "public, max-age=300"},  # CORS: gateway.auth.cors (any origin)
    )


@router.get(
    "/smart-style.json",
    operation_id="smart_style",
    summary="SMART styling document (smart_style_url of launch token responses)",
    description="Colours, dimensions and fonts of the gateway's sign-in pages (SMART App Launch Styling).",
    response_class=JSONResponse,
)
def smart_style() -> JSONResponse:
    return JSONResponse(launch_pages.SMART_STYLE, headers={"Cache-Control": "public, max-age=3600"})


async def revoke_form(request: Request) -> dict[str, str]:
    return parse_form(await request.body(), request.headers.get("content-type"))


@router.post(
    "/revoke",
    operation_id="revoke",
    summary="Revoke an access or refresh token (RFC 7009)",
    description="Form `token` (and optional `token_type_hint`), with the same client authentication as "
    "the token endpoint (public clients send `client_id`). Answers 200 whether or not the token was "
    "known; revoking a refresh token (or an access token of an app grant) ends the whole grant.",
    responses={200: {"description": "revoked (or unknown)"}},
)
def revoke(
    form: Annotated[dict[str, str], Depends(revoke_form)],
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    token_request = TokenRequest(
        form=form,
        basic=parse_basic_auth(authorization),
        address=request.client.host if request.client else "unknown",
    )
    if "grant_type" in form:
        raise OAuthError("invalid_request", "grant_type does not belong in a revocation request")
    launch_revoke.revoke(session, settings, request=token_request)
    return Response(status_code=200, headers=NO_STORE)
