"""The clinic itself -> US Core Organization (serviceProvider, managingOrganization, Provenance agent).

Profile: http://hl7.org/fhir/us/core/StructureDefinition/us-core-organization (US Core 6.1.0,
https://hl7.org/fhir/us/core/STU6.1/StructureDefinition-us-core-organization.html): active 1..1, name 1..1.
"""

from __future__ import annotations

from mappings.context import MappingContext
from mappings.fhir import Organization, validated

KIND = "clinic"
PROFILE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-organization"


def to_fhir_organization(ctx: MappingContext) -> Organization:
    """The clinic's Organization; its id is ``ctx.organization_id()`` (kind "clinic", the clinic slug)."""
    return validated(
        Organization,
        {
            "resourceType": "Organization",
            "id": ctx.organization_id(),
            "meta": {"profile": [PROFILE]},
            "identifier": [ctx.identifier(KIND, ctx.clinic_slug)],
            "active": True,
            "name": ctx.clinic_name,
        },
    )
