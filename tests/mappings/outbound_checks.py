"""Helpers shared by the outbound mapping tests (patients, practitioners, sessions, doses, adverse events,
provenance): load a golden input case, and check a mapped resource with fhir.resources, the official R4
JSON schema and US Core profiles (tests/support/fhir_validator.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st
from support.fhir_validator import US_CORE, ProfileValidator, errors_only, json_schema_errors

from mappings.context import MappingContext
from mappings.records import RECORD_KINDS, RecordModel
from tests.mappings.conftest import load_clinic_fixture, make_context

#: US Core 6.1 profile each resource declares -> the US Core 5.0.1 profile it is validated against (same
#: canonical URL; 5.0.1 is what is available offline)
US_CORE_PATIENT = US_CORE + "us-core-patient"

#: Mandatory (1..) elements of the US Core 6.1 profiles whose 5.0.1 StructureDefinitions the offline
#: validator does not ship: checked by hand so a missing one still fails
#: (https://hl7.org/fhir/us/core/STU6.1/StructureDefinition-<name>.html, "Key Elements" tables).
US_CORE_MANDATORY: dict[str, tuple[str, ...]] = {
    US_CORE + "us-core-practitioner": (
        "identifier",
        "identifier.system",
        "identifier.value",
        "name",
        "name.family",
    ),
    US_CORE + "us-core-organization": ("active", "name"),
    US_CORE + "us-core-encounter": (
        "identifier.system",
        "identifier.value",
        "status",
        "class",
        "type",
        "subject",
    ),
    US_CORE + "us-core-procedure": ("status", "code", "subject", "performedPeriod"),
    US_CORE + "us-core-provenance": (
        "target",
        "target.reference",
        "recorded",
        "agent",
        "agent.type",
        "agent.who",
    ),
}


@dataclass(frozen=True)
class Case:
    kind: str
    external_id: str
    record: Any
    ctx: MappingContext


def load_case(name: str) -> Case:
    """fixtures/clinic/<name>.json -> the validated record and a context holding its related records."""
    data = load_clinic_fixture(name)
    related: dict[tuple[str, str], RecordModel] = {
        (item["kind"], item["id"]): RECORD_KINDS[item["kind"]].model_validate(item["record"])
        for item in data.get("related", [])
    }
    model = RECORD_KINDS.get(data["kind"])
    record = model.model_validate(data["record"]) if model is not None else data["record"]
    return Case(data["kind"], data["id"], record, make_context(related))


def as_json(resource: Any) -> dict[str, Any]:
    return json.loads(resource.model_dump_json(exclude_none=True))


def assert_valid(resource: Any) -> dict[str, Any]:
    """fhir.resources re-validates the model and the official R4 JSON schema accepts its JSON."""
    type(resource).model_validate(resource.model_dump())
    data = as_json(resource)
    assert json_schema_errors(data) == []
    return data


def _present(node: Any, path: list[str]) -> bool:
    if isinstance(node, list):
        return bool(node) and all(_present(item, path) for item in node)
    if not path:
        return node not in (None, "", [], {})
    return isinstance(node, dict) and path[0] in node and _present(node[path[0]], path[1:])


def missing_mandatory(resource: dict[str, Any], profile: str) -> list[str]:
    return [path for path in US_CORE_MANDATORY.get(profile, ()) if not _present(resource, path.split("."))]


def profile_errors(validator: ProfileValidator, resource: dict[str, Any]) -> list[str]:
    """Errors of ``resource`` against base R4 and each profile it declares.

    A declared profile the node validator has loaded (US Core 5.0.1 us-core-patient) is validated by
    @medplum/core; one it has not (Practitioner, Organization, Encounter, Procedure, Provenance) is checked
    for its mandatory elements instead, on top of the full base R4 validation.
    """
    declared = resource.get("meta", {}).get("profile", [])
    loaded = [p for p in declared if p in validator.profiles]
    errors = [str(issue) for issue in errors_only(validator.validate_one(resource, loaded))]
    for profile in declared:
        if profile not in loaded:
            errors += [f"{profile}: {path} missing" for path in missing_mandatory(resource, profile)]
    return errors


# --------------------------------------------------------------------------- hypothesis building blocks

OFFSETS = st.sampled_from([UTC, timezone(timedelta(hours=-7)), timezone(timedelta(hours=5, minutes=30))])
AWARE = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2099, 12, 31),
).flatmap(lambda dt: OFFSETS.map(lambda tz: dt.replace(tzinfo=tz)))
#: a clinic id (never only dots: mappings/records.py)
EXTERNAL_ID = st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True).filter(lambda s: s.strip(".") != "")
#: names and free text: letters plus every kind of Unicode space (incl. U+00A0, U+3000) and U+FEFF, which a
#: record accepts but a FHIR string may not hold (mappings/fhir_text.py)
NAME = st.text(
    alphabet=st.characters(categories=["L", "Zs"], max_codepoint=0x3000, include_characters="\ufeff"),
    min_size=1,
    max_size=40,
).filter(lambda s: s.strip() != "")
SHORT_TEXT = st.text(
    alphabet=st.characters(
        # of the control characters a record accepts only tab, line feed and carriage return
        categories=["L", "N", "P", "Zs"],
        max_codepoint=0x3000,
        include_characters="\ufeff\t\n\r",
    ),
    min_size=1,
    max_size=60,
).filter(lambda s: s.strip() != "")
