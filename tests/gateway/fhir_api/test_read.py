"""read, vread, history, ETag / If-None-Match, deleted resources, errors, definitions, metadata."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.gateway.fhir_api.fhir_data import FHIR_JSON, fhir_id

P1 = fhir_id("clinic-a", "patients", "p1")
P3 = fhir_id("clinic-a", "patients", "p3")


def assert_outcome(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == code, body
    return body


def test_read_serves_the_stored_resource_with_etag_and_last_modified(small_clinic, fhir) -> None:
    response = fhir(f"Patient/{P1}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(FHIR_JSON)
    body = response.json()
    assert body["resourceType"] == "Patient" and body["id"] == P1
    assert body["name"][0]["family"] == "Lovelace"
    assert response.headers["etag"] == f'W/"{body["meta"]["versionId"]}"'
    assert response.headers["last-modified"].endswith(" GMT")


def test_if_none_match_answers_304_until_the_resource_changes(small_clinic, fhir) -> None:
    etag = fhir(f"Patient/{P1}").headers["etag"]
    assert fhir(f"Patient/{P1}", headers={"If-None-Match": etag}).status_code == 304
    assert fhir(f"Patient/{P1}", headers={"If-None-Match": 'W/"99"'}).status_code == 200
    changed = {"given_name": "Ada", "family_name": "King", "birth_date": "1980-03-04", "sex": "female"}
    assert small_clinic.put("patients", "p1", changed).status_code == 200
    response = fhir(f"Patient/{P1}", headers={"If-None-Match": etag})
    assert response.status_code == 200
    assert response.json()["name"][0]["family"] == "King"
    assert response.headers["etag"] != etag


def test_vread_and_instance_history_show_every_version(small_clinic, fhir) -> None:
    changed = {"given_name": "Ada", "family_name": "King", "birth_date": "1980-03-04", "sex": "female"}
    small_clinic.put("patients", "p1", changed)
    first = fhir(f"Patient/{P1}/_history/1")
    assert first.status_code == 200 and first.json()["name"][0]["family"] == "Lovelace"
    assert first.headers["etag"] == 'W/"1"'
    assert fhir(f"Patient/{P1}/_history/2").json()["name"][0]["family"] == "King"
    assert_outcome(fhir(f"Patient/{P1}/_history/3"), 404, "not-found")
    history = fhir(f"Patient/{P1}/_history").json()
    assert history["type"] == "history"
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["2", "1"]
    assert [e["request"]["method"] for e in history["entry"]] == ["PUT", "POST"]
    paged = fhir(f"Patient/{P1}/_history", params={"_count": 1}).json()
    assert len(paged["entry"]) == 1
    next_url = next(link["url"] for link in paged["link"] if link["relation"] == "next")
    second = fhir(next_url.split("/fhir/", 1)[1]).json()
    assert [e["resource"]["meta"]["versionId"] for e in second["entry"]] == ["1"]


def test_a_deleted_resource_answers_410_and_keeps_its_history(small_clinic, fhir) -> None:
    assert small_clinic.http.delete("/api/v1/patients/p3", headers=small_clinic.headers).status_code in (
        200,
        204,
    )
    assert_outcome(fhir(f"Patient/{P3}"), 410, "deleted")
    history = fhir(f"Patient/{P3}/_history").json()
    assert history["entry"][0]["request"]["method"] == "DELETE"
    assert "resource" not in history["entry"][0]
    assert history["entry"][-1]["resource"]["name"][0]["family"] == "Zola"
    assert fhir(f"Patient/{P3}/_history/1").status_code == 200
    assert_outcome(fhir(f"Patient/{P3}/_history/2"), 410, "deleted")
    assert P3 not in {e["resource"]["id"] for e in fhir("Patient").json()["entry"]}


def test_entered_in_error_versions_stay_readable(small_clinic, fhir) -> None:
    encounter = fhir(
        "Encounter", params={"identifier": "https://gateway.test/id/clinic-a/sessions|s2"}
    ).json()
    encounter_id = encounter["entry"][0]["resource"]["id"]
    assert small_clinic.http.delete("/api/v1/sessions/s2", headers=small_clinic.headers).status_code in (
        200,
        204,
    )
    current = fhir(f"Encounter/{encounter_id}").json()
    assert current["status"] == "entered-in-error"
    history = fhir(f"Encounter/{encounter_id}/_history").json()
    assert [e["resource"]["status"] for e in history["entry"]] == ["entered-in-error", "finished"]


def test_type_history_with_since(small_clinic, fhir) -> None:
    everything = fhir("Patient/_history").json()
    assert everything["type"] == "history"
    assert len(everything["entry"]) == 3
    latest = max(datetime.fromisoformat(e["response"]["lastModified"]) for e in everything["entry"])
    after = (latest + timedelta(milliseconds=1)).isoformat()
    changed = {"given_name": "Alan", "family_name": "T.", "birth_date": "1975-06-23", "sex": "male"}
    small_clinic.put("patients", "p2", changed)
    since = fhir("Patient/_history", params={"_since": after}).json()
    families = [e["resource"]["name"][0]["family"] for e in since["entry"]]
    assert "T." in families and "Zola" not in families


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        pytest.param("Device/x", 400, "not-supported", id="unknown-type-read"),
        pytest.param("Device", 400, "not-supported", id="unknown-type-search"),
        pytest.param("Patient/not-there", 404, "not-found", id="unknown-id"),
        pytest.param(f"Patient/{P1}/_history/x", 404, "not-found", id="bad-version"),
    ],
)
def test_errors_are_operation_outcomes(small_clinic, fhir, path: str, status: int, code: str) -> None:
    assert_outcome(fhir(path), status, code)


def test_no_token_is_401_with_www_authenticate(small_clinic, client) -> None:
    response = client.get(f"/fhir/Patient/{P1}")
    assert_outcome(response, 401, "login")
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_clinic_records_token_cannot_read_fhir(small_clinic, client) -> None:
    assert_outcome(client.get(f"/fhir/Patient/{P1}", headers=small_clinic.headers), 403, "forbidden")


def test_types_outside_the_scopes_are_403(small_clinic, client, fhir_token) -> None:
    token = fhir_token("system/Observation.rs")
    headers = {"Authorization": f"Bearer {token}"}
    assert_outcome(client.get(f"/fhir/Patient/{P1}", headers=headers), 403, "forbidden")
    assert_outcome(client.get("/fhir/Patient", headers=headers), 403, "forbidden")
    assert client.get("/fhir/Observation", headers=headers).status_code == 200


def test_another_clinics_resources_are_not_found(small_clinic, make_clinic, client, fhir_token) -> None:
    make_clinic("clinic-b")
    token = fhir_token(clinics=("clinic-b",))
    headers = {"Authorization": f"Bearer {token}"}
    assert_outcome(client.get(f"/fhir/Patient/{P1}", headers=headers), 404, "not-found")
    assert "entry" not in client.get("/fhir/Patient", headers=headers).json()


def test_every_full_url_of_the_records_api_resolves(small_clinic, fhir) -> None:
    kinds = [("patients", "p1"), ("sessions", "s1"), ("vitals", "v1"), ("doses", "d1"),
             ("assessments", "a1"), ("adverse-events", "ae1"), ("practitioners", "dr1")]  # fmt: skip
    seen = 0
    for kind, external_id in kinds:
        bundle = small_clinic.get(f"/api/v1/{kind}/{external_id}/fhir").json()
        for entry in bundle["entry"]:
            path = entry["fullUrl"].split("/fhir/", 1)[1]
            response = fhir(path)
            assert response.status_code == 200, (path, response.text)
            assert response.json() == entry["resource"]
            seen += 1
    assert seen >= 10


@pytest.mark.parametrize(
    ("path", "url"),
    [
        pytest.param("CodeSystem/kap-instruments", "https://kap-gateway.org/fhir/CodeSystem/kap-instruments", id="instruments"),
        pytest.param("CodeSystem/kap-flags", "https://kap-gateway.org/fhir/CodeSystem/kap-flags", id="flags"),
        pytest.param("CodeSystem/kap-adverse-events", "https://kap-gateway.org/fhir/CodeSystem/kap-adverse-events", id="adverse-events"),
        pytest.param("StructureDefinition/dosing-phase", "https://kap-gateway.org/fhir/StructureDefinition/dosing-phase", id="dosing-phase"),
        pytest.param("Questionnaire/phq9", "http://loinc.org/q/44249-1", id="phq9"),
        pytest.param("Questionnaire/madrs", "https://kap-gateway.org/fhir/Questionnaire/madrs", id="madrs"),
    ],
)  # fmt: skip
def test_local_definitions_resolve(small_clinic, fhir, path: str, url: str) -> None:
    response = fhir(path)
    assert response.status_code == 200, response.text
    assert response.json()["url"] == url
    found = fhir(path.split("/")[0], params={"url": url}).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [path.split("/")[1]]


def test_codes_the_resources_use_are_defined(small_clinic, fhir) -> None:
    """Every local code in served resources is a concept of the served CodeSystem."""
    systems = {
        cs["resource"]["url"]: {c["code"] for c in cs["resource"]["concept"]}
        for cs in fhir("CodeSystem").json()["entry"]
    }
    used: set[tuple[str, str]] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            if node.get("system") in systems and "code" in node:
                used.add((node["system"], node["code"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for resource_type in ("Observation", "AdverseEvent", "QuestionnaireResponse"):
        walk(fhir(resource_type).json())
    assert used, "the demo records use local codes"
    assert all(code in systems[system] for system, code in used)


def test_every_questionnaire_a_response_names_is_served(small_clinic, fhir) -> None:
    responses = fhir("QuestionnaireResponse").json()["entry"]
    for entry in responses:
        url = entry["resource"]["questionnaire"]
        found = fhir("Questionnaire", params={"url": url}).json()
        assert len(found["entry"]) == 1


def test_metadata_is_a_capability_statement(small_clinic, client) -> None:
    response = client.get("/fhir/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(FHIR_JSON)
    statement = response.json()
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1"
    assert "application/fhir+json" in statement["format"]
    rest = statement["rest"][0]
    types = {r["type"]: r for r in rest["resource"]}
    assert {
        "Patient",
        "Observation",
        "Encounter",
        "Questionnaire",
        "CodeSystem",
        "StructureDefinition",
    } <= set(types)
    patient = types["Patient"]
    assert "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient" in patient["supportedProfile"]
    assert {"read", "vread", "history-instance", "history-type", "search-type"} <= {
        i["code"] for i in patient["interaction"]
    }
    assert {"_id", "identifier", "name", "family", "given", "birthdate", "gender"} <= {
        p["name"] for p in patient["searchParam"]
    }
    assert patient["operation"][0]["name"] == "everything"
    assert "Provenance:target" in types["Observation"]["searchRevInclude"]
    assert "kap-instruments" in statement["description"]
    assert rest["security"]["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    oauth = rest["security"]["extension"][0]
    assert oauth["url"] == "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
    uris = {e["url"]: e["valueUri"] for e in oauth["extension"]}
    smart = client.get("/fhir/.well-known/smart-configuration").json()
    assert uris["token"] == smart["token_endpoint"]
    assert uris["authorize"] == smart["authorization_endpoint"]
