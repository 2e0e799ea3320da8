"""One AuditEvent per /fhir request (read, vread, history, search, $everything, $export), recorded after
the answer's status is known, from one place: the FHIR routes need not call anything.

The principal is the one the FHIR access dependency (or ``gateway.deps.get_principal``) authenticated and
left in the request state (``request.state.principal``); a request refused before that (no or a bad token)
is audited as an authentication failure by ``get_principal``, so not twice here. The interaction and
resource type come from the path, the patient from the path (``Patient/<id>``), the ``patient``/``subject``
search parameter or the token's launch patient. Discovery and the CapabilityStatement are not audited.

A pure ASGI middleware (no response buffering): it wraps ``send`` only to see the status. Recording never
blocks the event loop: the event is queued without waiting, or handed to a worker thread if the queue is
full.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.audit.trail import fhir_entry

PRINCIPAL_STATE = "principal"
_TYPE = r"[A-Z][A-Za-z]{0,63}"
_ID = r"[A-Za-z0-9\-.]{1,64}"
#: (method, path pattern, interaction); first match wins
_PATTERNS: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
    (method, re.compile(pattern), interaction)
    for method, pattern, interaction in (
        ("GET", r"^/fhir/\$export$", "$export"),
        ("GET", rf"^/fhir/(?P<type>{_TYPE})/\$export$", "$export"),
        ("GET", rf"^/fhir/(?P<type>Group)/(?P<id>{_ID})/\$export$", "$export"),
        ("GET", rf"^/fhir/(?P<type>Patient)/(?P<id>{_ID})/\$everything$", "$everything"),
        ("GET", rf"^/fhir/(?P<type>{_TYPE})$", "search-type"),
        ("POST", rf"^/fhir/(?P<type>{_TYPE})/_search$", "search-type"),
        ("GET", rf"^/fhir/(?P<type>{_TYPE})/_history$", "history-type"),
        ("GET", rf"^/fhir/(?P<type>{_TYPE})/(?P<id>{_ID})$", "read"),
        ("GET", rf"^/fhir/(?P<type>{_TYPE})/(?P<id>{_ID})/_history$", "history-instance"),
        ("GET", rf"^/fhir/(?P<type>{_TYPE})/(?P<id>{_ID})/_history/[^/]+$", "vread"),
    )
)
_NOT_AUDITED = ("/fhir/metadata", "/fhir/.well-known/")


def classify(method: str, path: str) -> tuple[str, str | None, str | None] | None:
    """(interaction, resource type, resource id) of a /fhir request, or None if it reads no data."""
    if not path.startswith("/fhir/") or path.startswith(_NOT_AUDITED):
        return None
    for pattern_method, pattern, interaction in _PATTERNS:
        if method == pattern_method:
            match = pattern.match(path)
            if match is not None:
                groups = match.groupdict()
                return interaction, groups.get("type"), groups.get("id")
    return None


def patient_of(resource_type: str | None, resource_id: str | None, query: str) -> str | None:
    """The patient a request is about: a Patient read, or a single ``patient``/``subject``/``_id`` value."""
    if resource_type == "Patient" and resource_id:
        return resource_id
    for name, value in parse_qsl(query):
        if name.split(":")[0] in {"patient", "subject"} and value:
            reference = value.rsplit("/", 1)[-1]
            if "," not in reference:
                return reference
        if resource_type == "Patient" and name == "_id" and value and "," not in value:
            return value
    return None


class FhirAuditMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        kind = classify(scope["method"], scope["path"])
        if kind is None:
            await self.app(scope, receive, send)
            return
        status: dict[str, int] = {}

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            await self._record(scope, kind, status.get("code", 500))

    async def _record(self, scope: Scope, kind: tuple[str, str | None, str | None], status_code: int) -> None:
        state: dict[str, Any] = scope.get("state") or {}
        principal = state.get(PRINCIPAL_STATE)
        if principal is None:
            return  # refused before authentication: audited as an authentication failure
        app = scope["app"]
        interaction, resource_type, resource_id = kind
        query = scope.get("query_string", b"").decode("latin-1")
        client = scope.get("client")
        entry = fhir_entry(
            app.state.settings,
            principal,
            interaction=interaction,
            resource_type=resource_type,
            resource_id=resource_id,
            patient_id=patient_of(resource_type, resource_id, query),
            status_code=status_code,
            query=query,
            address=client[0] if client else None,
        )
        recorder = app.state.audit
        if not recorder.try_record(entry):  # the queue is full: wait for room off the event loop
            await anyio.to_thread.run_sync(recorder.record, entry)
