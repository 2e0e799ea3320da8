"""EHR Patient -> PatientRecord: Epic and Oracle Health fixtures, choices among several names, identifiers,
telecoms and addresses, rejections, and the round trip through ``mappings.patient.to_fhir_patient``."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mappings.fhir_text import fhir_string
from mappings.inbound import InboundMappingError, from_fhir_patient
from mappings.patient import to_fhir_patient
from mappings.records import PatientRecord
from tests.mappings.conftest import make_context
from tests.mappings.inbound.inbound_support import assert_phi_free, entry, table
from tests.mappings.outbound_checks import EXTERNAL_ID, NAME, SHORT_TEXT

EPIC_OID = "urn:oid:1.2.840.114350.1.13.0.1.7.5.999999"
EPIC_PATIENT = "eTstPt1.xQ4vN2bR7sW9yZ3kL6mP0hA3"

EPIC = {
    EPIC_PATIENT: {
        "given_name": "Avery Jordan",  # the official name, not the usual "AJ" nor the old one
        "family_name": "Testpatient",
        "birth_date": "1986-04-12",
        "sex": "female",
        "identifiers": [  # first per system (the old MRN is dropped), the one without system dropped
            {"system": f"{EPIC_OID}.14", "value": "E9990101"},
            {"system": f"{EPIC_OID}.0", "value": "900000101"},
            {
                "system": "http://open.epic.com/FHIR/StructureDefinition/patient-dstu2-fhir-id",
                "value": "TTstDstu2Id0000000000001",
            },
            {
                "system": "http://open.epic.com/FHIR/StructureDefinition/patient-fhir-id",
                "value": EPIC_PATIENT,
            },
        ],
        "phone": "608-555-0199",  # mobile before home
        "email": "avery.testpatient@example.com",  # telecom without use
        "address": {  # home, not the old one; "USA" -> US
            "line": ["123 Synthetic Ave", "Apt 4"],
            "city": "Madison",
            "state": "WI",
            "postal_code": "53703",
            "country": "US",
        },
    },
    "eTstPt2.gH8jK1mN4pQ7rS0tV3wX6yZ9": {
        "sex": "unknown",  # gender missing
        "phone": None,
        "address": None,  # a Canadian address cannot be kept (US state/ZIP patterns)
    },
}
ORACLE = {
    "90000001": {
        "given_name": "BLAKE R",
        "family_name": "TESTPATIENT",
        "sex": "male",
        # MRN with `_system` data-absent-reason and the 70-character federated principal are dropped
        "identifiers": [{"system": "urn:oid:2.16.840.1.113883.3.787.0.0", "value": "900000202"}],
        "phone": "8165550123",
        "address": {
            "line": ["2800 Synthetic Blvd"],
            "city": "Kansas City",
            "state": "MO",
            "postal_code": "64108",
            "country": "US",
        },
    },
    "90000002": {
        "rejected": [
            "Patient.name has no name with a family name and a given name",
            "Patient.birthDate is missing",
        ]
    },
}


def check(resource: dict[str, Any], expected: dict[str, Any]) -> None:
    if "rejected" in expected:
        with pytest.raises(InboundMappingError) as error:
            from_fhir_patient(resource)
        assert error.value.reasons == expected["rejected"]
        assert_phi_free(error.value.reasons, resource)
        return
    data = from_fhir_patient(resource).model_dump(mode="json")
    assert {key: data.get(key) for key in expected} == expected


@pytest.mark.parametrize(("resource", "expected"), table("epic-patient-search.json", "Patient", EPIC))
def test_epic_patients(resource: dict[str, Any], expected: dict[str, Any]) -> None:
    check(resource, expected)


@pytest.mark.parametrize(("resource", "expected"), table("oracle-patient.json", "Patient", ORACLE))
def test_oracle_patients(resource: dict[str, Any], expected: dict[str, Any]) -> None:
    check(resource, expected)


def _epic() -> dict[str, Any]:
    return copy.deepcopy(entry("epic-patient-search.json", "Patient", EPIC_PATIENT))


@pytest.mark.parametrize(
    ("change", "reasons"),
    [
        pytest.param(
            {"birthDate": "1986-04"},
            ["Patient.birthDate is not a full date (year, month and day)"],
            id="birth-month",
        ),
        pytest.param(
            {"birthDate": "1986"},
            ["Patient.birthDate is not a full date (year, month and day)"],
            id="birth-year",
        ),
        pytest.param(
            {"birthDate": "1886-04-12"},
            ["birth_date: a date must lie in the years 1900 to 2199"],
            id="birth-1886",
        ),
        pytest.param(
            {"name": [{"use": "old", "family": "F", "given": ["G"]}]},
            ["Patient.name has no name with a family name and a given name"],
            id="only-old-name",
        ),
        pytest.param(
            {"name": [{"text": "Avery Testpatient"}]},
            ["Patient.name has no name with a family name and a given name"],
            id="name-text-only",
        ),
        pytest.param({"resourceType": "Person"}, ["resourceType is not Patient"], id="wrong-type"),
    ],
)
def test_rejections(change: dict[str, Any], reasons: list[str]) -> None:
    resource = _epic() | change
    with pytest.raises(InboundMappingError) as error:
        from_fhir_patient(resource)
    assert error.value.reasons == reasons
    assert_phi_free(error.value.reasons, resource)


@pytest.mark.parametrize(
    ("names", "given", "family"),
    [
        pytest.param(
            [{"use": "usual", "family": "U", "given": ["Usual"]}, {"family": "N", "given": ["None"]}],
            "Usual",
            "U",
            id="usual-before-no-use",
        ),
        pytest.param(
            [{"use": "nickname", "family": "K", "given": ["Nick"]}, {"family": "N", "given": ["No", "Use"]}],
            "No Use",
            "N",
            id="no-use-before-nickname",
        ),
        pytest.param(
            [{"use": "official", "family": "O"}, {"use": "usual", "family": "U", "given": ["Usual"]}],
            "Usual",
            "U",
            id="official-without-given-skipped",
        ),
        pytest.param(
            [
                {"use": "official", "family": "O", "given": ["Ended"], "period": {"end": "2001-01-01"}},
                {"use": "usual", "family": "U", "given": ["Usual"]},
            ],
            "Usual",
            "U",
            id="ended-name-skipped",
        ),
    ],
)
def test_name_choice(names: list[dict[str, Any]], given: str, family: str) -> None:
    record = from_fhir_patient(_epic() | {"name": names})
    assert (record.given_name, record.family_name) == (given, family)


def test_identifiers_capped_at_ten_and_own_identifiers_left_out() -> None:
    ctx = make_context()
    own = {"system": ctx.identifier_system("patients"), "value": "pt-1"}
    other_clinic = {"system": "https://gateway.test/id/other-clinic/patients", "value": "x"}
    many = [{"system": f"urn:oid:1.2.3.{i}", "value": str(i)} for i in range(12)]
    resource = _epic() | {"identifier": [own, other_clinic, *many]}
    assert [i.value for i in from_fhir_patient(resource, ctx=ctx).identifiers] == [str(i) for i in range(10)]
    assert from_fhir_patient(resource).identifiers[0].system == own["system"]


@pytest.mark.parametrize(
    ("telecom", "phone", "email"),
    [
        pytest.param([], None, None, id="none"),
        pytest.param(
            [
                {"system": "phone", "value": "not a phone"},
                {"system": "phone", "value": "608-555-0100", "use": "work"},
            ],
            "608-555-0100",
            None,
            id="invalid-skipped",
        ),
        pytest.param(
            [{"system": "phone", "value": "608-555-0100", "use": "old"}], None, None, id="old-skipped"
        ),
        pytest.param(
            [
                {"system": "email", "value": "a@b.example", "use": "work"},
                {"system": "email", "value": "c@d.example"},
            ],
            None,
            "c@d.example",
            id="email-without-use-before-work",
        ),
        pytest.param([{"system": "fax", "value": "608-555-0100"}], None, None, id="fax-ignored"),
    ],
)
def test_telecom_choice(telecom: list[dict[str, Any]], phone: str | None, email: str | None) -> None:
    record = from_fhir_patient(_epic() | {"telecom": telecom})
    assert (record.phone, record.email) == (phone, email)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        pytest.param({"country": "US"}, {"country": "US"}, id="country-only"),
        pytest.param(
            {"city": "Madison", "state": "Wisconsin", "postalCode": "537"},
            {"city": "Madison", "country": "US"},
            id="unusable-state-and-zip-dropped",
        ),
        pytest.param(
            {"city": "Toronto", "country": "CA", "state": "ON"},
            {"city": "Toronto", "state": "ON", "country": "CA"},
            id="alpha-2-country",
        ),
        pytest.param({"city": "Lyon", "country": "France"}, None, id="country-name-unusable"),
    ],
)
def test_address(address: dict[str, Any], expected: dict[str, Any] | None) -> None:
    record = from_fhir_patient(_epic() | {"address": [address]})
    assert (record.address.model_dump(exclude_none=True) if record.address else None) == expected


def test_gender_outside_the_value_set_is_unknown() -> None:
    assert from_fhir_patient(_epic() | {"gender": "F"}).sex.value == "unknown"


# --------------------------------------------------------------------------- round trip

FHIR_NAME = NAME.map(str.strip).filter(lambda s: s != "" and fhir_string(s) == s)
FHIR_TEXT = SHORT_TEXT.map(str.strip).filter(lambda s: s != "" and fhir_string(s) == s)
PATIENTS = st.builds(
    dict,
    given_name=FHIR_NAME,
    family_name=FHIR_NAME,
    birth_date=st.dates(min_value=date(1900, 1, 1), max_value=date(2026, 1, 1)),
    sex=st.sampled_from(["female", "male", "other", "unknown"]),
    identifiers=st.lists(
        st.builds(
            dict,
            system=st.sampled_from(
                ["urn:oid:2.16.840.1.113883.3.9999.1", "https://h.test/mrn", f"{EPIC_OID}.0"]
            ),
            value=st.from_regex(r"[A-Za-z0-9-]{1,64}", fullmatch=True),
        ),
        max_size=3,
        unique_by=lambda i: i["system"],
    ),
    phone=st.none() | st.from_regex(r"\+?[0-9][0-9 ()./-]{6,18}[0-9]", fullmatch=True),
    email=st.none() | st.from_regex(r"[a-z0-9.]{1,12}@[a-z]{1,12}\.(test|example)", fullmatch=True),
    address=st.none()
    | st.builds(
        dict,
        line=st.none() | st.lists(FHIR_TEXT, min_size=1, max_size=4),
        city=st.none() | FHIR_TEXT,
        state=st.none() | st.from_regex(r"[A-Z]{2}", fullmatch=True),
        postal_code=st.none() | st.from_regex(r"\d{5}(-\d{4})?", fullmatch=True),
        country=st.sampled_from(["US", "CA"]),
    ),
).map(PatientRecord.model_validate)


@settings(max_examples=50, deadline=None)
@given(record=PATIENTS, external_id=EXTERNAL_ID)
def test_patient_round_trip(record: PatientRecord, external_id: str) -> None:
    ctx = make_context()
    patient = to_fhir_patient(record, external_id=external_id, ctx=ctx)
    assert from_fhir_patient(patient.model_dump(), ctx=ctx) == record
    assert from_fhir_patient(patient.model_dump(mode="json"), ctx=ctx) == record
