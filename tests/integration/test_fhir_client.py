"""An independent FHIR client (fhirpy, from PyPI) reads and searches the demo clinic over real HTTP.

The gateway runs on uvicorn on a free port of 127.0.0.1 (tests/support/live_server.py); fhirpy builds its
own requests, parses the Bundles and follows ``Bundle.link[next]`` itself, so paging, search parameters,
includes and reads are judged by code that shares nothing with the gateway.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
import requests
from fhirpy import SyncFHIRClient
from support.live_server import LiveServer, live_server
from support.tokens import write_token

from gateway.core.config import Settings
from gateway.db.engine import Session
from gateway.demo import load_demo

pytestmark = pytest.mark.integration

PATIENTS = 6


@pytest.fixture
def server(settings: Settings) -> Iterator[LiveServer]:
    with live_server(settings) as running:
        with Session(running.app.state.engine) as session:
            load_demo(session, settings, slug="demo", patients=PATIENTS, seed=3, start=date(2026, 1, 5))
        yield running


@pytest.fixture
def fhir(server: LiveServer, settings: Settings) -> SyncFHIRClient:
    token = write_token(server.app.state.engine, settings, clinics=("demo",))
    # the gateway names itself by its configured base URL (http://testserver); fhirpy treats it as this server
    return SyncFHIRClient(
        f"{server.base_url}/fhir",
        authorization=f"Bearer {token}",
        url_aliases=[settings.fhir_base_url],
        extra_headers={"Accept": "application/fhir+json"},
    )


def test_capability_statement(server: LiveServer) -> None:
    response = requests.get(f"{server.base_url}/fhir/metadata", timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert response.json()["fhirVersion"] == "4.0.1"


def test_fhirpy_reads_and_searches_the_demo_clinic(fhir: SyncFHIRClient) -> None:
    patients = fhir.resources("Patient").fetch_all()
    assert len(patients) == PATIENTS
    assert fhir.resources("Patient").count() == PATIENTS
    first = patients[0]
    read = fhir.reference("Patient", first.id).to_resource()
    assert read.id == first.id and read["name"] == first["name"]
    family = first["name"][0]["family"]
    by_family = fhir.resources("Patient").search(family=family).fetch_all()
    assert first.id in {p.id for p in by_family}
    assert all(p["name"][0]["family"].lower().startswith(family.lower()) for p in by_family)
    by_gender = fhir.resources("Patient").search(gender=first["gender"]).fetch_all()
    assert all(p["gender"] == first["gender"] for p in by_gender)

    vitals = fhir.resources("Observation").search(patient=first.id, category="vital-signs")
    everything = vitals.limit(1000).fetch()
    paged = vitals.limit(7).fetch_all()  # fhirpy follows link[next], page after page
    assert len(everything) > 7
    assert sorted(o.id for o in paged) == sorted(o.id for o in everything)
    for observation in paged:
        assert observation["subject"]["reference"] == f"Patient/{first.id}"
        codes = {c["code"] for cat in observation["category"] for c in cat["coding"]}
        assert "vital-signs" in codes
    assert vitals.count() == len(everything)

    heart_rates = fhir.resources("Observation").search(patient=first.id, code="http://loinc.org|8867-4")
    dated = heart_rates.search(date__ge="2026-02-01").fetch_all()
    assert all(o["effectiveDateTime"] >= "2026-02-01" for o in dated)

    with_patient = fhir.resources("Observation").search(patient=first.id).include("Observation", "patient")
    raw = with_patient.limit(5).fetch_raw()
    included = [e["resource"] for e in raw["entry"] if e["search"]["mode"] == "include"]
    assert [r["id"] for r in included] == [first.id]

    encounters = fhir.resources("Encounter").search(patient=f"Patient/{first.id}").fetch_all()
    assert encounters and all(e["subject"]["reference"] == f"Patient/{first.id}" for e in encounters)
    observation = fhir.reference("Observation", everything[0].id).to_resource()
    assert observation["meta"]["versionId"]
