"""SMART scopes and patient context bound every query: search, read, _include, _revinclude, $everything."""

from __future__ import annotations

import pytest

from tests.gateway.fhir_api.fhir_data import fhir_id

P1 = fhir_id("clinic-a", "patients", "p1")
P2 = fhir_id("clinic-a", "patients", "p2")


def getter(client, token: str):
    def get(path: str, **kwargs):
        return client.get(f"/fhir/{path}", headers={"Authorization": f"Bearer {token}"}, **kwargs)

    return get


def subjects(bundle: dict) -> set[str]:
    out = set()
    for entry in bundle.get("entry", []):
        resource = entry["resource"]
        if resource["resourceType"] == "Patient":
            out.add(f"Patient/{resource['id']}")
        for key in ("subject", "patient"):
            if isinstance(resource.get(key), dict):
                out.add(resource[key]["reference"])
    return out


def test_patient_context_sees_only_its_patient(small_clinic, client, fhir_token) -> None:
    get = getter(client, fhir_token("patient/*.read", patient=P1))
    assert [e["resource"]["id"] for e in get("Patient").json()["entry"]] == [P1]
    assert get(f"Patient/{P2}").status_code == 404
    vitals = get("Observation", params={"category": "vital-signs", "_include": "Observation:patient"}).json()
    assert len(vitals["entry"]) == 4  # three vitals of p1 and p1 itself
    assert subjects(vitals) == {f"Patient/{P1}"}
    other = get("Observation", params={"patient": P2}).json()
    assert "entry" not in other
    p2_observation = getter(client, fhir_token())("Observation", params={"patient": P2}).json()["entry"][0]
    assert get(f"Observation/{p2_observation['resource']['id']}").status_code == 404
    assert get(f"Patient/{P2}/$everything").status_code == 404
    everything = get(f"Patient/{P1}/$everything", params={"_count": "1000"}).json()
    assert subjects(everything) == {f"Patient/{P1}"}


def test_patient_scope_without_a_launch_patient_grants_nothing(small_clinic, client, fhir_token) -> None:
    get = getter(client, fhir_token("patient/*.read"))
    assert get("Patient").status_code == 403


def test_query_constrained_scopes_filter_search_and_read(small_clinic, client, fhir_token) -> None:
    get = getter(client, fhir_token("system/Observation.rs?category=vital-signs system/Patient.rs"))
    all_observations = getter(client, fhir_token())("Observation", params={"_count": "100"}).json()["entry"]
    bundle = get("Observation", params={"_count": "100"}).json()
    categories = {
        c["code"] for e in bundle["entry"] for cat in e["resource"]["category"] for c in cat["coding"]
    }
    assert categories == {"vital-signs"}
    assert len(bundle["entry"]) == 4
    assert "entry" not in get("Observation", params={"category": "survey"}).json()
    survey = next(
        e["resource"]
        for e in all_observations
        if e["resource"]["category"][0]["coding"][0]["code"] == "survey"
    )
    assert get(f"Observation/{survey['id']}").status_code == 404
    assert get(f"Observation/{survey['id']}/_history/1").status_code == 404
    assert get("Observation", params={"_summary": "count"}).json()["total"] == 4


def test_includes_never_leak_types_outside_the_scopes(small_clinic, client, fhir_token) -> None:
    get = getter(client, fhir_token("system/Observation.rs"))
    bundle = get(
        "Observation", params={"_include": "Observation:patient", "_revinclude": "Provenance:target"}
    ).json()
    assert {e["resource"]["resourceType"] for e in bundle["entry"]} == {"Observation"}
    assert get(f"Patient/{P1}/$everything").status_code == 403


def test_everything_keeps_to_the_scopes(small_clinic, client, fhir_token) -> None:
    get = getter(client, fhir_token("system/Patient.rs system/Observation.rs?category=vital-signs"))
    everything = get(f"Patient/{P1}/$everything", params={"_count": "1000"}).json()
    kinds = {e["resource"]["resourceType"] for e in everything["entry"]}
    assert kinds == {"Patient", "Observation"}
    assert len(everything["entry"]) == 4


def test_other_clinics_stay_invisible_to_includes(small_clinic, make_clinic, client, fhir_token) -> None:
    other = make_clinic("clinic-b")
    other.put(
        "patients",
        "p1",
        {"given_name": "Bea", "family_name": "Other", "birth_date": "1970-01-01", "sex": "female"},
    )
    get = getter(client, fhir_token(clinics=("clinic-a",)))
    bundle = get("Patient", params={"_revinclude": "Provenance:target", "_count": "100"}).json()
    names = {
        e["resource"]["name"][0]["family"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Patient"
    }
    assert "Other" not in names
    both = getter(client, fhir_token(clinics=("clinic-a", "clinic-b")))
    names = {e["resource"]["name"][0]["family"] for e in both("Patient").json()["entry"]}
    assert "Other" in names


def test_access_cache_keeps_a_token_for_its_ttl_only() -> None:
    from gateway.auth.scopes import ScopeSet
    from gateway.fhir_api.access import AccessCache, FhirAccess

    now = [100.0]
    cache = AccessCache(ttl=2.0, clock=lambda: now[0])
    calls: list[int] = []

    def resolve() -> FhirAccess:
        calls.append(1)
        return FhirAccess((1,), ScopeSet.of(["system/*.read"]))

    first = cache.get("Bearer a", resolve)
    assert cache.get("Bearer a", resolve) is first and len(calls) == 1
    now[0] += 2.5
    cache.get("Bearer a", resolve)
    assert len(calls) == 2

    def refuse() -> FhirAccess:
        calls.append(1)
        raise ValueError("bad token")

    for _ in range(2):  # an error is never cached
        with pytest.raises(ValueError):
            cache.get("Bearer b", refuse)
    assert len(calls) == 4


def test_a_revoked_token_stops_working_once_the_cache_expires(
    small_clinic, client, engine, fhir_token
) -> None:
    from sqlalchemy import update

    from gateway.db.tables import AccessTokenRow
    from gateway.fhir_api.access import AccessCache

    client.app.state.fhir_access_cache = AccessCache(ttl=0.0)
    token = fhir_token()
    get = getter(client, token)
    assert get(f"Patient/{P1}").status_code == 200
    with engine.begin() as connection:
        connection.execute(update(AccessTokenRow).values(revoked=True))
    assert get(f"Patient/{P1}").status_code == 401
