"""``POST /admin/launches``: an EHR integration (an admin client's token) mints a SMART EHR launch, as
``kap-gateway launch create`` does. The work is in ``gateway.auth.ehr_launch``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from gateway.auth import ehr_launch
from gateway.core.errors import ForbiddenError
from gateway.deps import PrincipalDep, SessionDep, SettingsDep

router = APIRouter(prefix="/admin", tags=["authorization"])


class LaunchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    client_id: str = Field(min_length=1, max_length=64, description="the app client (with a launch URL)")
    patient: str = Field(min_length=1, max_length=64, description="FHIR Patient id of the app's clinic")
    encounter: str | None = Field(default=None, min_length=1, max_length=64)
    user: str | None = Field(default=None, min_length=1, max_length=64, description="the clinician")
    fhir_context: list[str] = Field(default_factory=list, max_length=ehr_launch.MAX_FHIR_CONTEXT)


@router.post(
    "/launches",
    status_code=201,
    summary="Mint a SMART EHR launch (admin)",
    description="A single-use, short-lived `launch` value bound to the app and its clinic, and the app's "
    "launch URL with `iss` and `launch` to open. Needs an admin client's token.",
    operation_id="create_ehr_launch",
    include_in_schema=False,  # an operator API, documented in README (SMART App Launch)
)
def create_ehr_launch(
    body: LaunchRequest, principal: PrincipalDep, session: SessionDep, settings: SettingsDep
) -> JSONResponse:
    if principal.kind != "admin":
        raise ForbiddenError("minting EHR launches needs an admin client's token")
    minted = ehr_launch.create_launch(
        session,
        settings,
        client_id=body.client_id,
        patient_id=body.patient,
        encounter_id=body.encounter,
        username=body.user,
        fhir_context=body.fhir_context,
    )
    content: dict[str, Any] = minted.as_json()
    return JSONResponse(content, status_code=201, headers={"Cache-Control": "no-store"})
