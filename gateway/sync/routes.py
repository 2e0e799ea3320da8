"""Sync state over HTTP: ``GET /api/v1/<kind>/{id}/sync`` (clinic token: delivery state of the record's
resources per connection) and ``/admin/sync/...`` (admin token: status, dead letters, replay).

Routes parse, call one function of ``gateway.sync.status``, return (the same functions as the CLI's
``kap-gateway sync ...``). Not in the OpenAPI document yet (operator surface; README "EHR sync")."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from pydantic import BaseModel, Field

from gateway.core.errors import ForbiddenError
from gateway.deps import ClinicDep, PrincipalDep, ReadSessionDep, SessionDep
from gateway.sync import status as sync_status
from mappings.records import ALL_KINDS, EXTERNAL_ID_PATTERN

router = APIRouter(prefix="/api/v1", tags=["EHR sync"])
admin_router = APIRouter(prefix="/admin/sync", tags=["EHR sync"])

ExternalIdPath = Annotated[str, Path(pattern=EXTERNAL_ID_PATTERN)]


class ReplayRequest(BaseModel):
    connection: str | None = Field(default=None, max_length=64)
    ids: list[int] | None = Field(default=None, max_length=10000)


def _record_sync_route(kind: str) -> None:
    @router.get(
        f"/{kind}/{{external_id}}/sync",
        summary=f"Delivery state of a {kind} record's FHIR resources, per EHR connection",
        operation_id=f"sync_state_{kind.replace('-', '_')}",
        include_in_schema=False,
    )
    def record_sync(
        external_id: ExternalIdPath, clinic: ClinicDep, session: ReadSessionDep
    ) -> dict[str, Any]:
        from gateway.clinic_api.services import get_record

        row = get_record(session, clinic=clinic, kind=kind, external_id=external_id)
        assert row.id is not None
        return {
            "kind": kind,
            "id": external_id,
            "deliveries": sync_status.record_sync(session, record_pk=row.id),
        }


for _kind in ALL_KINDS:
    _record_sync_route(_kind)


def _require_admin(principal: Any) -> None:
    if principal.kind != "admin":
        raise ForbiddenError("sync administration needs an admin client's token")


@admin_router.get(
    "/status", summary="Pending, delivered and dead deliveries per connection", include_in_schema=False
)
def admin_status(principal: PrincipalDep, session: ReadSessionDep) -> list[dict[str, Any]]:
    _require_admin(principal)
    return sync_status.status(session)


@admin_router.get(
    "/dead-letters",
    summary="Deliveries given up on, with the EHR's OperationOutcome",
    include_in_schema=False,
)
def admin_dead_letters(
    principal: PrincipalDep,
    session: ReadSessionDep,
    connection: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[int, Query(ge=0, description="id of the last dead letter of the previous page")] = 0,
) -> list[dict[str, Any]]:
    _require_admin(principal)
    return sync_status.dead_letters(session, name=connection, limit=limit, after=after)


@admin_router.post("/replay", summary="Put dead letters back into the queue", include_in_schema=False)
def admin_replay(
    principal: PrincipalDep, session: SessionDep, body: Annotated[ReplayRequest, Body()] = ReplayRequest()
) -> dict[str, int]:
    _require_admin(principal)
    return {"replayed": sync_status.replay(session, name=body.connection, ids=body.ids)}
