"""AuditEvents in the shape of IHE Basic Audit Log Patterns (BALP, https://profiles.ihe.net/ITI/BALP/).

Pure: the caller passes the time, the event id and who the server is. Each builder returns an
``AuditEntry``: the FHIR R4 AuditEvent as JSON plus the columns an admin searches by.

- FHIR read / vread / history: BALP ``PatientRead`` / ``Read`` — type ``rest``, subtype the RESTful
  interaction, action ``R``, an entity for the resource (role 4 Domain Resource) and, when known, one
  for the patient (role 1 Patient).
- FHIR search and operations: BALP ``PatientQuery`` / ``Query`` — action ``E``, an entity of type 2
  (System Object) role 24 (Query) whose ``query`` is the base64 of the query string.
- Token issued or refused: DICOM 110114 User Authentication, subtype 110122 Login, action ``E`` (the
  client authenticating to the authorization server); outcome 0 on success, 4 on a refusal.
- A refused bearer token at a protected API: the same type, outcome 4.

Never in an event: a token, secret, client assertion, password or request body. The query string is
kept (an admin needs to know what was searched) minus any ``access_token``-like parameter.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson

AUDIT_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL_INTERACTION = "http://hl7.org/fhir/restful-interaction"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
BALP = "https://profiles.ihe.net/ITI/BALP/StructureDefinition"
#: query parameters never kept in an event (RFC 6750 §2.3 lets a token travel in the query)
SECRET_PARAMETERS = frozenset({"access_token", "client_secret", "client_assertion", "code", "refresh_token"})

TOKEN = "token"
AUTHENTICATION_FAILURE = "authentication-failure"
READ_INTERACTIONS = frozenset({"read", "vread", "history-instance"})


@dataclass(frozen=True)
class Server:
    """Who observes and answers: the gateway (its public base URL)."""

    base_url: str

    @property
    def fhir_base(self) -> str:
        return self.base_url.rstrip("/") + "/fhir"


@dataclass(frozen=True)
class AuditEntry:
    event_id: str
    recorded: datetime
    action: str
    outcome: str
    client_id: str | None
    clinic_pk: int | None
    patient_id: str | None
    resource_type: str | None
    #: the AuditEvent as JSON bytes, serialized when the event is made: a queued event is then one bytes
    #: object instead of a tree of some forty dicts and lists for the garbage collector to walk
    content: bytes

    @property
    def resource(self) -> dict[str, Any]:
        """The AuditEvent (parsed from ``content``; for tests and diagnostics)."""
        parsed: dict[str, Any] = orjson.loads(self.content)
        return parsed


def outcome_of(status_code: int) -> str:
    """AuditEvent.outcome from an HTTP status: 0 success, 4 minor failure (4xx), 8 serious failure (5xx)."""
    if status_code < 400:
        return "0"
    return "4" if status_code < 500 else "8"


def clean_query(query: str | None) -> str | None:
    if not query:
        return None
    pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k not in SECRET_PARAMETERS]
    return urlencode(pairs) if pairs else None


def _coding(system: str, code: str, display: str) -> dict[str, str]:
    return {"system": system, "code": code, "display": display}


@lru_cache(maxsize=4096)  # the same for every event of a caller: made once, serialized each time
def _client_agent(server: Server, client_id: str | None, address: str | None) -> dict[str, Any]:
    agent: dict[str, Any] = {
        "type": {"coding": [_coding(DCM, "110153", "Source Role ID")]},
        "who": {
            "identifier": {"system": f"{server.base_url.rstrip('/')}/auth/clients", "value": client_id}
            if client_id
            else None,
            "display": "OAuth client" if client_id else "unidentified caller",
        },
        "requestor": True,
    }
    if agent["who"]["identifier"] is None:
        del agent["who"]["identifier"]
    if address:
        agent["network"] = {"address": address, "type": "2"}
    return agent


@lru_cache(maxsize=64)
def _server_agent(server: Server, what: str) -> dict[str, Any]:
    return {
        "type": {"coding": [_coding(DCM, "110152", "Destination Role ID")]},
        "who": {"identifier": {"system": "urn:ietf:rfc:3986", "value": what}, "display": "KAP FHIR Gateway"},
        "requestor": False,
    }


@lru_cache(maxsize=64)
def _source(server: Server) -> dict[str, Any]:
    return {
        "observer": {
            "identifier": {"system": "urn:ietf:rfc:3986", "value": server.base_url.rstrip("/")},
            "display": "KAP FHIR Gateway",
        },
        "type": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                "code": "4",
                "display": "Application Server",
            }
        ],
    }


def _patient_entity(patient_id: str) -> dict[str, Any]:
    return {
        "what": {"reference": f"Patient/{patient_id}"},
        "type": _coding(ENTITY_TYPE, "1", "Person"),
        "role": _coding(OBJECT_ROLE, "1", "Patient"),
    }


def rest_event(
    server: Server,
    *,
    event_id: str,
    now: datetime,
    interaction: str,
    resource_type: str | None,
    resource_id: str | None,
    patient_id: str | None,
    client_id: str | None,
    clinic_pk: int | None,
    status_code: int,
    query: str | None = None,
    address: str | None = None,
) -> AuditEntry:
    """A FHIR REST interaction: read, vread, history-instance, search-type, search-system, operation."""
    read = interaction in READ_INTERACTIONS
    entities: list[dict[str, Any]] = []
    if patient_id:
        entities.append(_patient_entity(patient_id))
    if read and resource_type and resource_id:
        entities.append(
            {
                "what": {"reference": f"{resource_type}/{resource_id}"},
                "type": _coding(ENTITY_TYPE, "2", "System Object"),
                "role": _coding(OBJECT_ROLE, "4", "Domain Resource"),
            }
        )
    kept = clean_query(query)
    if not read:
        entity: dict[str, Any] = {
            "type": _coding(ENTITY_TYPE, "2", "System Object"),
            "role": _coding(OBJECT_ROLE, "24", "Query"),
        }
        if resource_type:
            entity["description"] = resource_type
        if kept:
            entity["query"] = base64.b64encode(kept.encode()).decode()
        entities.append(entity)
    profile = (
        ("PatientRead" if patient_id else "Read") if read else ("PatientQuery" if patient_id else "Query")
    )
    outcome = outcome_of(status_code)
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": event_id,
        "meta": {"profile": [f"{BALP}/IHE.BasicAudit.{profile}"]},
        "type": _coding(AUDIT_EVENT_TYPE, "rest", "Restful Operation"),
        "subtype": [_coding(RESTFUL_INTERACTION, interaction, interaction)],
        "action": "R" if read else "E",
        "recorded": now.isoformat(),
        "outcome": outcome,
        "agent": [_client_agent(server, client_id, address), _server_agent(server, server.fhir_base)],
        "source": _source(server),
        "entity": entities,
    }
    if outcome != "0":
        resource["outcomeDesc"] = f"HTTP {status_code}"
    return AuditEntry(
        event_id=event_id,
        recorded=now,
        action="read" if read else "search" if interaction.startswith("search") else interaction,
        outcome=outcome,
        client_id=client_id,
        clinic_pk=clinic_pk,
        patient_id=patient_id,
        resource_type=resource_type,
        content=orjson.dumps(resource),
    )


def _authentication(
    server: Server,
    *,
    event_id: str,
    now: datetime,
    action: str,
    client_id: str | None,
    success: bool,
    description: str,
    address: str | None,
    endpoint: str,
    details: Mapping[str, str],
    patient_id: str | None = None,
) -> AuditEntry:
    entities: list[dict[str, Any]] = []
    if patient_id:
        entities.append(_patient_entity(patient_id))
    entities.append(
        {
            "type": _coding(ENTITY_TYPE, "2", "System Object"),
            "role": _coding(OBJECT_ROLE, "13", "Security Resource"),
            "description": description,
            "detail": [{"type": name, "valueString": value} for name, value in details.items() if value],
        }
    )
    outcome = "0" if success else "4"
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": event_id,
        "type": _coding(DCM, "110114", "User Authentication"),
        "subtype": [_coding(DCM, "110122", "Login")],
        "action": "E",
        "recorded": now.isoformat(),
        "outcome": outcome,
        "agent": [_client_agent(server, client_id, address), _server_agent(server, endpoint)],
        "source": _source(server),
        "entity": entities,
    }
    if not success:
        resource["outcomeDesc"] = description
    return AuditEntry(
        event_id=event_id,
        recorded=now,
        action=action,
        outcome=outcome,
        client_id=client_id,
        clinic_pk=None,
        patient_id=patient_id,
        resource_type=None,
        content=orjson.dumps(resource),
    )


def token_event(
    server: Server,
    *,
    event_id: str,
    now: datetime,
    client_id: str | None,
    grant_type: str | None,
    scope: str | None,
    error: str | None,
    address: str | None,
    patient_id: str | None = None,
) -> AuditEntry:
    """A token issued (``error`` None) or refused at /auth/token. ``client_id`` is the authenticated client,
    or on a refusal the id the request claimed (unverified)."""
    description = "access token issued" if error is None else f"token request refused: {error}"
    return _authentication(
        server,
        event_id=event_id,
        now=now,
        action=TOKEN if error is None else AUTHENTICATION_FAILURE if _is_auth_error(error) else TOKEN,
        client_id=client_id,
        success=error is None,
        description=description,
        address=address,
        endpoint=f"{server.base_url.rstrip('/')}/auth/token",
        details={"grant_type": grant_type or "", "scope": scope or "", "error": error or ""},
        patient_id=patient_id,
    )


def bearer_refused(
    server: Server, *, event_id: str, now: datetime, path: str, description: str, address: str | None
) -> AuditEntry:
    """A bearer token refused at a protected API (missing, invalid, expired or revoked)."""
    return _authentication(
        server,
        event_id=event_id,
        now=now,
        action=AUTHENTICATION_FAILURE,
        client_id=None,
        success=False,
        description=description,
        address=address,
        endpoint=f"{server.base_url.rstrip('/')}{path}",
        details={"path": path},
    )


def _is_auth_error(error: str) -> bool:
    return error in {"invalid_client", "invalid_grant", "slow_down"}
