"""Shared fixtures for mapping tests: a fixed context and golden-file comparison."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from gateway.core.ids import resource_id
from mappings.context import MappingContext

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
RECORDED = datetime(2026, 11, 2, 18, 0, tzinfo=UTC)


def make_context(related: dict | None = None) -> MappingContext:
    return MappingContext(
        clinic_slug="golden",
        clinic_name="Golden Test Clinic",
        identifier_base="https://gateway.test/id",
        resource_id=partial(resource_id, "golden"),
        recorded=RECORDED,
        related=related or {},
    )


@pytest.fixture
def ctx() -> MappingContext:
    return make_context()


def assert_golden(name: str, resources: list[Any]) -> None:
    """Compares ``resources`` (fhir.resources models or dicts) with fixtures/fhir/<name>.json as parsed JSON.

    Set KAPGW_UPDATE_GOLDEN=1 to (re)write the golden file; review the diff before committing it.
    """
    actual = [
        r if isinstance(r, dict) else json.loads(r.model_dump_json(exclude_none=True)) for r in resources
    ]
    path = FIXTURES / "fhir" / f"{name}.json"
    if os.environ.get("KAPGW_UPDATE_GOLDEN") == "1" or not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"golden file {path.name} is missing")
        path.write_text(json.dumps(actual, indent=2, sort_keys=True) + "\n")
    assert actual == json.loads(path.read_text())


def load_clinic_fixture(name: str) -> Any:
    return json.loads((FIXTURES / "clinic" / f"{name}.json").read_text())
