"""The CapabilityStatement at ``/fhir/metadata`` (http://hl7.org/fhir/R4/capabilitystatement.html).

It lists what the server really answers: every resource type, its interactions, the search parameters of
``gateway.store.search_params`` (the ones the index holds), includes, revincludes, operations, the
local code systems and extension, and the SMART security extension whose ``oauth-uris`` come from the
authorization server's discovery document (``gateway.auth.discovery``), so the two never disagree.
Other parts of the gateway add their operations with :func:`register_operation` (bulk ``$export``).
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.core.config import Settings
from gateway.fhir_api import definitions
from gateway.fhir_api.service import STORED_TYPES
from gateway.store.search_params import SEARCH_PARAMS
from gateway.store.search_query import sort_keys

US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
US_CORE_SERVER = "http://hl7.org/fhir/us/core/CapabilityStatement/us-core-server"
OAUTH_URIS_EXTENSION = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
SECURITY_SERVICE = "http://terminology.hl7.org/CodeSystem/restful-security-service"

PROFILES: dict[str, tuple[str, ...]] = {
    "Patient": ("us-core-patient",),
    "Practitioner": ("us-core-practitioner",),
    "Organization": ("us-core-organization",),
    "Encounter": ("us-core-encounter",),
    "Procedure": ("us-core-procedure",),
    "Observation": (
        "us-core-blood-pressure",
        "us-core-heart-rate",
        "us-core-respiratory-rate",
        "us-core-pulse-oximetry",
        "us-core-body-temperature",
        "us-core-body-weight",
        "us-core-observation-screening-assessment",
    ),
    "QuestionnaireResponse": ("us-core-questionnaireresponse",),
    "Provenance": ("us-core-provenance",),
    "Condition": ("us-core-condition-problems-health-concerns", "us-core-condition-encounter-diagnosis"),
    "MedicationRequest": ("us-core-medicationrequest",),
    "AllergyIntolerance": ("us-core-allergyintolerance",),
}

COMMON_PARAMS = (
    ("_id", "token", "http://hl7.org/fhir/SearchParameter/Resource-id"),
    ("_lastUpdated", "date", "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated"),
)

#: resource type (None: system level) -> [(name, definition)], filled by register_operation
_OPERATIONS: dict[str | None, list[tuple[str, str]]] = {
    "Patient": [("everything", "http://hl7.org/fhir/OperationDefinition/Patient-everything")],
}


#: resource entries and ``instantiates`` canonicals other parts add (bulk export: Group, bulk-data)
_EXTRA_RESOURCES: dict[str, dict[str, Any]] = {}
_INSTANTIATES: list[str] = []


def register_resource(entry: dict[str, Any], *, instantiates: str | None = None) -> None:
    """Declare a resource served outside the store (``Group`` of bulk export) and, optionally, a
    CapabilityStatement the server instantiates."""
    _EXTRA_RESOURCES[entry["type"]] = entry
    if instantiates is not None and instantiates not in _INSTANTIATES:
        _INSTANTIATES.append(instantiates)


def register_operation(resource_type: str | None, name: str, definition: str) -> None:
    """Declare an operation (``$export`` ...) in the CapabilityStatement; system level when type is None."""
    entries = _OPERATIONS.setdefault(resource_type, [])
    if (name, definition) not in entries:
        entries.append((name, definition))


def _oauth_uris(settings: Settings) -> dict[str, str]:
    try:
        from gateway.auth.discovery import oauth_uris
    except ImportError:  # the authorization server's discovery is not part of this build
        return {}
    return oauth_uris(settings)


def _security(settings: Settings) -> dict[str, Any]:
    security: dict[str, Any] = {
        "cors": True,
        "service": [
            {"coding": [{"system": SECURITY_SERVICE, "code": "SMART-on-FHIR", "display": "SMART-on-FHIR"}]}
        ],
        "description": "OAuth 2.0 bearer tokens from this gateway's authorization server (SMART App Launch "
        "and Backend Services); see .well-known/smart-configuration.",
    }
    uris = _oauth_uris(settings)
    if uris:
        security["extension"] = [
            {
                "url": OAUTH_URIS_EXTENSION,
                "extension": [{"url": name, "valueUri": uri} for name, uri in uris.items()],
            }
        ]
    return security


def _reference_params(resource_type: str) -> list[str]:
    return [p for p, spec in SEARCH_PARAMS[resource_type].items() if spec.type == "reference"]


def _stored_resource(resource_type: str) -> dict[str, Any]:
    params = [
        {"name": name, "type": type_, "definition": definition} for name, type_, definition in COMMON_PARAMS
    ] + [{"name": name, "type": spec.type} for name, spec in sorted(SEARCH_PARAMS[resource_type].items())]
    revincludes = ["Provenance:target"] if resource_type != "Provenance" else []
    resource: dict[str, Any] = {
        "type": resource_type,
        "interaction": [
            {"code": code} for code in ("read", "vread", "history-instance", "history-type", "search-type")
        ],
        "versioning": "versioned",
        "readHistory": True,
        "updateCreate": False,
        "conditionalCreate": False,
        "conditionalRead": "not-supported",
        "conditionalUpdate": False,
        "conditionalDelete": "not-supported",
        "searchInclude": ["*", *(f"{resource_type}:{p}" for p in _reference_params(resource_type))],
        "searchRevInclude": revincludes,
        "searchParam": params,
    }
    if resource_type in PROFILES:
        resource["supportedProfile"] = [US_CORE + name for name in PROFILES[resource_type]]
    operations = _OPERATIONS.get(resource_type)
    if operations:
        resource["operation"] = [{"name": n, "definition": d} for n, d in operations]
    sorts = ", ".join(sort_keys(resource_type))
    resource["documentation"] = f"_sort: {sorts} (one key, '-' for descending); _count up to 1000"
    return resource


def _definition_resource(resource_type: str) -> dict[str, Any]:
    return {
        "type": resource_type,
        "interaction": [{"code": code} for code in ("read", "vread", "history-instance", "search-type")],
        "versioning": "versioned",
        "readHistory": True,
        "searchParam": [
            {
                "name": name,
                "type": "token" if name in ("_id", "status") else "uri" if name == "url" else "string",
            }
            for name in definitions.DEFINITION_SEARCH_PARAMS
        ],
        "documentation": "The gateway's own definitions, read-only: "
        + ", ".join(d.url for (t, _), d in definitions.definitions().items() if t == resource_type),
    }


def capability_statement(settings: Settings) -> bytes:
    """The statement for this deployment (the route keeps the bytes per app)."""
    base_url = settings.fhir_base_url
    resources = [
        _definition_resource(t) if t in definitions.DEFINITION_TYPES else _stored_resource(t)
        for t in sorted({*STORED_TYPES, *definitions.DEFINITION_TYPES})
    ]
    for extra in _EXTRA_RESOURCES.values():
        operations = _OPERATIONS.get(extra["type"])
        entry = {
            **extra,
            **({"operation": [{"name": n, "definition": d} for n, d in operations]} if operations else {}),
        }
        resources.append(entry)
    resources.sort(key=lambda r: r["type"])
    rest: dict[str, Any] = {
        "mode": "server",
        "documentation": "Read-only FHIR R4 API over the clinics' records. Paging: opaque keyset cursors in "
        "Bundle.link[next]; pages are stable while data is written.",
        "security": _security(settings),
        "resource": resources,
        "searchParam": [
            {"name": name, "type": type_, "definition": definition}
            for name, type_, definition in COMMON_PARAMS
        ],
    }
    system_operations = _OPERATIONS.get(None)
    if system_operations:
        rest["operation"] = [{"name": n, "definition": d} for n, d in system_operations]
    statement = {
        "resourceType": "CapabilityStatement",
        "id": "kap-gateway",
        "url": f"{base_url}/metadata",
        "version": "0.1.0",
        "name": "KapFhirGateway",
        "title": "KAP FHIR Gateway",
        "status": "active",
        "experimental": False,
        "date": definitions.PUBLISHED.date().isoformat(),
        "publisher": definitions.PUBLISHER,
        "description": "FHIR R4 server of the KAP FHIR Gateway. Local code systems: "
        + ", ".join(d.url for (t, _), d in definitions.definitions().items() if t == "CodeSystem")
        + "; extension: "
        + ", ".join(d.url for (t, _), d in definitions.definitions().items() if t == "StructureDefinition"),
        "kind": "instance",
        "instantiates": [US_CORE_SERVER, *_INSTANTIATES],
        "software": {"name": "kap-fhir-gateway", "version": "0.1.0"},
        "implementation": {"description": "KAP FHIR Gateway", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [rest],
    }
    return orjson.dumps(statement)
