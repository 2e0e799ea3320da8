"""Strict JSON request bodies: I-JSON (RFC 7493, https://www.rfc-editor.org/rfc/rfc7493) or a clear 4xx.

A body is read as JSON only when its media type says so (``application/json``, optionally with
``charset=utf-8``); anything else is 415. The text must be UTF-8 (RFC 8259 §8.1) and parse as JSON with
finite numbers, no lone surrogates and no object holding the same key twice (I-JSON §2.2, §2.3): each
failure is a 422 naming the body (and for a duplicate key, the path of the object holding it).

orjson does the parsing (strict about UTF-8, surrogates, NaN/Infinity and nesting depth); it keeps the last
of repeated keys, so the standard library's parser, which reports every key pair, looks for duplicates.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from gateway.core.errors import RecordValidationError, UnsupportedMediaTypeError, field_error

JSON_MEDIA_TYPE = "application/json"
NDJSON_MEDIA_TYPES = ("application/x-ndjson", "application/ndjson")
#: bodies larger than this are parsed in a worker thread, not on the event loop
THREAD_PARSE_BYTES = 64 * 1024

Loc = Sequence[str | int]


class JsonBodyRoute(APIRoute):
    """A route whose request body is checked before anything else runs.

    Its media type must be one the operation documents (``openapi_extra`` request body content, else
    ``application/json``): else 415. For an operation with a JSON body parameter the body is parsed here,
    strictly (:func:`parse_json`), and FastAPI validates that value; routes that read the body themselves
    (the NDJSON batch) parse it with the functions below.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        documented = ((self.openapi_extra or {}).get("requestBody") or {}).get("content")
        if self.body_field is None and documented is None:
            return handler
        allowed = tuple(documented or (JSON_MEDIA_TYPE,))
        parses_json = self.body_field is not None

        async def strict(request: Request) -> Response:
            request = _StrictJsonRequest(request.scope, request.receive)
            body = await request.body()
            if body:
                media_type(request.headers.get("content-type"), allowed)
                if parses_json:
                    request.parsed = (
                        parse_json(body)
                        if len(body) <= THREAD_PARSE_BYTES
                        else await run_in_threadpool(parse_json, body)
                    )
            return await handler(request)

        return strict


class _StrictJsonRequest(Request):
    """A request whose ``json()`` is the strictly parsed body (FastAPI calls it to read a JSON body)."""

    parsed: Any = None

    async def json(self) -> Any:
        return self.parsed


def media_type(content_type: str | None, allowed: Sequence[str]) -> str:
    """The request's media type, one of ``allowed``; else UnsupportedMediaTypeError (415).

    Parameters other than ``charset=utf-8`` are refused: JSON has no other encoding (RFC 8259 §8.1)."""
    expected = describe_media_types(allowed)
    if not content_type:
        raise UnsupportedMediaTypeError(f"a request body needs a Content-Type of {expected}")
    kind, *parameters = (part.strip() for part in content_type.split(";"))
    kind = kind.lower()
    if kind not in allowed:
        raise UnsupportedMediaTypeError(f"the request body must be {expected}")
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() != "charset" or value.strip().strip('"').lower() != "utf-8":
            raise UnsupportedMediaTypeError(
                f"{expected} is UTF-8 with no parameters other than charset=utf-8"
            )
    return kind


def describe_media_types(allowed: Sequence[str]) -> str:
    """E.g. "application/json", "application/json, application/x-ndjson or application/ndjson"."""
    return allowed[0] if len(allowed) == 1 else ", ".join(allowed[:-1]) + " or " + allowed[-1]


def parse_json(body: bytes, *, loc: Loc = ("body",)) -> Any:
    """The JSON value of ``body``, or RecordValidationError (422) saying what is wrong and where."""
    if body.startswith(b"\xef\xbb\xbf"):
        raise RecordValidationError(
            [
                field_error(
                    loc, "a JSON body must not begin with a byte order mark (RFC 8259 §8.1)", "json_invalid"
                )
            ]
        )
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise RecordValidationError([field_error(loc, _decode_message(error), "json_invalid")]) from None
    try:
        duplicate = _duplicate_key(body)
    except RecursionError:  # orjson allows 1024 levels; no record comes near that
        raise RecordValidationError([field_error(loc, "the JSON nests too deeply", "json_invalid")]) from None
    if duplicate is not None:
        path, key = duplicate
        raise RecordValidationError(
            [field_error([*loc, *path], f"the key {key!r} appears twice in one object", "json_duplicate_key")]
        )
    return value


def parse_ndjson(body: bytes, *, loc: Loc = ("body",)) -> list[Any]:
    """NDJSON: one JSON value per non-blank line; a failing line is named by its entry index."""
    values: list[Any] = []
    for line in body.splitlines():
        if line.strip():
            values.append(parse_json(line, loc=(*loc, len(values))))
    return values


def _decode_message(error: orjson.JSONDecodeError) -> str:
    reason = error.msg
    if "UTF-8" in reason or "surrogate" in reason:
        return "the body is not valid UTF-8 text"
    return f"invalid JSON: {reason} (at character {error.pos})"


class _Pairs(dict[str, Any]):
    """An object that held a key twice (only built while looking for duplicates)."""

    duplicate: str


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) == len(pairs):
        return out
    marked = _Pairs(out)
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            marked.duplicate = key
            break
        seen.add(key)
    return marked


def _duplicate_key(body: bytes) -> tuple[list[str | int], str] | None:
    """The path of the first object (depth first) that holds a key twice, and that key."""
    found: list[bool] = []

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out = _pairs(pairs)
        if isinstance(out, _Pairs):
            found.append(True)
        return out

    tree = json.loads(body.decode("utf-8"), object_pairs_hook=hook)  # orjson accepted it: valid UTF-8 JSON
    return _find_marked(tree, []) if found else None


def _find_marked(value: Any, path: list[str | int]) -> tuple[list[str | int], str] | None:
    if isinstance(value, _Pairs):
        return path, value.duplicate
    items: Any = (
        value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    )
    for key, item in items:
        hit = _find_marked(item, [*path, key])
        if hit is not None:
            return hit
    return None
