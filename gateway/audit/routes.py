"""/admin/audit-events: the audit trail, for admin clients (``kap-gateway clients create --kind admin``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from gateway.audit import search as audit_search
from gateway.deps import PrincipalDep, ReadSessionDep

router = APIRouter(prefix="/admin", tags=["audit"])


@router.get(
    "/audit-events",
    summary="Search the audit trail (admin)",
    description="AuditEvents (IHE BALP shape) of token requests, FHIR reads and searches and failed "
    "authentications, newest first. Filters combine with AND; `next` is the URL of the next (older) page. "
    "Needs a token of an admin client (scope `admin/audit.read`).",
    operation_id="search_audit_events",
    include_in_schema=False,  # an operator API, documented in README (Audit); not for integrators
    response_class=Response,
    responses={200: {"content": {"application/json": {}}}},
)
def search_audit_events(
    request: Request,
    principal: PrincipalDep,
    session: ReadSessionDep,
    action: Annotated[str | None, Query(max_length=32, description="token, read, search, ...")] = None,
    client_id: Annotated[str | None, Query(max_length=255)] = None,
    patient: Annotated[str | None, Query(max_length=64, description="FHIR Patient id")] = None,
    resource_type: Annotated[str | None, Query(max_length=64)] = None,
    outcome: Annotated[str | None, Query(pattern="^(0|4|8|12)$")] = None,
    since: Annotated[
        datetime | None, Query(description="recorded at or after (ISO 8601 with offset)")
    ] = None,
    until: Annotated[datetime | None, Query(description="recorded before (ISO 8601 with offset)")] = None,
    before: Annotated[int | None, Query(ge=1, description="paging cursor (from `next`)")] = None,
    limit: Annotated[int, Query(ge=1, le=audit_search.MAX_LIMIT)] = 100,
) -> Response:
    audit_search.require_admin(principal)
    query = audit_search.AuditQuery(
        action=action,
        client_id=client_id,
        patient_id=patient,
        resource_type=resource_type,
        outcome=outcome,
        since=since,
        until=until,
        before_id=before,
        limit=limit,
    )
    page = audit_search.search(session, query=query)
    next_url = None
    if page.next_before is not None:
        params = {k: v for k, v in request.query_params.items() if k != "before"}
        next_url = f"{request.url.path}?{urlencode({**params, 'before': page.next_before})}"
    return Response(page.json_bytes(next_url), media_type="application/json")
