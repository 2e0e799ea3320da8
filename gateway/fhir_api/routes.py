"""The FHIR R4 REST API under ``/fhir`` (http://hl7.org/fhir/R4/http.html): thin handlers over
``gateway.fhir_api.service``. ``metadata`` comes before the ``{type}`` routes, ``_history`` and
``$everything`` before ``{id}``; the bulk-export router is included before this one (``$export``).

Each handler is ``async`` and runs its whole use case in ONE worker-thread hop (:func:`in_worker`): the
bearer check (``AccessCache``, ``get_principal`` on a miss), a read session and the service call. Sync
dependencies would each cost a hop of their own (FastAPI runs every sync dependency in the threadpool),
and on the read path those hops, not the query, were most of a request's time.

``read`` and ``search`` keep their answers in the read cache (``gateway.fhir_api.read_cache``, PostgreSQL);
what it holds is answered before routing by ``gateway.fhir_api.cached_answers``, so these handlers see
only what the cache does not hold.
"""

from __future__ import annotations

from collections.abc import Callable
from email.utils import format_datetime
from typing import Annotated, TypeVar
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from gateway.core.config import Settings
from gateway.core.errors import FHIR_JSON, bad_request
from gateway.db.engine import Session, session_scope
from gateway.deps import AuthorizationHeader, get_principal
from gateway.fhir_api import service
from gateway.fhir_api.access import AccessCache, FhirAccess
from gateway.fhir_api.bundles import Bundle
from gateway.fhir_api.capability import capability_statement
from gateway.fhir_api.read_cache import ReadCache

router = APIRouter(prefix="/fhir", tags=["fhir"])

FHIR_MEDIA = f"{FHIR_JSON}; charset=utf-8"
#: bundles with more entries than this are streamed chunk by chunk
STREAM_ABOVE = 100
T = TypeVar("T")


def get_access(request: Request, settings: Settings, authorization: str | None) -> FhirAccess:
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


def read_cache_of(request: Request) -> ReadCache | None:
    cache: ReadCache | None = request.app.state.fhir_read_cache
    return cache


async def fhir_bearer(authorization: AuthorizationHeader = None) -> str | None:
    """The ``Authorization`` header of a /fhir request (checked by :func:`get_access` in the worker hop);
    marks the operation as bearer-protected in the OpenAPI document."""
    return authorization


BearerDep = Annotated[str | None, Depends(fhir_bearer)]


def _use_case(
    request: Request, authorization: str | None, call: Callable[[Session, FhirAccess, Settings], T]
) -> T:
    settings: Settings = request.app.state.settings
    access = get_access(request, settings, authorization)
    with session_scope(request.app.state.engine, autocommit=True) as session:
        return call(session, access, settings)


async def in_worker(
    request: Request, authorization: str | None, call: Callable[[Session, FhirAccess, Settings], T]
) -> T:
    """``call(session, access, settings)`` in one worker thread: the token check, then a read session (which
    connects at its first query and closes before the response is sent)."""
    return await run_in_threadpool(_use_case, request, authorization, call)


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
async def capabilities(request: Request) -> Response:
    statement = getattr(request.app.state, "fhir_capability_statement", None)
    if statement is None:
        statement = capability_statement(request.app.state.settings)
        request.app.state.fhir_capability_statement = statement
    return Response(statement, media_type=FHIR_MEDIA)


@router.get("/{resource_type}", summary="search-type (GET)")
async def search_type(
    request: Request, resource_type: str, authorization: BearerDep, prefer: PreferHeader = None
) -> Response:
    return await _search(request, authorization, resource_type, params_of(request), prefer)


@router.post("/{resource_type}/_search", summary="search-type (POST, form body)")
async def search_type_post(
    request: Request,
    resource_type: str,
    params: FormParams,
    authorization: BearerDep,
    prefer: PreferHeader = None,
) -> Response:
    return await _search(request, authorization, resource_type, params, prefer)


async def _search(
    request: Request,
    authorization: str | None,
    resource_type: str,
    params: list[tuple[str, str]],
    prefer: str | None,
) -> Response:
    cache = read_cache_of(request)
    bundle = await in_worker(
        request,
        authorization,
        lambda session, access, settings: service.search_type(
            session, access, settings.fhir_base_url, resource_type, params, strict=strict(prefer), cache=cache
        ),
    )
    return bundle_response(bundle)


@router.get("/{resource_type}/_history", summary="history-type")
async def history_type(
    request: Request, resource_type: str, authorization: BearerDep, prefer: PreferHeader = None
) -> Response:
    params = params_of(request)
    bundle = await in_worker(
        request,
        authorization,
        lambda session, access, settings: service.type_history(
            session, access, settings.fhir_base_url, resource_type, params, strict=strict(prefer)
        ),
    )
    return bundle_response(bundle)


@router.get("/Patient/{patient_id}/$everything", summary="Patient/$everything")
async def patient_everything(
    request: Request, patient_id: str, authorization: BearerDep, prefer: PreferHeader = None
) -> Response:
    params = params_of(request)
    bundle = await in_worker(
        request,
        authorization,
        lambda session, access, settings: service.patient_everything(
            session, access, settings.fhir_base_url, patient_id, params, strict=strict(prefer)
        ),
    )
    return bundle_response(bundle)


@router.get("/{resource_type}/{resource_id}", summary="read")
async def read_resource(
    request: Request,
    resource_type: str,
    resource_id: str,
    authorization: BearerDep,
    if_none_match: IfNoneMatchHeader = None,
) -> Response:
    cache = read_cache_of(request)
    body = await in_worker(
        request,
        authorization,
        lambda session, access, _settings: service.read_resource(
            session, access, resource_type, resource_id, cache
        ),
    )
    return resource_response(body, if_none_match)


@router.get("/{resource_type}/{resource_id}/_history", summary="history-instance")
async def history_instance(
    request: Request,
    resource_type: str,
    resource_id: str,
    authorization: BearerDep,
    prefer: PreferHeader = None,
) -> Response:
    params = params_of(request)
    bundle = await in_worker(
        request,
        authorization,
        lambda session, access, settings: service.instance_history(
            session, access, settings.fhir_base_url, resource_type, resource_id, params, strict=strict(prefer)
        ),
    )
    return bundle_response(bundle)


@router.get("/{resource_type}/{resource_id}/_history/{version_id}", summary="vread")
async def vread_resource(
    request: Request,
    resource_type: str,
    resource_id: str,
    version_id: str,
    authorization: BearerDep,
    if_none_match: IfNoneMatchHeader = None,
) -> Response:
    body = await in_worker(
        request,
        authorization,
        lambda session, access, _settings: service.vread_resource(
            session, access, resource_type, resource_id, version_id
        ),
    )
    return resource_response(body, if_none_match)
