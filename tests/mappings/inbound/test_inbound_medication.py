"""EHR MedicationRequest -> MedicationRecord: codeable concept, contained and referenced Medications."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mappings.inbound import InboundMappingError, from_fhir_medication_request
from tests.mappings.inbound.inbound_support import assert_phi_free, entry, included_medications, table

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
FIXTURE = "epic-medication-requests.json"
EPIC_PATIENT = "eTstPt1.xQ4vN2bR7sW9yZ3kL6mP0hA3"

EPIC = {
    "eTstMrq1.pQ2sT5vW8yZ1bC4eF7hJ0kM": {  # medicationCodeableConcept: RxNorm + Epic code + text
        "codes": [
            {"system": RXNORM, "code": "2201625", "display": "esketamine Nasal Spray [Spravato]"},
            {
                "system": "urn:oid:1.2.840.114350.1.13.0.1.7.2.999999.698288",
                "code": "99902",
                "display": "SPRAVATO 56 MG DOSE NASAL SPRAY KIT",
            },
        ],
        "text": "esketamine (SPRAVATO) 56 mg dose nasal spray kit",
        "status": "active",
        "intent": "order",
        "authored_on": "2024-04-30T14:10:00Z",
        "dosage_text": "Administer 56 mg (2 devices) intranasally twice weekly under clinic supervision.",
        "requester_display": "Prescriber Synthetic, MD",
        "reported": False,
    },
    "eTstMrq2.sT3vW6yZ9bC2eF5hJ8kM1nP": {  # contained #Medication, text only; two dosage texts
        "codes": [],
        "text": "ketamine HCl 100 mg sublingual troche (compounded)",
        "status": "completed",
        "authored_on": "2023-11-02T10:05:00-05:00",
        "dosage_text": "Dissolve 1 troche under the tongue at the start of the session.\nDo not swallow for 15 minutes.",
        "reported": None,
    },
    "eTstMrq3.vW4yZ7bC0eF3hJ6kM9nP2qS": {  # Medication/x included in the searchset (search.mode include)
        "codes": [
            {"system": RXNORM, "code": "2201623", "display": "esketamine Nasal Spray"},
            {"system": "http://hl7.org/fhir/sid/ndc", "code": "50458-028-03"},
        ],
        "text": "esketamine 84 mg dose nasal spray kit",
        "status": "stopped",
        "authored_on": "2022-06-01",
    },
    "eTstMrq4.yZ5bC8eF1hJ4kM7nP0qS3t": {  # Medication/x not supplied: the reference's display
        "codes": [],
        "text": "LORAZEPAM 1 MG TABLET",
        "intent": "plan",
        "dosage_text": None,
        "requester_display": None,
        "reported": True,
    },
    "eTstMrq5.bC6eF9hJ2kM5nP8qS1tV4w": {"rejected": ["entered-in-error"]},
}


def _map(resource: dict[str, Any], **kwargs: Any):
    return from_fhir_medication_request(
        resource,
        patient_id="pt-1",
        ehr="epic-test",
        ehr_patient_id=EPIC_PATIENT,
        contained_or_referenced_medications=kwargs.pop("medications", included_medications(FIXTURE)),
        **kwargs,
    )


@pytest.mark.parametrize(("resource", "expected"), table(FIXTURE, "MedicationRequest", EPIC))
def test_epic_medication_requests(resource: dict[str, Any], expected: dict[str, Any]) -> None:
    if "rejected" in expected:
        with pytest.raises(InboundMappingError) as error:
            _map(resource)
        assert error.value.reasons == expected["rejected"]
        return
    data = _map(resource).model_dump(mode="json", exclude_none=True)
    assert {key: data.get(key) for key in expected} == expected
    assert data["source"] == {"ehr": "epic-test", "resource_type": "MedicationRequest", "id": resource["id"]}


def _mrq(resource_id: str) -> dict[str, Any]:
    return copy.deepcopy(entry(FIXTURE, "MedicationRequest", resource_id))


MRQ3 = "eTstMrq3.vW4yZ7bC0eF3hJ6kM9nP2qS"
MEDICATION_3 = included_medications(FIXTURE)["Medication/eTstMed3.zB5dF8hK1mP4rT7"]


@pytest.mark.parametrize(
    ("reference", "medications"),
    [
        pytest.param(
            "Medication/eTstMed3.zB5dF8hK1mP4rT7", {"eTstMed3.zB5dF8hK1mP4rT7": MEDICATION_3}, id="by-id"
        ),
        pytest.param(
            "https://fhir.epic.example/api/FHIR/R4/Medication/eTstMed3.zB5dF8hK1mP4rT7",
            {"Medication/eTstMed3.zB5dF8hK1mP4rT7": MEDICATION_3},
            id="absolute-reference",
        ),
        pytest.param("#m1", {"#m1": MEDICATION_3}, id="contained-supplied-separately"),
    ],
)
def test_referenced_medication_lookup(reference: str, medications: dict[str, Any]) -> None:
    resource = _mrq(MRQ3)
    resource["medicationReference"] = {"reference": reference}
    record = _map(resource, medications=medications)
    assert [c.code for c in record.codes] == ["2201623", "50458-028-03"]


def test_medication_code_without_text_takes_reference_display() -> None:
    resource = _mrq(MRQ3)
    medication = copy.deepcopy(MEDICATION_3)
    del medication["code"]["text"]
    record = _map(resource, medications={"Medication/eTstMed3.zB5dF8hK1mP4rT7": medication})
    assert record.text == "ESKETAMINE NASAL SPRAY"


@pytest.mark.parametrize(
    ("change", "reasons"),
    [
        pytest.param(
            {"status": None, "intent": "proposed", "medicationReference": None, "subject": None, "id": None},
            [
                "MedicationRequest.status is missing or not a MedicationRequest status",
                "MedicationRequest.intent is missing or not a MedicationRequest intent",
                "MedicationRequest has neither medicationCodeableConcept nor medicationReference",
                "MedicationRequest.subject has no patient reference",
                "MedicationRequest.id is missing or not a FHIR id",
            ],
            id="every-reason-listed",
        ),
        pytest.param(
            {"medicationReference": {"reference": "Medication/unknown"}},
            ["MedicationRequest.medicationReference cannot be resolved and has no display"],
            id="unresolvable-reference-without-display",
        ),
        pytest.param(
            {"medicationReference": None, "medicationCodeableConcept": {"coding": [{"display": "x"}]}},
            ["MedicationRequest.medicationCodeableConcept has neither coding nor text"],
            id="empty-codeable-concept",
        ),
        pytest.param(
            {"subject": {"reference": "Patient/other"}},
            ["MedicationRequest.subject references another patient than the one imported"],
            id="another-patient",
        ),
    ],
)
def test_rejections(change: dict[str, Any], reasons: list[str]) -> None:
    resource = _mrq(MRQ3)
    for key, value in change.items():
        if value is None:
            resource.pop(key, None)
        else:
            resource[key] = value
    with pytest.raises(InboundMappingError) as error:
        _map(resource)
    assert error.value.reasons == reasons
    assert_phi_free(error.value.reasons, resource)


def test_reported_reference_counts_as_reported() -> None:
    resource = _mrq(MRQ3)
    resource["reportedReference"] = {"reference": "Practitioner/eTstPrac1"}
    assert _map(resource).reported is True


def test_default_medications_mapping_is_empty() -> None:
    resource = _mrq(MRQ3)
    record = from_fhir_medication_request(resource, patient_id="p")
    assert (record.codes, record.text) == ([], "ESKETAMINE NASAL SPRAY")
