"""Provenance of a write: golden pair, activity table, properties, US Core Provenance."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mappings.encounter import to_fhir_session
from mappings.organization import to_fhir_organization
from mappings.patient import to_fhir_patient
from mappings.provenance import to_fhir_provenance
from tests.mappings.conftest import RECORDED, assert_golden, make_context
from tests.mappings.outbound_checks import EXTERNAL_ID, as_json, assert_valid, load_case, profile_errors

DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"


def map_case(activity: str = "CREATE") -> list:
    case = load_case("provenance")
    targets = to_fhir_session(case.record, external_id=case.external_id, ctx=case.ctx)
    return [
        to_fhir_provenance(
            targets, kind=case.kind, external_id=case.external_id, ctx=case.ctx, activity=activity
        )
    ]


def test_golden() -> None:
    assert_golden("provenance", map_case())


def test_golden_passes_schema_and_profiles(profile_validator) -> None:
    [resource] = map_case()
    assert profile_errors(profile_validator, assert_valid(resource)) == []


def test_targets_are_the_written_resources() -> None:
    case = load_case("provenance")
    targets = to_fhir_session(case.record, external_id=case.external_id, ctx=case.ctx)
    provenance = as_json(map_case()[0])
    assert provenance["target"] == [{"reference": f"{t.get_resource_type()}/{t.id}"} for t in targets]
    assert provenance["id"] == case.ctx.id_of("sessions", case.external_id, "provenance")
    assert provenance["recorded"] == RECORDED.isoformat().replace("+00:00", "Z")
    assert "identifier" not in provenance


@pytest.mark.parametrize(
    ("activity", "display"),
    [
        pytest.param("CREATE", "create", id="create"),
        pytest.param("UPDATE", "revise", id="update"),
        pytest.param("DELETE", "delete", id="delete"),
    ],
)
def test_activity(activity: str, display: str) -> None:
    [coding] = as_json(map_case(activity)[0])["activity"]["coding"]
    assert coding == {"system": DATA_OPERATION, "code": activity, "display": display}


def test_agents_are_the_clinic_as_author_and_transmitter() -> None:
    ctx = make_context()
    agents = as_json(map_case()[0])["agent"]
    assert [a["type"]["coding"][0]["code"] for a in agents] == ["author", "transmitter"]
    assert [a["who"] for a in agents] == [ctx.organization_reference()] * 2
    assert all("onBehalfOf" not in a for a in agents)


def test_needs_a_target() -> None:
    with pytest.raises(ValueError, match="at least one target"):
        to_fhir_provenance([], kind="patients", external_id="p", ctx=make_context(), activity="CREATE")


@settings(max_examples=25, deadline=None)
@given(
    external_id=EXTERNAL_ID,
    activity=st.sampled_from(["CREATE", "UPDATE", "DELETE"]),
    with_organization=st.booleans(),
)
def test_any_provenance_is_valid(external_id: str, activity: str, with_organization: bool) -> None:
    ctx = make_context()
    patient = to_fhir_patient(load_case("patient-minimal").record, external_id=external_id, ctx=ctx)
    targets = [patient, *([to_fhir_organization(ctx)] if with_organization else [])]
    data = assert_valid(
        to_fhir_provenance(targets, kind="patients", external_id=external_id, ctx=ctx, activity=activity)
    )
    assert len(data["target"]) == len(targets)
