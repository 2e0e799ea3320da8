"""One error model. Services raise these; ``install_error_handlers`` turns them into responses:

* clinic API (``/api``): ``{"detail": ...}`` as FastAPI does, 422 with a ``loc`` path per failing field;
* FHIR API (``/fhir``): an ``OperationOutcome`` with ``application/fhir+json`` (medplum outcomes.ts style);
* OAuth endpoints: RFC 6749 §5.2 error JSON.

A 500 carries "internal error" and the request id only: never exception text, never PHI.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from mappings.records import ITEM_ERRORS

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"


class GatewayError(Exception):
    status_code = 400

    def __init__(self, detail: Any, *, status_code: int | None = None, headers: dict[str, str] | None = None):
        super().__init__(detail if isinstance(detail, str) else "gateway error")
        self.detail = detail
        if status_code is not None:
            self.status_code = status_code
        self.headers = headers


class NotFoundError(GatewayError):
    status_code = 404


class ConflictError(GatewayError):
    status_code = 409


class PayloadTooLargeError(GatewayError):
    status_code = 413


class UnsupportedMediaTypeError(GatewayError):
    """415: the request body is not of a media type the operation reads (RFC 9110 §15.5.16)."""

    status_code = 415


class UnauthorizedError(GatewayError):
    status_code = 401

    def __init__(self, detail: str = "missing or invalid bearer token", *, error: str = "invalid_token"):
        super().__init__(detail, headers={"WWW-Authenticate": f'Bearer realm="kap-gateway", error="{error}"'})


class ForbiddenError(GatewayError):
    status_code = 403


class ServiceUnavailableError(GatewayError):
    """503 with ``Retry-After``: the request waited too long for a database connection or lock (RFC 9110 §15.6.4).
    Nothing was written; the same request later succeeds."""

    status_code = 503
    retry_after_seconds = 1

    def __init__(self, detail: str = "the service is busy; retry shortly"):
        super().__init__(detail, headers={"Retry-After": str(self.retry_after_seconds)})


class RecordValidationError(GatewayError):
    """422 with FastAPI's error list: each entry names the failing field as a ``loc`` path."""

    status_code = 422

    def __init__(self, errors: Sequence[dict[str, Any]]):
        super().__init__(list(errors))


def field_error(loc: Sequence[str | int], msg: str, type_: str = "value_error") -> dict[str, Any]:
    return {"loc": list(loc), "msg": msg, "type": type_}


def pydantic_errors(errors: Sequence[Any], prefix: Sequence[str | int] = ()) -> list[dict[str, Any]]:
    """Pydantic error dicts -> JSON-safe entries with a full ``loc`` and no echo of the input (PHI)."""
    out: list[dict[str, Any]] = []
    for error in errors:
        loc = [*prefix, *error["loc"]]
        ctx = error.get("ctx") or {}
        if ITEM_ERRORS in ctx:  # one entry per bad item answer: items.<key>
            out.extend(field_error([*loc, key], message, "item_answer") for key, message in ctx[ITEM_ERRORS])
            continue
        out.append(field_error(loc, error["msg"], error["type"]))
    return out


class OAuthError(Exception):
    """RFC 6749 §5.2 error response."""

    def __init__(
        self, error: str, description: str, *, status_code: int = 400, headers: dict[str, str] | None = None
    ):
        super().__init__(description)
        self.error = error
        self.description = description
        self.status_code = status_code
        self.headers = headers or {}


class FhirError(Exception):
    """An error on /fhir, rendered as an OperationOutcome."""

    def __init__(
        self,
        status_code: int,
        code: str,
        diagnostics: str,
        *,
        expression: Sequence[str] = (),
        headers: dict[str, str] | None = None,
    ):
        super().__init__(diagnostics)
        self.status_code = status_code
        self.code = code
        self.diagnostics = diagnostics
        self.expression = list(expression)
        self.headers = headers

    def outcome(self) -> dict[str, Any]:
        issue: dict[str, Any] = {"severity": "error", "code": self.code, "diagnostics": self.diagnostics}
        if self.expression:
            issue["expression"] = self.expression
        return {"resourceType": "OperationOutcome", "issue": [issue]}


def not_found(resource_type: str, resource_id: str) -> FhirError:
    return FhirError(404, "not-found", f"{resource_type}/{resource_id} is not known")


def bad_request(diagnostics: str, *, expression: Sequence[str] = ()) -> FhirError:
    return FhirError(400, "invalid", diagnostics, expression=expression)


def forbidden(diagnostics: str = "the token's scopes do not allow this") -> FhirError:
    """403 with RFC 6750 §3.1 ``insufficient_scope`` (checklist RS-1)."""
    return FhirError(
        403,
        "forbidden",
        diagnostics,
        headers={"WWW-Authenticate": 'Bearer realm="kap-gateway", error="insufficient_scope"'},
    )


def gone(resource_type: str, resource_id: str) -> FhirError:
    return FhirError(410, "deleted", f"{resource_type}/{resource_id} was deleted")


def precondition_failed(diagnostics: str) -> FhirError:
    return FhirError(412, "conflict", diagnostics)


def too_many_requests(retry_after: int) -> FhirError:
    return FhirError(429, "throttled", "too many requests", headers={"Retry-After": str(retry_after)})


def _is_fhir(request: Request) -> bool:
    return request.url.path.startswith("/fhir")


def _fhir_response(error: FhirError) -> Response:
    return Response(
        orjson.dumps(error.outcome()),
        status_code=error.status_code,
        media_type=FHIR_JSON,
        headers=error.headers,
    )


def install_error_handlers(
    app: FastAPI,
    *,
    translated: tuple[type[Exception], ...] = (),
    translate: Callable[[Exception], GatewayError | None] = lambda _exc: None,
) -> None:
    """``translate`` turns an exception of a ``translated`` class into a GatewayError (the database's
    "busy" errors into ServiceUnavailableError); what it returns None for stays an internal error."""

    @app.exception_handler(GatewayError)
    async def _gateway_error(request: Request, exc: GatewayError) -> Response:
        if _is_fhir(request):
            code = {
                401: "login",
                403: "forbidden",
                404: "not-found",
                409: "conflict",
                413: "too-long",
                429: "throttled",
                503: "transient",
            }.get(exc.status_code, "invalid")
            text = exc.detail if isinstance(exc.detail, str) else "invalid request"
            return _fhir_response(FhirError(exc.status_code, code, text, headers=exc.headers))
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(FhirError)
    async def _fhir_error(_request: Request, exc: FhirError) -> Response:
        return _fhir_response(exc)

    @app.exception_handler(OAuthError)
    async def _oauth_error(_request: Request, exc: OAuthError) -> Response:
        headers = {"Cache-Control": "no-store", "Pragma": "no-cache", **exc.headers}
        if exc.status_code == 401:
            headers["WWW-Authenticate"] = 'Basic realm="kap-gateway"'
        return JSONResponse(
            {"error": exc.error, "error_description": exc.description},
            status_code=exc.status_code,
            headers=headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _request_validation(request: Request, exc: RequestValidationError) -> Response:
        errors = pydantic_errors(exc.errors())
        if _is_fhir(request):
            text = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
            return _fhir_response(bad_request(text))
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:
            # Starlette's Allow names the methods of the first route that matched the path only
            allow = allowed_methods(request)
            if request.method == "OPTIONS" and allow:
                return Response(status_code=204, headers={"Allow": ", ".join([*allow, "OPTIONS"])})
            exc.headers = {**(exc.headers or {}), "Allow": ", ".join(allow)}
        if _is_fhir(request):
            code = (
                "not-found"
                if exc.status_code == 404
                else "not-supported"
                if exc.status_code == 405
                else "invalid"
            )
            return _fhir_response(
                FhirError(exc.status_code, code, str(exc.detail), headers=dict(exc.headers or {}))
            )
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    async def _translated(request: Request, exc: Exception) -> Response:
        mapped = translate(exc)
        if mapped is None:
            return _internal_error(request, exc)
        log.warning(
            "request refused, retry later",
            extra={"error_type": type(exc).__name__, "status": mapped.status_code},
        )
        if request.url.path.startswith("/auth"):  # RFC 6749 §4.1.2.1 names this case
            text = mapped.detail if isinstance(mapped.detail, str) else "retry later"
            return await _oauth_error(
                request,
                OAuthError(
                    "temporarily_unavailable", text, status_code=mapped.status_code, headers=mapped.headers
                ),
            )
        return await _gateway_error(request, mapped)

    for error_class in translated:
        app.add_exception_handler(error_class, _translated)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> Response:
        return _internal_error(request, exc)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route answers at the request's path (RFC 9110 §10.2.1 ``Allow``), sorted."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):  # included routers' routes with their prefixes
        if route.methods and route.path and compile_path(route.path)[0].match(request.url.path):
            methods |= route.methods
    return sorted(methods)


def _internal_error(request: Request, exc: Exception) -> Response:
    request_id = getattr(request.state, "request_id", "-")
    log.error(
        "unhandled error",
        extra={"error_type": type(exc).__name__, "request_id": request_id},
        exc_info=exc,
    )
    text = f"internal error (request id {request_id})"
    headers = {"X-Request-ID": request_id}
    if _is_fhir(request):
        return _fhir_response(FhirError(500, "exception", text, headers=headers))
    return JSONResponse({"detail": text}, status_code=500, headers=headers)
