"""/auth: the OAuth 2.0 token endpoint (RFC 6749 §3.2, §4.4)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from gateway.auth import service
from gateway.core.errors import OAuthError
from gateway.deps import SessionDep, SettingsDep

router = APIRouter(prefix="/auth", tags=["authorization"])


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    scope: str


class OAuthErrorResponse(BaseModel):
    error: str
    error_description: str


FORM = "application/x-www-form-urlencoded"


@router.post(
    "/token",
    response_model=TokenResponse,
    operation_id="token",
    summary="Get an access token (client_credentials, client_secret_basic)",
    description="Form body `grant_type=client_credentials` (optional `scope`), client id and secret in "
    "HTTP Basic. Errors follow RFC 6749 §5.2.",
    responses={400: {"model": OAuthErrorResponse}, 401: {"model": OAuthErrorResponse}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                FORM: {
                    "schema": {
                        "type": "object",
                        "required": ["grant_type"],
                        "properties": {
                            "grant_type": {"type": "string", "enum": ["client_credentials"]},
                            "scope": {"type": "string"},
                        },
                    }
                }
            },
        }
    },
)
async def token(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> JSONResponse:
    if not request.headers.get("content-type", "").startswith(FORM):
        raise OAuthError("invalid_request", f"the token request must be {FORM}")
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    issued = service.issue_client_credentials_token(
        session, settings, basic=service.parse_basic_auth(authorization), form=form
    )
    body = TokenResponse(
        access_token=issued.access_token,
        token_type=issued.token_type,
        expires_in=issued.expires_in,
        scope=issued.scope,
    )
    return JSONResponse(body.model_dump(), headers={"Cache-Control": "no-store", "Pragma": "no-cache"})
