"""The calls the rest of the gateway makes to audit what happens (one function per kind of event).

- ``fhir_entry`` / ``record_fhir``: a FHIR read, search or operation (who, which type, which patient,
  outcome); ``gateway.audit.middleware`` records one for every /fhir request, after the status is known.
- ``record_token``: every token request at /auth/token, issued or refused.
- ``record_bearer_refused``: a protected API refused the bearer token presented.

The recorder is the app's (``app.state.audit``; ``AuditDep`` in routes). Nothing here blocks on the
database: events are queued and written in batches (``gateway.audit.recorder``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from gateway.audit import events
from gateway.audit.recorder import AuditRecorder, new_event_id, utcnow
from gateway.auth.service import IssuedToken, Principal
from gateway.auth.token_request import TokenRequest
from gateway.core.config import Settings


def get_audit(request: Request) -> AuditRecorder:
    recorder: AuditRecorder = request.app.state.audit
    return recorder


AuditDep = Annotated[AuditRecorder, Depends(get_audit)]


def _server(settings: Settings) -> events.Server:
    return events.Server(base_url=settings.base_url)


def fhir_entry(
    settings: Settings,
    principal: Principal | None,
    *,
    interaction: str,
    resource_type: str | None,
    status_code: int,
    resource_id: str | None = None,
    patient_id: str | None = None,
    query: str | None = None,
    address: str | None = None,
) -> events.AuditEntry:
    """``interaction``: read, vread, history-instance, search-type, search-system, or an operation name
    (``$everything``, ``$export``). ``patient_id``: the patient the request is about (the launch patient
    of a patient-context token, the ``patient`` searched for, the Patient read), if there is one."""
    return events.rest_event(
        _server(settings),
        event_id=new_event_id(),
        now=utcnow(),
        interaction=interaction,
        resource_type=resource_type,
        resource_id=resource_id,
        patient_id=patient_id or (principal.patient_id if principal else None),
        client_id=principal.client_id if principal else None,
        clinic_pk=principal.clinic_pk if principal else None,
        status_code=status_code,
        query=query,
        address=address,
    )


def record_fhir(
    recorder: AuditRecorder,
    settings: Settings,
    principal: Principal | None,
    *,
    interaction: str,
    resource_type: str | None,
    status_code: int,
    resource_id: str | None = None,
    patient_id: str | None = None,
    query: str | None = None,
    address: str | None = None,
) -> None:
    """Records one FHIR interaction (``fhir_entry``). ``recorder.record`` waits only if the queue is full;
    on the event loop use ``recorder.try_record(fhir_entry(...))`` and fall back to a worker thread."""
    recorder.record(
        fhir_entry(
            settings,
            principal,
            interaction=interaction,
            resource_type=resource_type,
            status_code=status_code,
            resource_id=resource_id,
            patient_id=patient_id,
            query=query,
            address=address,
        )
    )


def claimed_client(request: TokenRequest) -> str | None:
    """The client id a token request names (unverified), without raising on a malformed request."""
    if request.basic is not None:
        return request.basic[0]
    try:
        assertion = request.assertion
    except Exception:
        assertion = None
    if assertion is not None and assertion.issuer:
        return assertion.issuer
    return request.form.get("client_id")


def record_token(
    recorder: AuditRecorder,
    settings: Settings,
    request: TokenRequest,
    *,
    issued: IssuedToken | None,
    error: str | None,
) -> None:
    patient = issued.extra.get("patient") if issued is not None else None
    recorder.record(
        events.token_event(
            _server(settings),
            event_id=new_event_id(),
            now=utcnow(),
            client_id=claimed_client(request),
            grant_type=request.grant_type,
            scope=issued.scope if issued is not None else request.form.get("scope"),
            error=error,
            address=request.address,
            patient_id=patient if isinstance(patient, str) else None,
        )
    )


def record_bearer_refused(
    recorder: AuditRecorder, settings: Settings, *, path: str, description: str, address: str | None
) -> None:
    recorder.record(
        events.bearer_refused(
            _server(settings),
            event_id=new_event_id(),
            now=utcnow(),
            path=path,
            description=description,
            address=address,
        )
    )
