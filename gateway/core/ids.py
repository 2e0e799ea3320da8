"""Deterministic identities (DESIGN §5): re-mapping a record always yields the same FHIR id."""

from __future__ import annotations

import uuid

#: namespace of all gateway resource ids (uuid5 of a fixed URL, never change it)
ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://kap-gateway.org/fhir/ids")


def resource_id(clinic_slug: str, kind: str, external_id: str, part: str = "") -> str:
    """uuid5 of clinic, record kind, external id and (for records that map to several resources) a part."""
    name = f"{clinic_slug}/{kind}/{external_id}" + (f"#{part}" if part else "")
    return str(uuid.uuid5(ID_NAMESPACE, name))


def identifier_system(identifier_base: str, clinic_slug: str, kind: str) -> str:
    return f"{identifier_base.rstrip('/')}/{clinic_slug}/{kind}"


def new_request_id() -> str:
    return uuid.uuid4().hex
