"""Records and helpers the FHIR API tests share."""

from __future__ import annotations

from gateway.core.ids import resource_id

FHIR_JSON = "application/fhir+json"

PATIENTS = {
    "p1": {
        "given_name": "Ada",
        "family_name": "Lovelace",
        "birth_date": "1980-03-04",
        "sex": "female",
        "identifiers": [{"system": "urn:oid:1.2.3.4", "value": "MRN-001"}],
    },
    "p2": {"given_name": "Alan", "family_name": "Turing", "birth_date": "1975-06-23", "sex": "male"},
    "p3": {"given_name": "Émile", "family_name": "Zola", "birth_date": "1990-01-15", "sex": "male"},
}


def fhir_id(slug: str, kind: str, external_id: str) -> str:
    return resource_id(slug, kind, external_id)


def put_records(clinic, records: list[tuple[str, str, dict]]) -> None:
    for kind, external_id, record in records:
        response = clinic.put(kind, external_id, record)
        assert response.status_code in (200, 201), response.text
