"""Group read and search for Bulk Data clients: each clinic's own Group and the ad-hoc ones, for the
clinics the token may see only."""

from __future__ import annotations

from sqlmodel import Session

from gateway.bulk.groups import create_group
from gateway.core.ids import resource_id

from .conftest import FHIR_JSON, auth, store_rows


def test_read_the_clinic_group(demo, token, client, engine) -> None:
    response = client.get("/fhir/Group/demo", headers=auth(token))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(FHIR_JSON)
    group = response.json()
    patients = {rid for t, rid in store_rows(engine, "demo", ("Patient",))}
    assert group["resourceType"] == "Group" and group["type"] == "person" and group["actual"] is True
    assert group["quantity"] == len(patients) >= 2
    assert {m["entity"]["reference"] for m in group["member"]} == {f"Patient/{p}" for p in patients}
    assert group["identifier"][0]["value"] == "demo"


def test_search_by_identifier_and_name(demo, token, client, engine) -> None:
    with Session(engine) as session:
        patient = next(rid for t, rid in store_rows(engine, "demo", ("Patient",)))
        create_group(
            session, clinic_slug="demo", name="Registry cohort", patients=[patient], group_id="cohort"
        )
    everything = client.get("/fhir/Group", headers=auth(token)).json()
    assert everything["type"] == "searchset"
    assert [e["resource"]["id"] for e in everything["entry"]] == ["cohort", "demo"]
    system = everything["entry"][0]["resource"]["identifier"][0]["system"]
    by_identifier = client.get(
        "/fhir/Group", params={"identifier": f"{system}|cohort"}, headers=auth(token)
    ).json()
    assert [e["resource"]["id"] for e in by_identifier["entry"]] == ["cohort"]
    assert by_identifier["entry"][0]["resource"]["member"] == [
        {"entity": {"reference": f"Patient/{patient}"}}
    ]
    by_name = client.get("/fhir/Group", params={"name": "registry"}, headers=auth(token)).json()
    assert by_name["total"] == 1
    unknown = client.get("/fhir/Group", params={"member": "x"}, headers=auth(token))
    assert unknown.status_code == 400


def test_groups_of_other_clinics_do_not_exist(demo, token, client, engine) -> None:
    with Session(engine) as session:
        other_patient = next(rid for t, rid in store_rows(engine, "other", ("Patient",)))
        create_group(session, clinic_slug="other", name="theirs", patients=[other_patient], group_id="theirs")
    for group_id in ("other", "theirs"):
        response = client.get(f"/fhir/Group/{group_id}", headers=auth(token))
        assert response.status_code == 404
        assert response.json()["issue"][0]["code"] == "not-found"
    ids = [e["resource"]["id"] for e in client.get("/fhir/Group", headers=auth(token)).json()["entry"]]
    assert ids == ["demo"]


def test_group_needs_a_scope_that_covers_it(demo, make_token, client) -> None:
    response = client.get("/fhir/Group/demo", headers=auth(make_token("system/Patient.read")))
    assert response.status_code == 403
    assert resource_id("demo", "patients", "x")  # ids are deterministic (used by the CLI's member lookup)
