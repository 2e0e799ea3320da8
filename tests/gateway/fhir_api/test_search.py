"""Search parameters (US Core 6.1 + common), one case per parameter and prefix, on SQLite and PostgreSQL.

Each case names the records whose resources must match, by their identifier values (``p1``, ``s2``,
``v1#heart-rate``), exactly: nothing missing, nothing extra.
"""

from __future__ import annotations

import pytest

from tests.gateway.fhir_api.fhir_data import FHIR_JSON, fhir_id

P1 = fhir_id("clinic-a", "patients", "p1")
P2 = fhir_id("clinic-a", "patients", "p2")
ID_PREFIX = "https://gateway.test/id/clinic-a/"
VITALS_P1 = ["v1#bp", "v1#heart-rate", "v2#heart-rate"]
PHQ9_ITEMS = [f"a1#item-{n}" for n in range(1, 10)]


def keys(bundle: dict, mode: str = "match") -> list[str]:
    out = []
    for entry in bundle.get("entry", []):
        if entry.get("search", {}).get("mode") != mode:
            continue
        identifiers = entry["resource"].get("identifier", [])
        identifiers = [identifiers] if isinstance(identifiers, dict) else identifiers
        values = [i["value"] for i in identifiers if i.get("system", "").startswith(ID_PREFIX)]
        out.append(values[0] if values else entry["resource"]["id"])
    return sorted(out)


CASES = [
    # Patient
    ("Patient", {"_id": P1}, ["p1"]),
    ("Patient", {"_id": f"{P1},{P2}"}, ["p1", "p2"]),
    ("Patient", {"identifier": "urn:oid:1.2.3.4|MRN-001"}, ["p1"]),
    ("Patient", {"identifier": "MRN-001"}, ["p1"]),
    ("Patient", {"identifier": f"{ID_PREFIX}patients|p2"}, ["p2"]),
    ("Patient", {"identifier": "urn:oid:9.9|MRN-001"}, []),
    ("Patient", {"name": "ada"}, ["p1"]),
    ("Patient", {"name": "LOVE"}, ["p1"]),
    ("Patient", {"name": "emile"}, ["p3"]),
    ("Patient", {"name:exact": "ada"}, ["p1"]),
    ("Patient", {"name:exact": "ad"}, []),
    ("Patient", {"name:contains": "urin"}, ["p2"]),
    ("Patient", {"family": "zol"}, ["p3"]),
    ("Patient", {"family": "ada"}, []),
    ("Patient", {"given": "alan"}, ["p2"]),
    ("Patient", {"gender": "male"}, ["p2", "p3"]),
    ("Patient", {"gender": "female,male"}, ["p1", "p2", "p3"]),
    ("Patient", {"birthdate": "1980-03-04"}, ["p1"]),
    ("Patient", {"birthdate": "eq1980"}, ["p1"]),
    ("Patient", {"birthdate": "ne1980"}, ["p2", "p3"]),
    ("Patient", {"birthdate": "ge1980"}, ["p1", "p3"]),
    ("Patient", {"birthdate": "gt1980-03-04"}, ["p3"]),
    ("Patient", {"birthdate": "lt1980"}, ["p2"]),
    ("Patient", {"birthdate": "le1980-03-04"}, ["p1", "p2"]),
    ("Patient", {"birthdate": "sa1980"}, ["p3"]),
    ("Patient", {"birthdate": "eb1980"}, ["p2"]),
    ("Patient", {"family": "turing", "gender": "male"}, ["p2"]),
    ("Patient", {"birthdate": "1975-06-23", "name": "alan"}, ["p2"]),
    ("Patient", {"gender": "female", "name": "alan"}, []),
    ("Patient", {"_lastUpdated": "gt2000-01-01"}, ["p1", "p2", "p3"]),
    ("Patient", {"_lastUpdated": "lt2000-01-01"}, []),
    # Encounter
    ("Encounter", {"patient": P1}, ["s1", "s2"]),
    ("Encounter", {"patient": f"Patient/{P1}"}, ["s1", "s2"]),
    ("Encounter", {"subject": f"Patient/{P1}"}, ["s1", "s2"]),
    ("Encounter", {"subject:Patient": P1}, ["s1", "s2"]),
    ("Encounter", {"patient": f"http://testserver/fhir/Patient/{P1}"}, ["s1", "s2"]),
    ("Encounter", {"date": "2026-11-02"}, ["s1"]),
    ("Encounter", {"date": "ge2026-11-05"}, ["s2", "s3"]),
    ("Encounter", {"date": "gt2026-11-09T11:00:00Z"}, ["s3"]),
    ("Encounter", {"date": "lt2026-11-01"}, ["s3"]),
    ("Encounter", {"date": "le2026-11-02T12:00:00Z"}, ["s1", "s3"]),
    ("Encounter", {"patient": P1, "date": "ge2026-11-05"}, ["s2"]),
    ("Encounter", {"status": "planned"}, ["s3"]),
    ("Encounter", {"patient": P1, "status": "finished"}, ["s1", "s2"]),
    ("Encounter", {"class": "AMB"}, ["s1", "s2", "s3"]),
    ("Encounter", {"class": "http://terminology.hl7.org/CodeSystem/v3-ActCode|AMB"}, ["s1", "s2", "s3"]),
    ("Encounter", {"class": "http://example.org|AMB"}, []),
    ("Encounter", {"patient": P2, "type": "0820T"}, []),
    ("Encounter", {"patient": P1, "type": "0820T"}, ["s1"]),
    # Observation
    ("Observation", {"patient": P1, "category": "vital-signs"}, VITALS_P1),
    ("Observation", {"subject": f"Patient/{P1}", "category": "vital-signs"}, VITALS_P1),
    (
        "Observation",
        {"patient": P1, "category": "http://terminology.hl7.org/CodeSystem/observation-category|vital-signs"},
        VITALS_P1,
    ),
    ("Observation", {"patient": P2, "category": "vital-signs"}, ["v3#heart-rate"]),
    ("Observation", {"category": "survey"}, ["a1#total", *PHQ9_ITEMS]),
    ("Observation", {"code": "8867-4"}, ["v1#heart-rate", "v2#heart-rate", "v3#heart-rate"]),
    ("Observation", {"code": "http://loinc.org|85354-9"}, ["v1#bp"]),
    ("Observation", {"code": "http://loinc.org|8867-4,http://loinc.org|85354-9", "patient": P1}, VITALS_P1),
    ("Observation", {"code": "http://snomed.info/sct|8867-4"}, []),
    ("Observation", {"patient": P1, "code": "8867-4", "date": "ge2026-11-02T10:30:00Z"}, ["v2#heart-rate"]),
    ("Observation", {"patient": P1, "category": "vital-signs", "date": "2026-11-02"}, VITALS_P1),
    ("Observation", {"patient": P1, "category": "vital-signs", "date": "lt2026-11-02T10:05:00Z"}, []),
    (
        "Observation",
        {"patient": P1, "category": "vital-signs", "date": "le2026-11-02T10:05:00Z"},
        ["v1#bp", "v1#heart-rate"],
    ),
    ("Observation", {"patient": P1, "category": "vital-signs", "status": "final"}, VITALS_P1),
    ("Observation", {"patient": P1, "category": "survey", "code": "44261-6"}, ["a1#total"]),
    # MedicationAdministration
    ("MedicationAdministration", {"patient": P1}, ["d1"]),
    ("MedicationAdministration", {"patient": P2}, []),
    ("MedicationAdministration", {"effective-time": "ge2026-11-02T10:00:00Z"}, ["d1"]),
    ("MedicationAdministration", {"effective-time": "lt2026-11-02"}, []),
    ("MedicationAdministration", {"effective-time": "2026-11-02"}, ["d1"]),
    ("MedicationAdministration", {"patient": P1, "status": "completed"}, ["d1"]),
    ("MedicationAdministration", {"status": "in-progress"}, []),
    # QuestionnaireResponse
    ("QuestionnaireResponse", {"patient": P1}, ["a1"]),
    ("QuestionnaireResponse", {"authored": "2026-11-01"}, ["a1"]),
    ("QuestionnaireResponse", {"authored": "gt2026-11-01"}, []),
    ("QuestionnaireResponse", {"questionnaire": "http://loinc.org/q/44249-1"}, ["a1"]),
    ("QuestionnaireResponse", {"patient": P1, "questionnaire": "http://loinc.org/q/69737-5"}, []),
    # Procedure
    ("Procedure", {"patient": P1}, ["d1#infusion", "s1#procedure", "s2#procedure"]),
    ("Procedure", {"patient": P1, "date": "2026-11-02"}, ["d1#infusion", "s1#procedure"]),
    ("Procedure", {"patient": P1, "date": "ge2026-11-03"}, ["s2#procedure"]),
    ("Procedure", {"patient": P1, "code": "96365"}, ["d1#infusion"]),
    ("Procedure", {"patient": P1, "code": "96365", "date": "lt2026-11-01"}, []),
    # AdverseEvent, Practitioner
    ("AdverseEvent", {"subject": P1}, ["ae1"]),
    ("AdverseEvent", {"subject": P2}, []),
    ("Practitioner", {"name": "doe"}, ["dr1"]),
    ("Practitioner", {"name": "jane"}, []),
    ("Practitioner", {"identifier": "http://hl7.org/fhir/sid/us-npi|1234567893"}, ["dr1"]),
]


@pytest.mark.parametrize("resource_type", sorted({t for t, _, _ in CASES}))
def test_search_matches_exactly(small_clinic, fhir, client, ehr_token, resource_type) -> None:
    """Every case of the type, by GET and by POST _search (one clinic per type: loading it costs more
    than the searches)."""
    failures = []
    for case_type, params, expected in CASES:
        if case_type != resource_type:
            continue
        response = fhir(resource_type, params={**params, "_total": "accurate"})
        assert response.status_code == 200, (params, response.text)
        assert response.headers["content-type"].startswith(FHIR_JSON)
        bundle = response.json()
        assert bundle["type"] == "searchset"
        assert {e["resource"]["resourceType"] for e in bundle.get("entry", [])} <= {resource_type}
        posted = client.post(
            f"/fhir/{resource_type}/_search",
            data={**params, "_total": "accurate"},
            headers={"Authorization": f"Bearer {ehr_token}"},
        )
        assert posted.status_code == 200, (params, posted.text)
        got = (keys(bundle), bundle["total"], keys(posted.json()))
        if got != (sorted(expected), len(expected), sorted(expected)):
            failures.append((params, expected, got))
    assert not failures


def test_provenance_by_target_and_patient(small_clinic, fhir) -> None:
    by_target = fhir("Provenance", params={"target": f"Patient/{P1}"}).json()
    assert by_target["entry"]
    for entry in by_target["entry"]:
        assert f"Patient/{P1}" in {t["reference"] for t in entry["resource"]["target"]}
    by_patient = fhir("Provenance", params={"patient": P1}).json()
    assert {e["resource"]["id"] for e in by_patient["entry"]} == {
        e["resource"]["id"] for e in by_target["entry"]
    }


def test_summary_count_and_total(small_clinic, fhir) -> None:
    counted = fhir("Observation", params={"patient": P1, "_summary": "count"}).json()
    assert counted["total"] == 13 and "entry" not in counted
    assert "total" not in fhir("Observation", params={"patient": P1}).json()  # _total=none is the default


def test_include_patient_and_revinclude_provenance(small_clinic, fhir) -> None:
    bundle = fhir(
        "Observation",
        params={"patient": P1, "category": "vital-signs", "_include": "Observation:patient",
                "_revinclude": "Provenance:target"},
    ).json()  # fmt: skip
    included = [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "include"]
    assert [r["id"] for r in included if r["resourceType"] == "Patient"] == [P1]
    provenance = [r for r in included if r["resourceType"] == "Provenance"]
    matched = {
        f"Observation/{e['resource']['id']}" for e in bundle["entry"] if e["search"]["mode"] == "match"
    }
    assert provenance
    for resource in provenance:
        assert {t["reference"] for t in resource["target"]} & matched
    covered = set().union(*({t["reference"] for t in r["target"]} for r in provenance))
    assert matched <= covered


@pytest.mark.parametrize(
    ("resource_type", "include", "target"),
    [
        pytest.param("Encounter", "Encounter:subject", "Patient", id="encounter-subject"),
        pytest.param("Encounter", "Encounter:practitioner", "Practitioner", id="encounter-practitioner"),
        pytest.param(
            "MedicationAdministration", "MedicationAdministration:subject", "Patient", id="ma-subject"
        ),
        pytest.param("Observation", "Observation:subject:Patient", "Patient", id="typed"),
        pytest.param("Observation", "*", "Patient", id="wildcard"),
    ],
)
def test_include_references(small_clinic, fhir, resource_type: str, include: str, target: str) -> None:
    bundle = fhir(resource_type, params={"patient": P1, "_include": include}).json()
    included = {e["resource"]["resourceType"] for e in bundle["entry"] if e["search"]["mode"] == "include"}
    assert target in included


def test_sort_by_date_and_last_updated(small_clinic, fhir) -> None:
    ascending = fhir("Observation", params={"code": "8867-4", "_sort": "date"}).json()
    assert keys(ascending) == ["v1#heart-rate", "v2#heart-rate", "v3#heart-rate"]
    order = [e["resource"]["effectiveDateTime"] for e in ascending["entry"]]
    assert order == sorted(order)
    descending = fhir("Observation", params={"code": "8867-4", "_sort": "-date"}).json()
    assert [e["resource"]["effectiveDateTime"] for e in descending["entry"]] == sorted(order, reverse=True)
    updated = fhir("Patient", params={"_sort": "-_lastUpdated"}).json()
    stamps = [e["resource"]["meta"]["lastUpdated"] for e in updated["entry"]]
    assert stamps == sorted(stamps, reverse=True)


def test_sorted_pages_cover_everything_once(small_clinic, fhir) -> None:
    for sort in ("date", "-date", "_lastUpdated", "-_lastUpdated", "_id"):
        seen: list[str] = []
        params: dict[str, str] | None = {"patient": P1, "_sort": sort, "_count": "2"}
        path = "Observation"
        for _ in range(100):  # 13 matches, 2 a page: a next link that never ends fails below
            if not path:
                break
            bundle = fhir(path, params=params).json()
            seen += [e["resource"]["id"] for e in bundle.get("entry", [])]
            link = next((lk["url"] for lk in bundle["link"] if lk["relation"] == "next"), None)
            path, params = (link.split("/fhir/", 1)[1], None) if link else ("", None)
        assert len(seen) == len(set(seen)) == 13, sort


@pytest.mark.parametrize(
    ("params", "expression"),
    [
        pytest.param({"birthdate": "ge1980-13"}, "birthdate", id="bad-date"),
        pytest.param({"_count": "many"}, "_count", id="bad-count"),
        pytest.param({"_sort": "name"}, "_sort", id="unsortable"),
        pytest.param({"_include": "Patient:nothing"}, "_include", id="bad-include"),
        pytest.param({"_total": "some"}, "_total", id="bad-total"),
        pytest.param({"_cursor": "not-a-cursor"}, "_cursor", id="bad-cursor"),
    ],
)
def test_bad_parameters_are_400(small_clinic, fhir, params: dict, expression: str) -> None:
    response = fhir("Patient", params=params)
    assert response.status_code == 400, response.text
    issue = response.json()["issue"][0]
    assert issue["expression"] == [expression]


def test_unknown_parameters_are_ignored_unless_strict(small_clinic, fhir) -> None:
    lenient = fhir("Patient", params={"shoe-size": "42", "gender": "male"})
    assert lenient.status_code == 200
    bundle = lenient.json()
    assert keys(bundle) == ["p2", "p3"]
    outcome = [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert "shoe-size" in outcome[0]["resource"]["issue"][0]["diagnostics"]
    assert "shoe-size" not in next(lk["url"] for lk in bundle["link"] if lk["relation"] == "self")
    strict = fhir("Patient", params={"shoe-size": "42"}, headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400
    assert strict.json()["issue"][0]["code"] == "not-supported"
    assert strict.json()["issue"][0]["expression"] == ["shoe-size"]
    modifier = fhir("Patient", params={"gender:not": "male"}, headers={"Prefer": "handling=strict"})
    assert modifier.status_code == 400


def test_count_default_and_maximum(small_clinic, fhir) -> None:
    assert len(fhir("Observation", params={"_count": "1"}).json()["entry"]) == 1
    assert len(fhir("Observation").json()["entry"]) == 14  # under the default of 50
    capped = fhir("Observation", params={"_count": "5000"}).json()
    self_link = next(lk["url"] for lk in capped["link"] if lk["relation"] == "self")
    assert "_count=5000" in self_link and len(capped["entry"]) == 14


def test_a_cursor_of_another_search_is_refused(small_clinic, fhir) -> None:
    first = fhir("Observation", params={"_count": "1"}).json()
    link = next(lk["url"] for lk in first["link"] if lk["relation"] == "next")
    cursor = link.split("_cursor=", 1)[1]
    response = fhir("Observation", params={"_count": "1", "code": "8867-4", "_cursor": cursor})
    assert response.status_code == 400
