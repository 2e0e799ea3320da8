"""How one of our resources looks at the EHR (pure functions, no I/O).

* Identity: each resource carries ``identifier = urn:ietf:rfc:3986|urn:uuid:<our id>`` (our ids are uuid5,
  so the identifier is globally unique), which conditional creates and searches match on; types whose
  ``identifier`` is not a list (Provenance has none, QuestionnaireResponse and AdverseEvent one) carry the
  same value as a ``meta.tag`` and are matched with ``_tag``.
* References: ``Type/<our id>`` becomes ``Type/<EHR id>`` (or the ``urn:uuid:`` fullUrl of an entry of the
  same transaction); a reference to something the connection does not receive keeps only its display and
  the target's first identifier (a logical reference, hl7.org/fhir/R4/references.html#logical).
* ``id`` and the version stamps are ours and are left out (the EHR assigns its own).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from typing import Any

SYNC_SYSTEM = "urn:ietf:rfc:3986"
#: types whose ``identifier`` is 0..1 or absent in R4: matched on a meta.tag instead
TAG_IDENTITY_TYPES = frozenset({"Provenance", "QuestionnaireResponse", "AdverseEvent"})
#: delivery order inside one patient: Patient, then Encounter, then the rest
TYPE_ORDER = {"Organization": 0, "Practitioner": 1, "Patient": 2, "Encounter": 3}
LAST = {"Provenance": 9}

_REFERENCE = re.compile(r"^([A-Z][A-Za-z]{1,63})/([A-Za-z0-9\-.]{1,64})$")

Resolve = Callable[[str, str], str | None]


def order_key(resource_type: str) -> int:
    return TYPE_ORDER.get(resource_type, LAST.get(resource_type, 5))


def sync_value(resource_id: str) -> str:
    return f"urn:uuid:{resource_id}"


def identity_query(resource_type: str, resource_id: str) -> str:
    """The search (``If-None-Exist``, ``ifNoneExist``, search-then-create) that finds our resource."""
    param = "_tag" if resource_type in TAG_IDENTITY_TYPES else "identifier"
    return f"{param}={SYNC_SYSTEM}|{sync_value(resource_id)}"


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node
        for key, value in node.items():
            if key != "contained":
                yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def references(resource: dict[str, Any]) -> set[tuple[str, str]]:
    """The (type, id) of every literal relative reference in the resource (contained ones excluded)."""
    out = set()
    for node in _walk(resource):
        match = _REFERENCE.match(node["reference"])
        if match:
            out.add((match.group(1), match.group(2)))
    return out


def for_ehr(
    resource: dict[str, Any],
    *,
    resolve: Resolve,
    logical: Callable[[str, str], dict[str, Any] | None],
    ehr_id: str | None,
) -> dict[str, Any] | None:
    """The resource as sent: references resolved, our identity added, id = the EHR's (updates) or none.

    ``resolve(type, id)`` gives the reference to write, or None when the EHR does not receive the target;
    ``logical(type, id)`` then gives the target's identifier (or None). A Provenance none of whose targets
    the EHR receives is not sent at all (None)."""
    out = copy.deepcopy(resource)
    for node in list(_walk(out)):
        match = _REFERENCE.match(node["reference"])
        if not match:
            continue
        replacement = resolve(match.group(1), match.group(2))
        if replacement is not None:
            node["reference"] = replacement
            continue
        del node["reference"]
        identifier = logical(match.group(1), match.group(2))
        if identifier is not None:
            node["identifier"] = identifier
        node.setdefault("display", f"{match.group(1)} not shared with this EHR")
    if out["resourceType"] == "Provenance":
        out["target"] = [t for t in out.get("target", []) if "reference" in t]
        if not out["target"]:
            return None
    resource_id = out.pop("id")
    meta = {k: v for k, v in (out.pop("meta", None) or {}).items() if k not in ("versionId", "lastUpdated")}
    tag = {"system": SYNC_SYSTEM, "code": sync_value(resource_id)}
    if out["resourceType"] in TAG_IDENTITY_TYPES:
        meta["tag"] = [*(t for t in meta.get("tag", []) if t.get("system") != SYNC_SYSTEM), tag]
    else:
        identifiers = [i for i in out.get("identifier", []) if i.get("system") != SYNC_SYSTEM]
        out["identifier"] = [*identifiers, {"system": SYNC_SYSTEM, "value": sync_value(resource_id)}]
    if meta:
        out["meta"] = meta
    shaped = {"resourceType": out.pop("resourceType")}
    if ehr_id is not None:
        shaped["id"] = ehr_id
    shaped.update(out)
    return shaped


def first_identifier(resource: dict[str, Any]) -> dict[str, Any] | None:
    identifier = resource.get("identifier")
    if isinstance(identifier, list) and identifier:
        return {k: v for k, v in identifier[0].items() if k in ("system", "value")}
    if isinstance(identifier, dict):
        return {k: v for k, v in identifier.items() if k in ("system", "value")}
    return None
