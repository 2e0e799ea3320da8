"""The JSON the store keeps for a mapped resource is exactly what fhir.resources serializes.

``mappings.fhir.validated`` keeps each mapping's validated input as the resource's JSON, skipping
fhir.resources' (slow) serializer. This checks that shortcut over every resource of a demo clinic and
the golden fixtures: byte-for-byte as canonical JSON (sorted keys), so no number or date formatting can
drift.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import partial

import orjson
import pytest

from fixtures.demo import generate_clinic
from gateway.core.ids import resource_id
from mappings.context import MappingContext
from mappings.fhir import Patient, resource_json, validated
from mappings.instruments import INSTRUMENTS
from mappings.outbound import map_record, related_keys
from mappings.questionnaire import to_fhir_questionnaire
from mappings.records import RECORD_KINDS


def canonical(data: dict) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)


def serialized(model) -> dict:
    return json.loads(model.model_dump_json())


def demo_resources() -> list:
    entries = generate_clinic(patients=6, seed=3).entries
    parsed = [
        (kind, external_id, RECORD_KINDS[kind].model_validate(record))
        for kind, external_id, record in entries
    ]
    by_key = {(kind, external_id): model for kind, external_id, model in parsed}
    resources = []
    for kind, external_id, model in parsed:
        ctx = MappingContext(
            clinic_slug="json",
            clinic_name="JSON Clinic",
            identifier_base="https://json.test/id",
            resource_id=partial(resource_id, "json"),
            recorded=datetime(2026, 11, 26, 8, tzinfo=UTC),
            related={key: by_key[key] for key in related_keys(kind, model)},
        )
        resources.extend(map_record(kind, external_id, model, ctx))
    return resources


def test_kept_json_equals_fhir_resources_serialization_for_a_demo_clinic() -> None:
    resources = demo_resources() + [to_fhir_questionnaire(i) for i in INSTRUMENTS.values()]
    assert len(resources) > 400
    mismatched = [
        f"{r.get_resource_type()}/{r.id}"
        for r in resources
        if canonical(resource_json(r)) != canonical(serialized(r))
    ]
    assert mismatched == []


def test_resource_json_falls_back_to_serializing() -> None:
    patient = Patient.model_validate({"resourceType": "Patient", "id": "p1", "gender": "female"})
    assert resource_json(patient) == {"resourceType": "Patient", "id": "p1", "gender": "female"}


@pytest.mark.parametrize("birth", [pytest.param("1984-03-12", id="date-string")])
def test_validated_rejects_invalid_input(birth: str) -> None:
    with pytest.raises(ValueError):
        validated(
            Patient,
            {
                "resourceType": "Patient",
                "id": "p1",
                "gender": "female",
                "birthDate": birth,
                "active": "maybe",
            },
        )
