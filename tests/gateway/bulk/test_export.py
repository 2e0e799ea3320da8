"""What an export contains: exactly the store's current resources the token may read, nothing of other
clinics, the stored bytes unchanged, one type per file; Patient and Group compartments; _type, _since,
_typeFilter; the store as of the transaction time."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from fhir.resources.R4B import get_fhir_model_class
from sqlalchemy import text, update
from sqlmodel import col

from gateway.bulk.compartment import COMPARTMENT_TYPES
from gateway.bulk.groups import create_group
from gateway.core.ids import resource_id
from gateway.db.engine import Session
from gateway.db.tables import ResourceRow

from .conftest import ASYNC, auth, drain, local, store_rows


def test_system_export_is_exactly_the_clinics_current_resources(demo, token, export, engine) -> None:
    result = export("$export", token)
    expected = store_rows(engine, "demo")
    keys = result.ids()
    assert len(keys) == len(set(keys)), "a resource was written twice"
    assert set(keys) == set(expected)
    # served as stored: every line is the stored JSON, byte for byte
    lines = {}
    for content in result.raw.values():
        for line in content.split(b"\n")[:-1]:
            resource = orjson.loads(line)
            lines[(resource["resourceType"], resource["id"])] = line
    assert lines == expected
    types = [item["type"] for item in result.manifest["output"]]
    assert set(types) == {t for t, _ in expected}
    assert max(item["count"] for item in result.manifest["output"]) <= 150  # split into several files


def test_every_line_is_a_valid_resource_of_its_type(demo, token, export) -> None:
    result = export("$export", token, {"_type": "Patient,Observation,Encounter,MedicationAdministration"})
    for item in result.manifest["output"]:
        model = get_fhir_model_class(item["type"])
        for resource in result.files[item["url"]]:
            model.model_validate(resource)


def test_other_clinics_never_leak(demo, make_token, export, engine) -> None:
    other = store_rows(engine, "other")
    result = export("$export", make_token(clinics=("demo",)))
    assert not set(result.ids()) & set(other)
    both = export("$export", make_token(clinics=("demo", "other")))
    assert set(both.ids()) == set(store_rows(engine, "demo")) | set(other)


def test_scopes_limit_types_and_constraints(demo, make_token, export, engine) -> None:
    result = export("$export", make_token("system/Patient.read system/Encounter.rs"))
    assert {t for t, _ in result.ids()} == {"Patient", "Encounter"}
    assert set(result.ids()) == set(store_rows(engine, "demo", ("Patient", "Encounter")))

    vital = "http://terminology.hl7.org/CodeSystem/observation-category|vital-signs"
    constrained = export("$export", make_token(f"system/Observation.rs?category={vital}"))
    query = (
        "SELECT r.resource_id FROM resource r JOIN clinic c ON c.id = r.clinic_pk"
        " JOIN search_token t ON t.resource_pk = r.id AND t.param = 'category' AND t.code = 'vital-signs'"
        " WHERE c.slug = 'demo' AND r.resource_type = 'Observation' AND r.deleted = :no"
    )
    with engine.connect() as connection:
        vitals = {("Observation", r.resource_id) for r in connection.execute(text(query), {"no": False})}
    assert vitals and set(constrained.ids()) == vitals
    assert len(vitals) < len(store_rows(engine, "demo", ("Observation",)))


def test_type_list_may_repeat_and_is_merged(demo, token, export, engine) -> None:
    result = export(
        "$export", token, [("_type", "Patient,Encounter"), ("_type", "Flag"), ("_type", "Patient")]
    )
    assert {t for t, _ in result.ids()} <= {"Patient", "Encounter", "Flag"}
    assert set(result.ids()) == set(store_rows(engine, "demo", ("Patient", "Encounter", "Flag")))


def in_compartment(resource_type: str, content: bytes, patient_ids: set[str]) -> bool:
    """Read off the JSON (the export itself uses the search index): a member Patient, or a resource of a
    compartment type that references one."""
    resource = orjson.loads(content)
    if resource_type == "Patient":
        return resource["id"] in patient_ids
    return resource_type in COMPARTMENT_TYPES and any(
        f'"Patient/{p}"' in content.decode() for p in patient_ids
    )


def test_patient_export_writes_patient_compartments(demo, token, export, engine) -> None:
    result = export("Patient/$export", token)
    stored = store_rows(engine, "demo")
    patients = {rid for t, rid in stored if t == "Patient"}
    expected = {key for key, content in stored.items() if in_compartment(key[0], content, patients)}
    assert set(result.ids()) == expected
    assert {t for t, _ in result.ids()} <= set(COMPARTMENT_TYPES)
    # Provenance of practitioner records is outside every patient's compartment
    assert {k for k in stored if k[0] == "Provenance"} - expected


def test_clinic_group_and_ad_hoc_group(demo, token, export, engine) -> None:
    whole = export("Group/demo/$export", token)
    stored = store_rows(engine, "demo")
    patients = {rid for t, rid in stored if t == "Patient"}
    assert len(patients) == 3
    assert set(whole.ids()) == {k for k, c in stored.items() if in_compartment(k[0], c, patients)}

    with Session(engine) as session:
        external = [
            row[0]
            for row in session.connection().execute(
                text("SELECT external_id FROM record WHERE kind = 'patients' ORDER BY external_id")
            )
        ]
        members = [e for e in external if resource_id("demo", "patients", e) in patients][:2]
        create_group(session, clinic_slug="demo", name="two", patients=members, group_id="two-patients")
    member_ids = {resource_id("demo", "patients", e) for e in members}
    group = export("Group/two-patients/$export", token)
    assert {r["id"] for r in group.resources() if r["resourceType"] == "Patient"} == member_ids
    assert set(group.ids()) == {k for k, c in stored.items() if in_compartment(k[0], c, member_ids)}
    assert set(group.ids()) < set(whole.ids())


@pytest.mark.parametrize("group", ["other", "no-such-group"])
def test_group_outside_the_grants_is_not_found(demo, token, client, group) -> None:
    response = client.get(f"/fhir/Group/{group}/$export", headers=auth(token, **ASYNC))
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert response.json()["issue"][0]["code"] == "not-found"


def test_since_returns_only_later_changes(demo, token, export, engine, client, settings) -> None:
    first = export("$export", token)
    since = first.manifest["transactionTime"]
    with engine.begin() as connection:
        external = connection.execute(
            text("SELECT external_id, data FROM record WHERE kind = 'patients' ORDER BY external_id")
        ).first()
    from gateway.clinic_api import services
    from gateway.db.repositories.clinics import get_clinic

    with Session(engine) as session:
        clinic = get_clinic(session, slug="demo")
        scope = services.ClinicScope(pk=clinic.id, slug=clinic.slug, name=clinic.name)
        record = dict(external.data if isinstance(external.data, dict) else orjson.loads(external.data))
        record["phone"] = "+1-555-0100"
        services.run_batch(
            session,
            settings,
            clinic=scope,
            entries=[services.BatchEntry("patients", external.external_id, record)],
        )
    later = export("$export", token, {"_since": since})
    keys = later.ids()
    assert ("Patient", resource_id("demo", "patients", external.external_id)) in keys
    cutoff = datetime.fromisoformat(since.replace("Z", "+00:00"))
    for resource in later.resources():
        assert datetime.fromisoformat(resource["meta"]["lastUpdated"].replace("Z", "+00:00")) > cutoff
    assert len(keys) < len(first.ids()) / 10
    assert {t for t, _ in keys} <= {"Patient", "Provenance"}


def test_type_filter(demo, token, export, engine) -> None:
    vital = "Observation?category=vital-signs"
    result = export("$export", token, {"_type": "Observation,Patient", "_typeFilter": vital})
    observations = [r for r in result.resources() if r["resourceType"] == "Observation"]
    assert observations
    for resource in observations:
        codes = {c["code"] for cat in resource["category"] for c in cat["coding"]}
        assert "vital-signs" in codes
    assert len(observations) < len(store_rows(engine, "demo", ("Observation",)))
    # a type without a filter is exported whole
    assert {k for k in result.ids() if k[0] == "Patient"} == set(store_rows(engine, "demo", ("Patient",)))


def test_export_is_the_store_as_of_the_transaction_time(demo, token, client, engine, settings) -> None:
    kicked = client.get("/fhir/$export", params={"_type": "Patient"}, headers=auth(token, **ASYNC))
    before = store_rows(engine, "demo", ("Patient",))
    # a patient changes after the kick-off, before the worker runs
    with engine.begin() as connection:
        row = connection.execute(
            text("SELECT id FROM resource WHERE resource_type = 'Patient' ORDER BY id")
        ).first()
        connection.execute(
            update(ResourceRow)
            .where(col(ResourceRow.id) == row.id)
            .values(content=b'{"resourceType":"Patient","id":"changed"}', last_updated=datetime.now(UTC))
        )
    drain(engine, settings)
    manifest = client.get(local(kicked.headers["Content-Location"]), headers=auth(token)).json()
    lines = []
    for item in manifest["output"]:
        lines += client.get(local(item["url"]), headers=auth(token)).content.split(b"\n")[:-1]
    assert sorted(lines) == sorted(before.values())


def test_patient_context_token_exports_only_its_patient(demo, make_token, export, engine) -> None:
    stored = store_rows(engine, "demo")
    patient = sorted(rid for t, rid in stored if t == "Patient")[0]
    result = export("Patient/$export", make_token("patient/*.read", patient=patient))
    assert {r["id"] for r in result.resources() if r["resourceType"] == "Patient"} == {patient}
    compartment = {k for k, c in stored.items() if in_compartment(k[0], c, {patient})}
    assert set(result.ids()) <= compartment
    assert {t for t, _ in result.ids()} >= {"Patient", "Observation", "Encounter"}
