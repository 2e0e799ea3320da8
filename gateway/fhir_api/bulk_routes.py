"""Bulk Data Access 2.0 ``$export`` (https://hl7.org/fhir/uv/bulkdata/export.html): kick-off at the
system, Patient and Group levels, status polling, cancel, and the ndjson files. Thin handlers over
``gateway.bulk.jobs``; included in the app before the FHIR router, so ``/fhir/{type}/{id}`` never
answers ``$export``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from email.utils import format_datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import FileResponse, Response

from gateway.auth.service import Principal
from gateway.bulk import groups, jobs
from gateway.bulk.kickoff import Level, parameters_body, parse_kickoff
from gateway.core.config import Settings
from gateway.core.errors import FHIR_JSON
from gateway.db.engine import Session
from gateway.deps import PrincipalDep, ReadSessionDep, SessionDep, SettingsDep
from gateway.fhir_api.access import FhirAccess
from gateway.fhir_api.bundles import Bundle, match
from gateway.fhir_api.capability import register_operation, register_resource

router = APIRouter(prefix="/fhir", tags=["bulk data"])

NDJSON = "application/fhir+ndjson"
OPERATION = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/"
register_operation(None, "export", OPERATION + "export")
register_operation("Patient", "export", OPERATION + "patient-export")
register_operation("Group", "export", OPERATION + "group-export")
register_resource(
    {
        "type": "Group",
        "interaction": [{"code": "read"}, {"code": "search-type"}],
        "searchParam": [
            {"name": "_id", "type": "token"},
            {"name": "identifier", "type": "token"},
            {"name": "name", "type": "string"},
        ],
        "documentation": "Each clinic's own Group (id = the clinic slug: all its patients) and ad-hoc groups "
        "(kap-gateway groups create), for Group/[id]/$export.",
    },
    instantiates="http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data",
)

AcceptHeader = Annotated[str | None, Header(include_in_schema=False)]
PreferHeader = Annotated[str | None, Header(include_in_schema=False)]


@dataclass(frozen=True)
class Kickoff:
    """A kick-off request as the three ``$export`` levels share it (GET: the query string's parameters;
    POST: the ``Parameters`` body's); :meth:`start` records the job."""

    session: Session
    settings: Settings
    principal: Principal
    params: list[tuple[str, str]]
    from_body: bool
    #: the kick-off URL for the manifest's ``request`` (a POST's without its parameters)
    url: str
    accept: str | None
    prefer: str | None

    def start(self, level: Level, group_id: str | None = None) -> Response:
        parsed = parse_kickoff(
            level,
            self.params,
            accept=self.accept,
            prefer=self.prefer,
            group_id=group_id,
            from_body=self.from_body,
        )
        location = jobs.kickoff(
            self.session, self.settings, principal=self.principal, request=parsed, request_url=self.url
        )
        return Response(status_code=202, headers={"Content-Location": location})


async def get_kickoff(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    accept: AcceptHeader = None,
    prefer: PreferHeader = None,
) -> Kickoff:
    url = settings.fhir_base_url + request.url.path.removeprefix("/fhir")
    if request.method == "POST":
        params = parameters_body(await request.body(), request.headers.get("content-type"))
        return Kickoff(session, settings, principal, params, True, url, accept, prefer)
    if request.url.query:
        url += "?" + request.url.query
    params = request.query_params.multi_items()
    return Kickoff(session, settings, principal, params, False, url, accept, prefer)


KickoffDep = Annotated[Kickoff, Depends(get_kickoff)]
#: the POST kick-off's body, for the OpenAPI document
PARAMETERS_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A FHIR Parameters resource: _outputFormat, _since, _type, _typeFilter (valueString) "
        "and, at the Patient and Group levels, patient (valueReference).",
        "content": {
            FHIR_JSON: {"schema": {"type": "object"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}


KickoffRoute = Callable[..., Response]


def kickoff_route(path: str, summary: str) -> Callable[[KickoffRoute], KickoffRoute]:
    """Registers a kick-off for GET (query-string parameters) and POST (a ``Parameters`` body)."""

    def register(route: KickoffRoute) -> KickoffRoute:
        router.get(path, status_code=202, summary=summary)(route)
        router.post(
            path, status_code=202, summary=f"{summary}, Parameters body", openapi_extra=PARAMETERS_BODY
        )(route)
        return route

    return register


@kickoff_route("/$export", "$export (system level)")
def export_kickoff(kickoff: KickoffDep) -> Response:
    return kickoff.start("system")


@kickoff_route("/Patient/$export", "Patient/$export (all patients)")
def export_patients_kickoff(kickoff: KickoffDep) -> Response:
    return kickoff.start("patient")


@kickoff_route("/Group/{group_id}/$export", "Group/[id]/$export")
def export_group_kickoff(group_id: str, kickoff: KickoffDep) -> Response:
    return kickoff.start("group", group_id)


@router.get("/Group", summary="search Groups (_id, identifier, name)")
def search_group(
    request: Request, session: ReadSessionDep, settings: SettingsDep, principal: PrincipalDep
) -> Response:
    access = FhirAccess.from_principal(principal)
    found = groups.search_groups(session, settings, access=access, params=request.query_params.multi_items())
    base = settings.fhir_base_url
    bundle = Bundle(
        "searchset",
        [match(f"{base}/Group/{group_id}", content) for group_id, content in found],
        links=[("self", f"{base}/Group" + (f"?{request.url.query}" if request.url.query else ""))],
        total=len(found),
    )
    return Response(bundle.body(), media_type=FHIR_JSON)


@router.get("/Group/{group_id}", summary="read a Group (a clinic's own, or an ad-hoc one)")
def read_group(
    group_id: str, session: ReadSessionDep, settings: SettingsDep, principal: PrincipalDep
) -> Response:
    access = FhirAccess.from_principal(principal)
    return Response(
        groups.read_group(session, settings, access=access, group_id=group_id), media_type=FHIR_JSON
    )


@router.get("/bulk-status/{job_id}", summary="$export status: 202 while running, 200 with the manifest")
def export_status(
    job_id: str, session: ReadSessionDep, settings: SettingsDep, principal: PrincipalDep
) -> Response:
    status = jobs.job_status(session, settings, principal=principal, job_id=job_id)
    if isinstance(status, jobs.InProgress):
        headers = {"X-Progress": status.progress[:99], "Retry-After": str(status.retry_after)}
        return Response(status_code=202, headers=headers)
    return Response(
        orjson.dumps(status.manifest),
        media_type="application/json",
        headers={"Expires": format_datetime(status.expires, usegmt=True)},
    )


@router.delete("/bulk-status/{job_id}", status_code=202, summary="$export cancel")
def export_cancel(job_id: str, session: SessionDep, principal: PrincipalDep) -> Response:
    jobs.cancel(session, principal=principal, job_id=job_id)
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "information", "code": "informational", "diagnostics": "export cancelled"}],
    }
    return Response(orjson.dumps(outcome), status_code=202, media_type=FHIR_JSON)


@router.get("/bulk-files/{job_id}/{name}", summary="$export output file (ndjson)")
def export_file(
    job_id: str, name: str, session: ReadSessionDep, settings: SettingsDep, principal: PrincipalDep
) -> Response:
    path = jobs.file_path(session, settings, principal=principal, job_id=job_id, name=name)
    return FileResponse(path, media_type=NDJSON)
