"""What an EHR can do, from its CapabilityStatement (``/metadata``, hl7.org/fhir/R4/capabilitystatement.html)
and SMART discovery (``.well-known/smart-configuration``, hl7.org/fhir/smart-app-launch/conformance.html).

The delivery mode follows from it: ``transaction`` Bundles with ``ifNoneExist`` when the server declares
the ``transaction`` interaction and conditional create; ``conditional`` creates (``If-None-Exist``) when it
declares only conditional create; else ``search`` (search by identifier, then create, under a lease).
"""

from __future__ import annotations

from typing import Any

import httpx

from gateway.sync.errors import EhrStatusError, EhrTransportError

OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
MODES = ("transaction", "conditional", "search")


def _get(http: httpx.Client, url: str, *, optional: bool) -> Any:
    try:
        response = http.get(url, headers={"accept": "application/fhir+json, application/json"})
    except httpx.TransportError as error:
        raise EhrTransportError(f"GET {url}: {type(error).__name__}") from None
    if response.status_code >= 400:
        if optional and response.status_code in (404, 405, 501):
            return None
        raise EhrStatusError(response.status_code, f"GET {url}")
    try:
        return response.json()
    except ValueError:
        if optional:
            return None
        raise EhrStatusError(response.status_code, f"GET {url} is not JSON") from None


def summarize(metadata: Any, smart: Any) -> dict[str, Any]:
    """The capabilities the sync engine uses, from the two discovery documents (pure)."""
    rest = next(
        (r for r in (metadata or {}).get("rest") or [] if isinstance(r, dict) and r.get("mode") == "server"),
        {},
    )
    interactions = {i.get("code") for i in rest.get("interaction") or [] if isinstance(i, dict)}
    resources = [r for r in rest.get("resource") or [] if isinstance(r, dict)]
    conditional = sorted(r["type"] for r in resources if r.get("conditionalCreate") and r.get("type"))
    token_url = (smart or {}).get("token_endpoint") if isinstance(smart, dict) else None
    if not token_url:
        for extension in (rest.get("security") or {}).get("extension") or []:
            if isinstance(extension, dict) and extension.get("url") == OAUTH_URIS:
                for part in extension.get("extension") or []:
                    if part.get("url") == "token":
                        token_url = part.get("valueUri")
    transaction = "transaction" in interactions
    mode = "transaction" if transaction and conditional else "conditional" if conditional else "search"
    return {
        "fhir_version": (metadata or {}).get("fhirVersion"),
        "token_url": token_url,
        "transaction": transaction,
        "conditional_create": conditional,
        "mode": mode,
        "smart_capabilities": sorted((smart or {}).get("capabilities") or [])
        if isinstance(smart, dict)
        else [],
    }


def probe(fhir_base: str, *, timeout: float, transport: httpx.BaseTransport | None = None) -> dict[str, Any]:
    base = fhir_base.rstrip("/")
    with httpx.Client(timeout=httpx.Timeout(timeout), transport=transport) as http:
        metadata = _get(http, f"{base}/metadata", optional=False)
        smart = _get(http, f"{base}/.well-known/smart-configuration", optional=True)
    if not isinstance(metadata, dict) or metadata.get("resourceType") != "CapabilityStatement":
        raise EhrStatusError(200, f"GET {base}/metadata is not a CapabilityStatement")
    return summarize(metadata, smart)
