"""The OpenAPI document (OpenAPI 3.1, https://spec.openapis.org/oas/v3.1.0): FastAPI's, plus what cuts across routes.

In this one place:

* the security schemes: a bearer token (RFC 6750) from the OAuth 2.0 client-credentials flow at
  ``/auth/token``, and on every operation that needs a token its security requirement;
* response examples of what the server really answers, for errors and successes alike
  (``tests/gateway/test_openapi.py`` sends each documented case and compares the answer with the example);
* no 413 on operations that take no body, and no 422 on the token endpoint (OAuth errors are 400).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel

from gateway.auth.service import CLINIC_SCOPE, GRANT_TYPES
from gateway.clinic_api.examples import RECORD_EXAMPLES, VALIDATION_ERROR_EXAMPLE
from gateway.core.config import Settings
from gateway.core.json_body import JSON_MEDIA_TYPE, NDJSON_MEDIA_TYPES, describe_media_types
from gateway.deps import get_clinic_scope, get_principal
from gateway.fhir_api.routes import fhir_bearer
from mappings.records import ALL_KINDS, EXTERNAL_ID_PATTERN

BEARER = "bearer"
OAUTH2 = "oauth2"
BODYLESS = {"GET", "HEAD", "DELETE", "OPTIONS"}
TOKEN_PATH = "/auth/token"
ADMIN_SYNC_PATH = "/admin/sync/"
IMPORT_PATH = "/api/v1/patients/{external_id}/import"

#: ids and timestamps the examples use (a test compares everything else literally)
UNKNOWN_ID = "no-such-id"
EXAMPLE_TIME = "2026-11-02T17:20:31.512077Z"
EXAMPLE_TOKEN = "3q2F6gV0dnRuTqHqWu-ZrYkOB5OKkQn2bVd8x4l2yB0"


def install_openapi(app: FastAPI, settings: Settings) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app, settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def build_openapi(app: FastAPI, settings: Settings) -> dict[str, Any]:
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schema.setdefault("components", {})["securitySchemes"] = security_schemes()
    for route in iter_route_contexts(app.routes):  # included routers' routes with their prefixes
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        path = route.path_format or ""
        for method in route.methods or ():
            operation = schema["paths"][path][method.lower()]
            _document(operation, path, route.dependant, method, settings)
    return schema


def security_schemes() -> dict[str, Any]:
    return {
        BEARER: {
            "type": "http",
            "scheme": "bearer",
            "description": f"An access token from `POST {TOKEN_PATH}`, sent as `Authorization: Bearer <token>`.",
        },
        OAUTH2: {
            "type": "oauth2",
            "description": "OAuth 2.0 client credentials (RFC 6749 §4.4) with `client_secret_basic`.",
            "flows": {
                "clientCredentials": {
                    "tokenUrl": TOKEN_PATH,
                    "scopes": {CLINIC_SCOPE: "read and write the records of the token's clinic"},
                }
            },
        },
    }


def _depends_on(dependant: Dependant, call: Callable[..., Any]) -> bool:
    return dependant.call is call or any(_depends_on(d, call) for d in dependant.dependencies)


def _document(
    operation: dict[str, Any], path: str, dependant: Dependant, method: str, settings: Settings
) -> None:
    responses: dict[str, Any] = operation["responses"]
    if method in BODYLESS:
        responses.pop("413", None)
        responses.pop("415", None)
    if path == TOKEN_PATH:
        responses.pop("422", None)
        _examples(responses, token_examples(settings))
        return
    clinic_records = _depends_on(dependant, get_clinic_scope)
    bearer = _depends_on(dependant, get_principal) or _depends_on(dependant, fhir_bearer)
    if clinic_records or bearer:
        scopes = [CLINIC_SCOPE] if clinic_records else []
        operation["security"] = [{BEARER: []}, {OAUTH2: scopes}]
    if path.startswith("/api/v1/"):
        _examples(responses, record_api_examples(path, method, settings))
    elif path.startswith(ADMIN_SYNC_PATH):
        _examples(responses, admin_sync_examples())


def _examples(responses: dict[str, Any], examples: dict[str, dict[str, Any]]) -> None:
    """Puts ``{status: {name: value}}`` into the documented responses (only where the status is documented)."""
    for status, named in examples.items():
        if status not in responses:
            continue
        content = responses[status].setdefault("content", {}).setdefault("application/json", {})
        content.pop("example", None)
        content["examples"] = {name: {"value": value} for name, value in named.items()}
        headers = RESPONSE_HEADERS.get(status)
        if headers:
            responses[status]["headers"] = headers


RESPONSE_HEADERS: dict[str, dict[str, Any]] = {
    "401": {
        "WWW-Authenticate": {
            "description": "the authentication scheme (RFC 6750 §3 / RFC 7617)",
            "schema": {"type": "string"},
        }
    },
    "429": {
        "Retry-After": {
            "description": "seconds until the throttle window ends",
            "schema": {"type": "integer"},
        }
    },
}


def token_examples(settings: Settings) -> dict[str, dict[str, Any]]:
    def error(code: str, description: str) -> dict[str, str]:
        return {"error": code, "error_description": description}

    return {
        "200": {
            "token": {
                "access_token": EXAMPLE_TOKEN,
                "token_type": "Bearer",
                "expires_in": settings.access_token_lifetime_seconds,
                "scope": CLINIC_SCOPE,
            }
        },
        "400": {
            "repeated-parameter": error("invalid_request", "parameter grant_type is repeated"),
            "empty-scope": error(
                "invalid_request", "scope must not be empty (omit it to get the client's scopes)"
            ),
            "unsupported-grant-type": error(
                "unsupported_grant_type",
                f"grant_type password is not supported (supported: {', '.join(GRANT_TYPES)})",
            ),
            "scope-not-allowed": error("invalid_scope", "scope not allowed for this client: system/*.read"),
        },
        "401": {"invalid-client": error("invalid_client", "client authentication failed")},
        "429": {
            "throttled": error(
                "slow_down",
                "too many failed client authentications; "
                f"retry after {settings.token_throttle_window_seconds} s",
            )
        },
    }


def _detail(message: str) -> dict[str, str]:
    return {"detail": message}


def _field(loc: Iterable[str | int], msg: str, type_: str) -> dict[str, Any]:
    return {"loc": list(loc), "msg": msg, "type": type_}


def record_api_examples(path: str, method: str, settings: Settings) -> dict[str, dict[str, Any]]:
    """Examples for an ``/api/v1`` operation, keyed by status and example name."""
    parts = path.split("/")  # "", "api", "v1", kind, "{external_id}", ("fhir")
    kind = parts[3] if len(parts) > 3 else ""
    examples: dict[str, dict[str, Any]] = {
        "401": {
            "missing-token": _detail("a bearer token is required"),
            "invalid-token": _detail("the bearer token is invalid, expired or revoked"),
        },
        "403": {"not-a-clinic-token": _detail("this token is not a clinic records token")},
        "404": {"unknown-record": _detail(f"no {kind} record with id {UNKNOWN_ID!r}")},
        "413": {"body-too-large": _detail(f"request body exceeds {settings.max_body_bytes} bytes")},
        "415": {
            "wrong-media-type": _detail(f"the request body must be {describe_media_types(media_types(path))}")
        },
    }
    if "{external_id}" in path:
        examples["422"] = {
            "bad-id": {
                "detail": [
                    _field(
                        ["path", "external_id"],
                        f"String should match pattern '{EXTERNAL_ID_PATTERN}'",
                        "string_pattern_mismatch",
                    )
                ]
            }
        }
    if path == IMPORT_PATH:
        from gateway.clinic_api.routes import ImportRequest

        examples["404"] = {"unknown-connection": _detail(f"no enabled EHR connection {UNKNOWN_ID!r}")}
        examples["422"] = {"missing-fields": missing_fields_example(ImportRequest)}
    elif kind == "batch":
        examples["422"] = {
            "not-an-array": {
                "detail": [_field(["body"], "expected an array of {kind, id, record}", "list_type")]
            }
        }
        examples["200"] = {"batch": batch_result_example()}
    elif method == "GET" and path == f"/api/v1/{kind}":
        examples["422"] = {
            "bad-limit": {
                "detail": [
                    _field(
                        ["query", "limit"], "Input should be greater than or equal to 1", "greater_than_equal"
                    )
                ]
            }
        }
        if kind in RECORD_EXAMPLES:
            examples["200"] = {"page": {"items": [envelope_example(kind)], "next_after": None}}
    elif method == "PUT":
        examples["422"] = {
            "missing-fields": missing_fields_example(ALL_KINDS[kind]),
            "invalid-json": {"detail": [_field(["body"], INVALID_JSON_MESSAGE, "json_invalid")]},
            "duplicate-key": {
                "detail": [_field(["body"], "the key 'id' appears twice in one object", "json_duplicate_key")]
            },
        }
        if kind == "assessments":
            examples["422"]["item-answer"] = VALIDATION_ERROR_EXAMPLE
        examples["201"] = {"created": envelope_example(kind, outcome="created")}
        examples["200"] = {"unchanged": envelope_example(kind, outcome="unchanged")}
    elif method == "DELETE" and kind == "patients":
        external_id, _ = RECORD_EXAMPLES["patients"]
        session_id, _ = RECORD_EXAMPLES["sessions"]
        examples["409"] = {
            "referenced": _detail(
                f"patients/{external_id} is referenced by sessions/{session_id}; delete those first"
            )
        }
    elif method == "GET" and path == f"/api/v1/{kind}/{{external_id}}" and kind in RECORD_EXAMPLES:
        examples["200"] = {"record": envelope_example(kind)}
    return examples


#: what PUT answers for the body ``{bad`` (tests/gateway/test_openapi.py sends it)
INVALID_JSON_MESSAGE = "invalid JSON: unexpected character, expected a string key (at character 1)"


def media_types(path: str) -> list[str]:
    """The media types an operation's body may have (gateway.core.json_body; the batch also reads NDJSON)."""
    if path == "/api/v1/batch":
        return [JSON_MEDIA_TYPE, *NDJSON_MEDIA_TYPES]
    return [JSON_MEDIA_TYPE]


def envelope_example(kind: str, outcome: str | None = None) -> dict[str, Any]:
    external_id, record = RECORD_EXAMPLES[kind]
    stored = (
        ALL_KINDS[kind].model_validate(record).model_dump(mode="json", exclude_none=True)
    )  # with defaults
    return {
        "kind": kind,
        "id": external_id,
        "record": stored,
        "created_at": EXAMPLE_TIME,
        "updated_at": EXAMPLE_TIME,
        "outcome": outcome,
    }


def missing_fields_example(model: type[BaseModel]) -> dict[str, Any]:
    """What a body of ``{}`` is answered: each required field of the body model, in the model's order."""
    return {
        "detail": [
            _field(["body", name], "Field required", "missing")
            for name, field in model.model_fields.items()
            if field.is_required()
        ]
    }


def admin_sync_examples() -> dict[str, dict[str, Any]]:
    """Examples of the ``/admin/sync`` operations (admin client tokens only)."""
    return {
        "401": {
            "missing-token": _detail("a bearer token is required"),
            "invalid-token": _detail("the bearer token is invalid, expired or revoked"),
        },
        "403": {"not-an-admin-token": _detail("sync administration needs an admin client's token")},
    }


#: the batch the request example of POST /api/v1/batch writes (see clinic_api.routes.BATCH_EXAMPLE)
BATCH_EXAMPLE_KINDS = ("patients", "practitioners", "sessions", "doses")


def batch_result_example() -> dict[str, Any]:
    return {
        "created": len(BATCH_EXAMPLE_KINDS),
        "updated": 0,
        "unchanged": 0,
        "results": [
            {"kind": kind, "id": RECORD_EXAMPLES[kind][0], "outcome": "created"}
            for kind in BATCH_EXAMPLE_KINDS
        ],
    }
