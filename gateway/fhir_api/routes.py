"""The FHIR R4 REST API under ``/fhir`` (http://hl7.org/fhir/R4/http.html): thin handlers over
``gateway.fhir_api.service``. ``metadata`` comes before the ``{type}`` routes, ``_history`` and
``$everything`` before ``{id}``; the bulk-export router is included before this one (``$export``).
"""

from __future__ import annotations

from email.utils import format_datetime
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import Response, StreamingResponse

from gateway.core.errors import FHIR_JSON, bad_request
from gateway.deps import AuthorizationHeader, ReadSessionDep, SettingsDep, get_principal
from gateway.fhir_api import service
from gateway.fhir_api.access import AccessCache, FhirAccess
from gateway.fhir_api.bundles import Bundle
from gateway.fhir_api.capability import capability_statement

router = APIRouter(prefix="/fhir", tags=["fhir"])

FHIR_MEDIA = f"{FHIR_JSON}; charset=utf-8"
#: bundles with more entries than this are streamed chunk by chunk
STREAM_ABOVE = 100


def get_access(
    request: Request, settings: SettingsDep, authorization: AuthorizationHeader = None
) -> FhirAccess:
    """What the bearer token may see (``get_principal`` on a cache miss; see ``AccessCache``)."""
    cache: AccessCache | None = getattr(request.app.state, "fhir_access_cache", None)
    if cache is None:
        cache = request.app.state.fhir_access_cache = AccessCache()
    if not authorization:
        access = FhirAccess.from_principal(get_principal(request, settings, authorization))
    else:
        access = cache.get(
            authorization, lambda: FhirAccess.from_principal(get_principal(request, settings, authorization))
        )
    request.state.principal = access.principal  # who asked, for the audit middleware (also on a cache hit)
    return access


AccessDep = Annotated[FhirAccess, Depends(get_access)]
PreferHeader = Annotated[str | None, Header(include_in_schema=False)]
IfNoneMatchHeader = Annotated[str | None, Header(include_in_schema=False)]


def strict(prefer: str | None) -> bool:
    return prefer is not None and "handling=strict" in prefer.replace(" ", "")


def params_of(request: Request) -> list[tuple[str, str]]:
    return request.query_params.multi_items()


async def form_params(request: Request) -> list[tuple[str, str]]:
    """``POST _search``: the form body's parameters, after the URL's (R4 http.html#search)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if body and content_type != "application/x-www-form-urlencoded":
        raise bad_request("POST _search takes an application/x-www-form-urlencoded body")
    try:
        form = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise bad_request("the form body is not UTF-8") from None
    return [*request.query_params.multi_items(), *form]


FormParams = Annotated[list[tuple[str, str]], Depends(form_params)]


def bundle_response(bundle: Bundle) -> Response:
    if len(bundle.entries) > STREAM_ABOVE:
        return StreamingResponse(bundle.chunks(), media_type=FHIR_MEDIA)
    return Response(bundle.body(), media_type=FHIR_MEDIA)


def resource_response(body: service.Body, if_none_match: str | None) -> Response:
    etag = f'W/"{body.version_id}"'
    headers = {"ETag": etag, "Last-Modified": format_datetime(body.last_updated, usegmt=True)}
    if if_none_match is not None:
        wanted = {tag.strip() for tag in if_none_match.split(",")}
        if "*" in wanted or etag in wanted or etag[2:] in wanted:
            return Response(status_code=304, headers=headers)
    return Response(body.content, media_type=FHIR_MEDIA, headers=headers)


@router.get("/metadata", summary="CapabilityStatement (FHIR R4 4.0.1)")
def capabilities(request: Request, settings: SettingsDep) -> Response:
    statement = getattr(request.app.state, "fhir_capability_statement", None)
    if statement is None:
        statement = capability_statement(settings)
        request.app.state.fhir_capability_statement = statement
    return Response(statement, media_type=FHIR_MEDIA)


@router.get("/{resource_type}", summary="search-type (GET)")
def search_type(
    request: Request,
    resource_type: str,
    session: ReadSessionDep,
    access: AccessDep,
    settings: SettingsDep,
    prefer: PreferHeader = None,
) -> Response:
    params = params_of(request)
    bundle = service.search_type(
        session, access, settings.fhir_base_url, resource_type, params, strict=strict(prefer)
    )
    return bundle_response(bundle)


@router.post("/{resource_type}/_search", summary="search-type (POST, form body)")
def search_type_post(
    request: Request,
    resource_type: str,
    params: FormParams,
    session: ReadSessionDep,
    access: AccessDep,
    settings: SettingsDep,
    prefer: PreferHeader = None,
) -> Response:
    bundle = service.search_type(
        session, access, settings.fhir_base_url, resource_type, params, strict=strict(prefer)
    )
    return bundle_response(bundle)


@router.get("/{resource_type}/_history", summary="history-type")
def history_type(
    request: Request,
    resource_type: str,
    session: ReadSessionDep,
    access: AccessDep,
    settings: SettingsDep,
    prefer: PreferHeader = None,
) -> Response:
    bundle = service.type_history(
        session, access, settings.fhir_base_url, resource_type, params_of(request), strict=strict(prefer)
    )
    return bundle_response(bundle)


@router.get("/Patient/{patient_id}/$everything", summary="Patient/$everything")
def patient_everything(
    request: Request,
    patient_id: str,
    session: ReadSessionDep,
    access: AccessDep,
    settings: SettingsDep,
    prefer: PreferHeader = None,
) -> Response:
    bundle = service.patient_everything(
        session, access, settings.fhir_base_url, patient_id, params_of(request), strict=strict(prefer)
    )
    return bundle_response(bundle)


@router.get("/{resource_type}/{resource_id}", summary="read")
def read_resource(
    request: Request,
    resource_type: str,
    resource_id: str,
    session: ReadSessionDep,
    access: AccessDep,
    settings: SettingsDep,
    if_none_match: IfNoneMatchHeader = None,
) -> Response:
    body = service.read_resource(session, access, resource_type, resource_id)
    return resource_response(body, if_none_match)


@router.get("/{resource_type}/{resource_id}/_history", summary="history-instance")
def history_instance(
    request: Request,
    resource_type: str,
    resource_id: str,
    session: ReadSessionDep,
    access: AccessDep,
    settings: SettingsDep,
    prefer: PreferHeader = None,
) -> Response:
    bundle = service.instance_history(
        session,
        access,
        settings.fhir_base_url,
        resource_type,
        resource_id,
        params_of(request),
        strict=strict(prefer),
    )
    return bundle_response(bundle)


@router.get("/{resource_type}/{resource_id}/_history/{version_id}", summary="vread")
def vread_resource(
    request: Request,
    resource_type: str,
    resource_id: str,
    version_id: str,
    session: ReadSessionDep,
    access: AccessDep,
    settings: SettingsDep,
    if_none_match: IfNoneMatchHeader = None,
) -> Response:
    body = service.vread_resource(session, access, resource_type, resource_id, version_id)
    return resource_response(body, if_none_match)
