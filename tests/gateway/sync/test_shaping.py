"""How our resources look at the EHR: identity, references, ids (gateway.sync.shaping)."""

from __future__ import annotations

from gateway.sync.shaping import SYNC_SYSTEM, first_identifier, for_ehr, identity_query, references

OBS = {
    "resourceType": "Observation",
    "id": "11111111-1111-5111-8111-111111111111",
    "meta": {"versionId": "3", "lastUpdated": "2026-01-01T00:00:00Z", "profile": ["p"]},
    "identifier": [{"system": "https://g/id/c/vitals", "value": "v1"}],
    "subject": {"reference": "Patient/p1"},
    "performer": [{"reference": "Practitioner/d1", "display": "Dr"}],
    "hasMember": [{"reference": "#contained"}],
    "status": "final",
}


def test_references_lists_literal_relative_references() -> None:
    assert references(OBS) == {("Patient", "p1"), ("Practitioner", "d1")}


def test_for_ehr_rewrites_references_adds_identity_and_drops_our_id() -> None:
    shaped = for_ehr(
        OBS,
        resolve=lambda t, i: "Patient/EHR-1" if t == "Patient" else None,
        logical=lambda t, i: {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"},
        ehr_id=None,
    )
    assert shaped is not None
    assert "id" not in shaped and shaped["meta"] == {"profile": ["p"]}
    assert shaped["subject"] == {"reference": "Patient/EHR-1"}
    assert shaped["performer"] == [
        {"display": "Dr", "identifier": {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}}
    ]
    assert shaped["identifier"][-1] == {"system": SYNC_SYSTEM, "value": f"urn:uuid:{OBS['id']}"}
    assert OBS["subject"] == {"reference": "Patient/p1"}  # the input is left alone


def test_updates_carry_the_ehr_id_and_identity_is_added_once() -> None:
    once = for_ehr(OBS, resolve=lambda t, i: f"{t}/x", logical=lambda t, i: None, ehr_id="E9")
    assert once is not None and once["id"] == "E9"
    twice = for_ehr(
        {**once, "id": OBS["id"]}, resolve=lambda t, i: f"{t}/x", logical=lambda t, i: None, ehr_id="E9"
    )
    assert twice is not None
    assert [i for i in twice["identifier"] if i["system"] == SYNC_SYSTEM] == [
        {"system": SYNC_SYSTEM, "value": f"urn:uuid:{OBS['id']}"}
    ]


def test_provenance_is_matched_on_a_tag_and_skipped_without_targets() -> None:
    provenance = {
        "resourceType": "Provenance",
        "id": "22222222-2222-5222-8222-222222222222",
        "target": [{"reference": "Condition/c1"}, {"reference": "Patient/p1"}],
        "recorded": "2026-01-01T00:00:00Z",
        "agent": [{"who": {"reference": "Organization/o1"}}],
    }
    shaped = for_ehr(
        provenance,
        resolve=lambda t, i: None if t == "Condition" else f"{t}/E",
        logical=lambda t, i: None,
        ehr_id=None,
    )
    assert shaped is not None
    assert shaped["target"] == [{"reference": "Patient/E"}]
    assert shaped["meta"]["tag"] == [{"system": SYNC_SYSTEM, "code": f"urn:uuid:{provenance['id']}"}]
    assert identity_query("Provenance", "x") == f"_tag={SYNC_SYSTEM}|urn:uuid:x"
    assert identity_query("Patient", "x") == f"identifier={SYNC_SYSTEM}|urn:uuid:x"
    none_left = for_ehr(provenance, resolve=lambda t, i: None, logical=lambda t, i: None, ehr_id=None)
    assert none_left is None


def test_first_identifier() -> None:
    assert first_identifier(OBS) == {"system": "https://g/id/c/vitals", "value": "v1"}
    assert first_identifier({"identifier": {"system": "s", "value": "v", "use": "x"}}) == {
        "system": "s",
        "value": "v",
    }
    assert first_identifier({}) is None
