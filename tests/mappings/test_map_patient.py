"""Patient, Practitioner and Organization mappings: golden pairs, tables, properties, US Core profiles."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mappings.codes.hl7 import MEDICAL_RECORD_NUMBER, NPI_SYSTEM
from mappings.organization import to_fhir_organization
from mappings.patient import PHONE_USE, to_fhir_patient
from mappings.practitioner import family_name, to_fhir_practitioner
from mappings.records import PatientRecord, PractitionerRecord, npi_is_valid
from tests.mappings.conftest import assert_golden, make_context
from tests.mappings.outbound_checks import (
    EXTERNAL_ID,
    NAME,
    SHORT_TEXT,
    as_json,
    assert_valid,
    load_case,
    profile_errors,
)

GOLDEN = ["patient-full", "patient-minimal", "practitioner", "organization"]


def map_case(name: str) -> list:
    case = load_case(name)
    if case.kind == "patients":
        return [to_fhir_patient(case.record, external_id=case.external_id, ctx=case.ctx)]
    if case.kind == "practitioners":
        return [to_fhir_practitioner(case.record, external_id=case.external_id, ctx=case.ctx)]
    assert case.kind == "clinic"
    assert (case.external_id, case.record["name"]) == (case.ctx.clinic_slug, case.ctx.clinic_name)
    return [to_fhir_organization(case.ctx)]


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in GOLDEN])
def test_golden(name: str) -> None:
    assert_golden(name, map_case(name))


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in GOLDEN])
def test_golden_passes_schema_and_profiles(name: str, profile_validator) -> None:
    for resource in map_case(name):
        data = assert_valid(resource)
        assert profile_errors(profile_validator, data) == []


def test_patient_identifiers_gateway_first_then_typed_mrns(ctx) -> None:
    record = load_case("patient-full").record
    patient = as_json(to_fhir_patient(record, external_id="pt-0001", ctx=ctx))
    gateway, *mrns = patient["identifier"]
    assert gateway == {"system": "https://gateway.test/id/golden/patients", "value": "pt-0001"}
    assert [(i["system"], i["value"]) for i in mrns] == [(i.system, i.value) for i in record.identifiers]
    assert all(i["type"]["coding"] == [MEDICAL_RECORD_NUMBER] for i in mrns)
    assert patient["id"] == ctx.id_of("patients", "pt-0001")
    assert patient["managingOrganization"]["reference"] == f"Organization/{ctx.organization_id()}"


@pytest.mark.parametrize(
    ("phone", "email", "telecom"),
    [
        pytest.param(None, None, None, id="none"),
        pytest.param("555-0100 x", None, None, id="invalid-phone-rejected-by-record"),
        pytest.param(
            "+1 503 555 0100",
            None,
            [{"system": "phone", "value": "+1 503 555 0100", "use": PHONE_USE}],
            id="phone",
        ),
        pytest.param(None, "a@b.test", [{"system": "email", "value": "a@b.test"}], id="email"),
    ],
)
def test_patient_telecom(ctx, phone, email, telecom) -> None:
    fields = {"given_name": "A", "family_name": "B", "birth_date": "1990-01-01", "sex": "male"}
    try:
        record = PatientRecord.model_validate({**fields, "phone": phone, "email": email})
    except ValueError:
        assert telecom is None
        return
    assert as_json(to_fhir_patient(record, external_id="p", ctx=ctx)).get("telecom") == telecom


@pytest.mark.parametrize(
    ("fields", "family"),
    [
        pytest.param(
            {"name": "Riley Quinnfake", "family_name": "Given-Family"}, "Given-Family", id="family-name"
        ),
        pytest.param({"name": "Riley Quinnfake"}, "Quinnfake", id="last-word"),
        pytest.param({"name": "Riley Quinnfake, MD, PhD"}, "Quinnfake", id="credentials-after-comma"),
        pytest.param({"name": "Quinnfake, Riley"}, "Quinnfake", id="family-first"),
        pytest.param({"name": "Cher"}, "Cher", id="single-word"),
        pytest.param({"name": ", MD"}, "MD", id="nothing-before-comma"),
    ],
)
def test_practitioner_family_name(fields: dict, family: str) -> None:
    assert family_name(PractitionerRecord.model_validate(fields)) == family


@pytest.mark.parametrize(
    ("npi", "systems"),
    [
        pytest.param(None, ["https://gateway.test/id/golden/practitioners"], id="no-npi"),
        pytest.param("1234567893", ["https://gateway.test/id/golden/practitioners", NPI_SYSTEM], id="npi"),
    ],
)
def test_practitioner_identifiers(ctx, npi, systems) -> None:
    record = PractitionerRecord.model_validate({"name": "Sam Placeholder", "npi": npi})
    practitioner = as_json(to_fhir_practitioner(record, external_id="dr-1", ctx=ctx))
    assert [i["system"] for i in practitioner["identifier"]] == systems
    assert practitioner["name"] == [{"use": "official", "text": "Sam Placeholder", "family": "Placeholder"}]


def test_organization_is_the_context_clinic(ctx) -> None:
    organization = as_json(to_fhir_organization(ctx))
    assert organization["id"] == ctx.organization_id()
    assert organization["identifier"] == [
        {"system": "https://gateway.test/id/golden/clinic", "value": "golden"}
    ]
    assert (organization["active"], organization["name"]) == (True, "Golden Test Clinic")


# --------------------------------------------------------------------------- properties

IDENTIFIERS = st.lists(
    st.builds(
        dict,
        system=st.sampled_from(["urn:oid:2.16.840.1.113883.3.9999.1", "https://h.test/mrn", "urn:uuid:x"]),
        value=st.from_regex(r"[A-Z0-9-]{1,20}", fullmatch=True),
    ),
    max_size=3,
    unique_by=lambda i: i["system"],
)
ADDRESS = st.builds(
    dict,
    line=st.lists(SHORT_TEXT, min_size=1, max_size=2),
    city=SHORT_TEXT,
    state=st.sampled_from(["OR", "CA", "NY"]),
    postal_code=st.from_regex(r"\d{5}(-\d{4})?", fullmatch=True),
)
PATIENTS = st.builds(
    dict,
    given_name=NAME,
    family_name=NAME,
    birth_date=st.dates(min_value=date(1900, 1, 1), max_value=date(2026, 1, 1)),
    sex=st.sampled_from(["female", "male", "other", "unknown"]),
    identifiers=IDENTIFIERS,
    phone=st.none() | st.from_regex(r"\+1 [0-9]{3} [0-9]{3} [0-9]{4}", fullmatch=True),
    email=st.none() | st.from_regex(r"[a-z]{1,12}@[a-z]{1,12}\.test", fullmatch=True),
    address=st.none() | ADDRESS,
).map(PatientRecord.model_validate)
NPIS = st.from_regex(r"1[0-9]{9}", fullmatch=True).filter(npi_is_valid)
PRACTITIONERS = st.builds(
    dict,
    name=SHORT_TEXT,
    given_name=st.none() | NAME,
    family_name=st.none() | NAME,
    npi=st.none() | NPIS,
    qualification=st.none() | SHORT_TEXT,
).map(PractitionerRecord.model_validate)


@settings(max_examples=40, deadline=None)
@given(record=PATIENTS, external_id=EXTERNAL_ID)
def test_any_patient_maps_to_valid_fhir(record: PatientRecord, external_id: str) -> None:
    data = assert_valid(to_fhir_patient(record, external_id=external_id, ctx=make_context()))
    assert len(data["identifier"]) == 1 + len(record.identifiers)
    assert data["name"][0]["family"] == record.family_name


@settings(max_examples=40, deadline=None)
@given(record=PRACTITIONERS, external_id=EXTERNAL_ID)
def test_any_practitioner_maps_to_valid_fhir(record: PractitionerRecord, external_id: str) -> None:
    data = assert_valid(to_fhir_practitioner(record, external_id=external_id, ctx=make_context()))
    assert data["name"][0]["family"].strip()


@pytest.mark.parametrize(
    ("name", "drop"),
    [
        pytest.param("patient-full", "gender", id="patient-gender"),
        pytest.param("patient-full", "identifier", id="patient-identifier"),
        pytest.param("patient-minimal", "name", id="patient-name"),
        pytest.param("practitioner", "name", id="practitioner-name"),
        pytest.param("practitioner", "identifier", id="practitioner-identifier"),
        pytest.param("organization", "active", id="organization-active"),
        pytest.param("organization", "name", id="organization-name"),
    ],
)
def test_profile_check_is_not_vacuous(name: str, drop: str, profile_validator) -> None:
    [resource] = map_case(name)
    data = as_json(resource)
    del data[drop]
    assert profile_errors(profile_validator, data)
