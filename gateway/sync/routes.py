"""Sync state over HTTP: ``GET /api/v1/<kind>/{id}/sync`` (clinic token: delivery state of the record's
resources per connection) and ``/admin/sync/...`` (admin token: status, dead letters, replay).

Routes parse, call one function of ``gateway.sync.status``, return (the same functions as the CLI's
``kap-gateway sync ...``). Documented in the OpenAPI document with their response models; the error
examples come from ``gateway.openapi`` like every other route's."""

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
    connection: str | None = Field(default=None, max_length=64, description="only this connection's")
    ids: list[int] | None = Field(
        default=None, max_length=10000, description="only these dead letters (ids from /dead-letters)"
    )


class Replayed(BaseModel):
    replayed: int = Field(description="dead letters put back into the queue, due now")


class Delivery(BaseModel):
    resource: str = Field(description="our FHIR resource, Type/id")
    connection: str
    status: str = Field(description="pending, delivered or dead")
    version: int = Field(description="our version the newest delivery carries")
    current_version: int | None
    ehr_id: str | None = Field(description="the resource's id at the EHR, once delivered")
    ehr_version_sent: int | None = Field(description="our version the EHR has")
    attempts: int
    next_attempt_at: str | None = Field(description="when a pending delivery is tried next")
    last_status_code: int | None = Field(description="the EHR's last HTTP status")
    outcome: dict[str, Any] | None = Field(description="the EHR's OperationOutcome of a dead letter")


class RecordSync(BaseModel):
    kind: str
    id: str
    deliveries: list[Delivery] = Field(description="per resource of the record and per EHR connection")


class ConnectionStatus(BaseModel):
    clinic: str | None
    connection: str
    mode: str | None = Field(description="transaction, conditional or search (from the EHR's capabilities)")
    disabled: bool
    paused: bool = Field(description="the circuit breaker holds deliveries back until paused_until")
    paused_until: str | None
    failures: int = Field(description="retryable failures in a row")
    pending: int
    delivered: int
    dead: int


class DeadLetter(BaseModel):
    id: int = Field(description="pass in /replay ids, or as ?after= for the next page")
    connection: str | None
    resource: str
    version: int
    attempts: int
    status_code: int | None
    outcome_code: str | None
    outcome: dict[str, Any] | None = Field(description="the EHR's OperationOutcome, as it answered")
    created_at: str


class SyncErrorDetail(BaseModel):
    detail: Any = Field(description="a message, or for 422 a list of {loc, msg, type}")


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": SyncErrorDetail, "description": "missing, invalid or expired bearer token"},
    403: {"model": SyncErrorDetail, "description": "the token may not do this"},
}
ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    403: {"model": SyncErrorDetail, "description": "not an admin client's token"},
}


def _record_sync_route(kind: str) -> None:
    @router.get(
        f"/{kind}/{{external_id}}/sync",
        summary=f"Delivery state of a {kind} record's FHIR resources, per EHR connection",
        operation_id=f"sync_state_{kind.replace('-', '_')}",
        response_model=RecordSync,
        responses={**ERRORS, 404: {"model": SyncErrorDetail, "description": "no such record in this clinic"}},
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
    "/status",
    summary="Pending, delivered and dead deliveries per connection",
    response_model=list[ConnectionStatus],
    responses=ADMIN_ERRORS,
)
def admin_status(principal: PrincipalDep, session: ReadSessionDep) -> list[dict[str, Any]]:
    _require_admin(principal)
    return sync_status.status(session)


@admin_router.get(
    "/dead-letters",
    summary="Deliveries given up on, with the EHR's OperationOutcome",
    response_model=list[DeadLetter],
    responses=ADMIN_ERRORS,
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


@admin_router.post(
    "/replay",
    summary="Put dead letters back into the queue",
    response_model=Replayed,
    responses=ADMIN_ERRORS,
)
def admin_replay(
    principal: PrincipalDep, session: SessionDep, body: Annotated[ReplayRequest, Body()] = ReplayRequest()
) -> dict[str, int]:
    _require_admin(principal)
    return {"replayed": sync_status.replay(session, name=body.connection, ids=body.ids)}
