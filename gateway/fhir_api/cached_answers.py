"""``read`` and ``search`` answered from the read cache before routing (a pure ASGI middleware).

FastAPI's routing and dependency solving cost more than a cached answer itself, so a request the read
cache (``gateway.fhir_api.read_cache``) can answer is answered here, inside the audit middleware (every
answer is still audited) and before the app's routes. Only what is certain to be answered the same way by
the route is answered here:

* ``GET /fhir/{type}/{id}`` and ``GET /fhir/{type}?...`` for a stored type, with a bearer token the
  ``AccessCache`` resolved within its ``ttl`` (the same token check the route makes);
* the cache only holds keys the routes stored (a real resource's type and id; a search's exact parameters
  and the token's clinics and scopes), so ``/fhir/Patient/$everything`` or ``/fhir/metadata`` can never hit;
* the answers come from the service functions the routes use (``service.read_cached``,
  ``service.search_cached``) with the routes' response builders (ETag, Last-Modified, 304).

Anything else, a miss or an error on the way (403, 404, 410), goes on to the app, whose route answers it
from the database and renders errors as OperationOutcomes.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import QueryParams
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.audit.middleware import PRINCIPAL_STATE
from gateway.core.errors import FhirError
from gateway.fhir_api import service
from gateway.fhir_api.access import AccessCache
from gateway.fhir_api.read_cache import ReadCache
from gateway.fhir_api.routes import FHIR_MEDIA, resource_response, strict

_PREFIX = "/fhir/"


class CachedAnswersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = None
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"].startswith(_PREFIX):
            response = self._answer(scope)
        if response is None:
            await self.app(scope, receive, send)
        else:
            await response(scope, receive, send)

    def _answer(self, scope: Scope) -> Response | None:
        state = scope["app"].state
        cache: ReadCache | None = getattr(state, "fhir_read_cache", None)
        access_cache: AccessCache | None = getattr(state, "fhir_access_cache", None)
        if cache is None or access_cache is None or not cache.enabled:
            return None
        segments = scope["path"][len(_PREFIX) :].split("/")
        if len(segments) > 2 or segments[0] not in service.STORED_TYPES:
            return None
        headers = _headers(scope)
        authorization = headers.get(b"authorization")
        if not authorization:
            return None
        access = access_cache.peek(authorization.decode("latin-1"))
        if access is None:
            return None
        try:
            if len(segments) == 2:
                body = service.read_cached(cache, access, segments[0], segments[1])
                if body is None:
                    return None
                if_none_match = headers.get(b"if-none-match")
                response = resource_response(body, if_none_match.decode("latin-1") if if_none_match else None)
            else:
                params = QueryParams(scope["query_string"]).multi_items()
                prefer = headers.get(b"prefer")
                bundle = service.search_cached(
                    cache,
                    access,
                    segments[0],
                    params,
                    strict=strict(prefer.decode("latin-1") if prefer else None),
                    count_miss=False,  # the route asks again
                )
                if bundle is None:
                    return None
                response = Response(bundle, media_type=FHIR_MEDIA)
        except FhirError:
            return None  # the route answers it (and renders the OperationOutcome)
        scope.setdefault("state", {})[PRINCIPAL_STATE] = access.principal  # who asked, for the audit trail
        return response


def _headers(scope: Scope) -> dict[bytes, Any]:
    """The first value of each header (as Starlette's ``Headers.get`` takes it)."""
    found: dict[bytes, Any] = {}
    for name, value in scope["headers"]:
        found.setdefault(name, value)
    return found
