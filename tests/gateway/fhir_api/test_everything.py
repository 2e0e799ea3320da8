"""Patient/$everything: the compartment, _type, _since, paging."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.gateway.fhir_api.fhir_data import fhir_id

P1 = fhir_id("clinic-a", "patients", "p1")
P2 = fhir_id("clinic-a", "patients", "p2")


def pages(fhir, path: str, params: dict) -> list[dict]:
    out = []
    bundle = fhir(path, params=params).json()
    while True:
        out.append(bundle)
        assert len(out) <= 1000, "the next links never end"
        link = next((lk["url"] for lk in bundle["link"] if lk["relation"] == "next"), None)
        if link is None:
            return out
        bundle = fhir(link.split("/fhir/", 1)[1]).json()


def matches(bundles: list[dict]) -> list[dict]:
    return [e["resource"] for b in bundles for e in b.get("entry", []) if e["search"]["mode"] == "match"]


def test_everything_is_the_patients_compartment(small_clinic, fhir) -> None:
    bundle = fhir(f"Patient/{P1}/$everything", params={"_count": "1000"}).json()
    assert bundle["type"] == "searchset"
    resources = [e["resource"] for e in bundle["entry"]]
    assert resources[0]["resourceType"] == "Patient" and resources[0]["id"] == P1
    kinds = {r["resourceType"] for r in resources}
    assert {"Encounter", "Observation", "Procedure", "MedicationAdministration", "QuestionnaireResponse",
            "AdverseEvent", "Flag", "Provenance", "Practitioner", "Organization"} <= kinds  # fmt: skip
    for resource in resources:
        reference = resource.get("subject") or resource.get("patient")
        if reference and resource["resourceType"] != "Provenance":
            assert reference["reference"] == f"Patient/{P1}", resource["resourceType"]
    p2_ids = {e["resource"]["id"] for e in fhir(f"Patient/{P2}/$everything").json()["entry"]}
    assert not p2_ids & {
        r["id"] for r in resources if r["resourceType"] not in ("Organization", "Practitioner")
    }


def test_everything_pages_return_each_resource_once(small_clinic, fhir) -> None:
    whole = matches([fhir(f"Patient/{P1}/$everything", params={"_count": "1000"}).json()])
    paged = matches(pages(fhir, f"Patient/{P1}/$everything", {"_count": "3"}))
    assert [r["id"] for r in paged] == [r["id"] for r in whole]
    assert len({r["id"] for r in paged}) == len(paged) > 20


def test_everything_type_filter(small_clinic, fhir) -> None:
    bundle = fhir(f"Patient/{P1}/$everything", params={"_type": "Patient,Encounter"}).json()
    assert {e["resource"]["resourceType"] for e in bundle["entry"]} == {"Patient", "Encounter"}


def test_everything_since(small_clinic, fhir) -> None:
    everything = fhir(f"Patient/{P1}/$everything", params={"_count": "1000"}).json()
    latest = max(datetime.fromisoformat(e["resource"]["meta"]["lastUpdated"]) for e in everything["entry"])
    since = (latest + timedelta(milliseconds=1)).isoformat()
    assert "entry" not in fhir(f"Patient/{P1}/$everything", params={"_since": since}).json()
    small_clinic.put("sessions", "s2", {"patient_id": "p1", "kind": "integration", "start": "2026-11-09T10:00:00Z",
                                        "end": "2026-11-09T11:30:00Z", "status": "completed"})  # fmt: skip
    changed = matches([fhir(f"Patient/{P1}/$everything", params={"_since": since}).json()])
    assert {r["resourceType"] for r in changed} == {"Encounter", "Procedure"}


def test_everything_of_an_unknown_patient_is_404(small_clinic, fhir) -> None:
    assert fhir("Patient/nobody/$everything").status_code == 404
