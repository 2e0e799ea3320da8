"""/auth: the OAuth 2.0 token endpoint (RFC 6749 §3.2, §4.4; https://www.rfc-editor.org/rfc/rfc6749).

The route is sync (FastAPI runs it in the thread pool), so the password hash and the database work never
run on the event loop; the form is read and parsed first, by ``token_form``, before any transaction.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from gateway.audit import trail
from gateway.auth import discovery, introspection, service
from gateway.auth.token_request import FORM, TokenRequest, parse_basic_auth, parse_form
from gateway.core.errors import OAuthError
from gateway.deps import SessionDep, SettingsDep

router = APIRouter(prefix="/auth", tags=["authorization"])
#: discovery documents, at the root and under the FHIR base (included before the FHIR router)
well_known_router = APIRouter(tags=["discovery"])
SMART_CONFIGURATION_PATHS = ("/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration")


class TokenResponse(BaseModel):
    model_config = ConfigDict(extra="allow")
    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    scope: str


class OAuthErrorResponse(BaseModel):
    error: str
    error_description: str


async def token_form(request: Request) -> dict[str, str]:
    return parse_form(await request.body(), request.headers.get("content-type"))


TokenFormDep = Annotated[dict[str, str], Depends(token_form)]
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@router.post(
    "/token",
    response_model=TokenResponse,
    operation_id="token",
    summary="Get an access token (client_credentials, client_secret_basic)",
    description="Form body `grant_type=client_credentials` (optional `scope`), client id and secret in "
    "HTTP Basic. Each parameter at most once. Errors follow RFC 6749 §5.2. Failed client "
    "authentications are limited per client id and per client address: past the limit the "
    "answer is 429 with `Retry-After` until the window ends.",
    responses={
        400: {"model": OAuthErrorResponse},
        401: {"model": OAuthErrorResponse},
        429: {"model": OAuthErrorResponse},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                FORM: {
                    "schema": {
                        "type": "object",
                        "required": ["grant_type"],
                        "properties": {
                            "grant_type": {"type": "string", "enum": list(service.GRANT_TYPES)},
                            "scope": {"type": "string", "minLength": 1},
                        },
                    }
                }
            },
        }
    },
)
def token(
    form: TokenFormDep,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    audit: trail.AuditDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> JSONResponse:
    token_request = TokenRequest(
        form=form,
        basic=parse_basic_auth(authorization),
        address=request.client.host if request.client else "unknown",
    )
    try:
        issued = service.issue_token(session, settings, request=token_request)
    except OAuthError as error:
        trail.record_token(audit, settings, token_request, issued=None, error=error.error)
        raise
    trail.record_token(audit, settings, token_request, issued=issued, error=None)
    body: dict[str, Any] = TokenResponse.model_validate(issued.response()).model_dump()
    return JSONResponse(body, headers=NO_STORE)


@router.post(
    "/introspect",
    operation_id="introspect",
    summary="Token introspection (RFC 7662 with SMART fields)",
    description="Form body `token=<access token>`. The caller authenticates with `Authorization: Bearer "
    "<its own active access token>`, with client_secret_basic or with a private_key_jwt client assertion "
    "(`client_assertion_type`, `client_assertion`); a client sees only its own tokens (admin clients: any). "
    'Inactive, unknown or foreign tokens answer exactly `{"active": false}`.',
    responses={400: {"model": OAuthErrorResponse}, 401: {"model": OAuthErrorResponse}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                FORM: {
                    "schema": {
                        "type": "object",
                        "required": ["token"],
                        "properties": {
                            "token": {"type": "string"},
                            "token_type_hint": {"type": "string"},
                            "client_assertion_type": {"type": "string"},
                            "client_assertion": {"type": "string"},
                        },
                    }
                }
            },
        }
    },
)
def introspect(
    form: TokenFormDep,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> JSONResponse:
    introspection_request = TokenRequest(
        form=form,
        basic=parse_basic_auth(authorization),
        address=request.client.host if request.client else "unknown",
    )
    caller = introspection.authenticate_caller(
        session, settings, authorization=authorization, request=introspection_request
    )
    body = introspection.introspect(session, settings, caller=caller, token=form.get("token"))
    return JSONResponse(body, headers=NO_STORE)


def _smart_configuration(settings: SettingsDep) -> JSONResponse:
    return JSONResponse(discovery.smart_configuration(settings))  # CORS: gateway.auth.cors (any origin)


for _path in SMART_CONFIGURATION_PATHS:
    well_known_router.add_api_route(
        _path,
        _smart_configuration,
        methods=["GET"],
        summary="SMART configuration (SMART App Launch 2.x discovery)",
        description="Endpoints, grant types, scopes and capabilities of the authorization server; "
        "`application/json`, readable from any origin.",
        operation_id="smart_configuration" + ("_fhir" if _path.startswith("/fhir") else ""),
        response_class=JSONResponse,
    )


@well_known_router.get(
    "/.well-known/openid-configuration",
    summary="OpenID Connect discovery",
    operation_id="openid_configuration",
    response_class=JSONResponse,
)
def openid_configuration(settings: SettingsDep) -> JSONResponse:
    return JSONResponse(discovery.openid_configuration(settings))
