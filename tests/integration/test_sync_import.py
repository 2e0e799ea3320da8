"""Referral import from the real hospital: Patient, Conditions, MedicationRequests and AllergyIntolerances
put into Medplum by the 'hospital', then imported through POST /api/v1/patients/{id}/import."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from gateway.core.config import Settings
from gateway.sync.keys import load_private_key
from gateway.sync.smart_client import Endpoint, SmartClient
from integration.conftest import connect
from integration.peers import Hospital

pytestmark = pytest.mark.integration

MRN = "urn:oid:2.16.840.1.113883.3.999.1"


def _hospital_writes(ehr: Hospital) -> str:
    """What the hospital already holds about the referred patient (synthetic); returns its Patient id."""
    key = load_private_key(alg="RS384", path=str(ehr.key_file))
    client = SmartClient(
        Endpoint(
            ehr.fhir_base, ehr.issuer + "/token", ehr.client_id, "system/*.cruds", "RS384", ehr.kid, key
        ),
        timeout=10,
    )
    try:
        patient = client.request(
            "POST",
            "Patient",
            json={
                "resourceType": "Patient",
                "identifier": [{"system": MRN, "value": "H-42"}],
                "name": [{"use": "official", "family": "Testperson", "given": ["Riley"]}],
                "gender": "female",
                "birthDate": "1984-04-12",
            },
        ).body["id"]
        subject = {"reference": f"Patient/{patient}"}
        client.request(
            "POST",
            "Condition",
            json={
                "resourceType": "Condition",
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                            "code": "active",
                        }
                    ]
                },
                "verificationStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                            "code": "confirmed",
                        }
                    ]
                },
                "category": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                "code": "problem-list-item",
                            }
                        ]
                    }
                ],
                "code": {
                    "coding": [
                        {
                            "system": "http://snomed.info/sct",
                            "code": "370143000",
                            "display": "Major depressive disorder",
                        }
                    ]
                },
                "subject": subject,
                "onsetDateTime": "2019-03",
            },
        )
        client.request(
            "POST",
            "MedicationRequest",
            json={
                "resourceType": "MedicationRequest",
                "status": "active",
                "intent": "order",
                "medicationCodeableConcept": {
                    "coding": [
                        {
                            "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                            "code": "312938",
                            "display": "sertraline 50 MG Oral Tablet",
                        }
                    ]
                },
                "subject": subject,
                "authoredOn": "2024-05-01",
            },
        )
        client.request(
            "POST",
            "AllergyIntolerance",
            json={
                "resourceType": "AllergyIntolerance",
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                            "code": "active",
                        }
                    ]
                },
                "verificationStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                            "code": "confirmed",
                        }
                    ]
                },
                "code": {
                    "coding": [
                        {
                            "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                            "code": "7980",
                            "display": "penicillin G",
                        }
                    ]
                },
                "patient": subject,
            },
        )
        return str(patient)
    finally:
        client.close()


def test_a_referral_comes_in_through_the_inbound_mappers_with_provenance(
    engine: Engine, sync_settings: Settings, ehr: Hospital, make_clinic
) -> None:
    clinic = make_clinic("demo")
    connect(engine, sync_settings, ehr, fhir_base=ehr.fhir_base)
    ehr_patient = _hospital_writes(ehr)
    body = {"connection": "general-hospital", "identifier": {"system": MRN, "value": "H-42"}}
    response = clinic.http.post("/api/v1/patients/ref-1/import", json=body, headers=clinic.headers)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["patient"] == "created" and result["ehr_patient"] == f"Patient/{ehr_patient}"
    assert {k: v["created"] for k, v in result["imported"].items()} == {
        "conditions": 1,
        "medications": 1,
        "allergies": 1,
    }
    patient = clinic.get("/api/v1/patients/ref-1").json()["record"]
    assert patient["family_name"] == "Testperson"
    assert {"system": MRN, "value": "H-42"} in patient["identifiers"]
    with engine.connect() as c:
        types = {r[0] for r in c.execute(text("SELECT resource_type FROM resource"))}
        provenances = [
            r[0] for r in c.execute(text("SELECT content FROM resource WHERE resource_type = 'Provenance'"))
        ]
    assert {"Condition", "MedicationRequest", "AllergyIntolerance", "Patient"} <= types
    assert any(
        f"{ehr.fhir_base}/Patient/{ehr_patient}".encode() in p for p in provenances
    )  # names the source

    again = clinic.http.post("/api/v1/patients/ref-1/import", json=body, headers=clinic.headers).json()
    assert again["patient"] == "unchanged"
    assert {k: v["unchanged"] for k, v in again["imported"].items()} == {
        "conditions": 1,
        "medications": 1,
        "allergies": 1,
    }


def test_an_unknown_mrn_is_404_and_writes_nothing(
    engine: Engine, sync_settings: Settings, ehr: Hospital, make_clinic
) -> None:
    clinic = make_clinic("demo")
    connect(engine, sync_settings, ehr, fhir_base=ehr.fhir_base)
    body = {"connection": "general-hospital", "identifier": {"system": MRN, "value": "nobody"}}
    response = clinic.http.post("/api/v1/patients/ref-2/import", json=body, headers=clinic.headers)
    assert response.status_code == 404
    assert clinic.get("/api/v1/patients/ref-2").status_code == 404
