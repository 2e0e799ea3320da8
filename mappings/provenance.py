"""Provenance of one clinic write -> US Core Provenance.

Profile: http://hl7.org/fhir/us/core/StructureDefinition/us-core-provenance (US Core 6.1.0,
https://hl7.org/fhir/us/core/STU6.1/StructureDefinition-us-core-provenance.html): target 1..*, recorded 1..1,
agent 1..* with the ProvenanceAuthor (provenance-participant-type#author) and ProvenanceTransmitter
(us-core-provenance-participant-type#transmitter) slices. Both agents are the clinic's Organization: the
clinic authored the record and transmitted it to the gateway. ``onBehalfOf`` is not used (it is only needed
when ``who`` is a Practitioner or Device). Provenance has no identifier.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from mappings.codes.hl7 import DATA_OPERATIONS, PROVENANCE_AUTHOR, PROVENANCE_TRANSMITTER
from mappings.context import MappingContext
from mappings.fhir import FHIRResourceModel, Provenance, validated

PART = "provenance"
PROFILE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-provenance"

Activity = Literal["CREATE", "UPDATE", "DELETE"]


def to_fhir_provenance(
    targets: Sequence[FHIRResourceModel | str],
    *,
    kind: str,
    external_id: str,
    ctx: MappingContext,
    activity: Activity,
) -> Provenance:
    """The Provenance (id part "provenance" of the written record) of a write of ``targets``.

    ``recorded`` is ``ctx.recorded`` (the time of the write, passed in by the gateway); targets are
    unversioned ``Type/id`` references in the order given.
    """
    if not targets:
        raise ValueError("a Provenance needs at least one target")
    organization = ctx.organization_reference()
    resource: dict[str, Any] = {
        "resourceType": "Provenance",
        "id": ctx.id_of(kind, external_id, PART),
        "meta": {"profile": [PROFILE]},
        "target": [_reference(target) for target in targets],
        "recorded": ctx.recorded,
        "activity": {"coding": [DATA_OPERATIONS[activity]]},
        "agent": [
            {"type": {"coding": [PROVENANCE_AUTHOR]}, "who": organization},
            {"type": {"coding": [PROVENANCE_TRANSMITTER]}, "who": organization},
        ],
    }
    return validated(Provenance, resource)


def _reference(target: FHIRResourceModel | str) -> dict[str, str]:
    if isinstance(target, str):  # already "Type/id"
        return {"reference": target}
    resource_id = getattr(target, "id", None)
    if not resource_id:
        raise ValueError(f"Provenance target {target.get_resource_type()} has no id")
    return {"reference": f"{target.get_resource_type()}/{resource_id}"}
