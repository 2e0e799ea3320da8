"""POST kick-off with a FHIR ``Parameters`` body (Bulk Data 2.0 export.md, "Bulk Data Kick-off Request") and
the ``patient`` parameter of Patient- and Group-level exports (POST only)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from gateway.bulk.groups import create_group
from gateway.core.ids import resource_id
from gateway.db.tables import BulkJobRow

from .conftest import ASYNC, FHIR_JSON, auth, local, store_rows
from .test_export import in_compartment
from .test_protocol import assert_outcome


def parameters(*pairs: tuple[str, str]) -> dict[str, Any]:
    """A Parameters resource: ``patient`` as valueReference, the others as valueString."""
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": name, "valueReference": {"reference": value}}
            if name == "patient"
            else {"name": name, "valueString": value}
            for name, value in pairs
        ],
    }


def post(client, token: str, path: str, body: Any, **headers: str):
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    sent = auth(token, **{**ASYNC, "Content-Type": FHIR_JSON, **headers})
    return client.post(f"/fhir/{path}", content=content, headers=sent)


def job_count(engine) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(BulkJobRow)).one()[0])  # type: ignore[call-overload]


def patient_ids(engine) -> list[str]:
    return sorted(rid for t, rid in store_rows(engine, "demo", ("Patient",)))


def test_post_exports_what_the_get_exports(demo, token, export) -> None:
    asked = [("_type", "Patient,Encounter"), ("_outputFormat", "ndjson"), ("_since", "2000-01-01T00:00:00Z")]
    by_get = export("$export", token, asked)
    by_post = export("$export", token, parameters=parameters(*asked))
    assert by_post.ids() and sorted(by_post.ids()) == sorted(by_get.ids())
    assert {t for t, _ in by_post.ids()} == {"Patient", "Encounter"}
    # a POST's request URL carries no parameters (export.md, the manifest's `request`)
    assert by_post.manifest["request"] == "http://testserver/fhir/$export"
    assert by_get.manifest["request"].startswith("http://testserver/fhir/$export?_type=")


@pytest.mark.parametrize(
    ("body", "content_type", "expression"),
    [
        pytest.param(b"{not json", FHIR_JSON, "body", id="not-json"),
        pytest.param({"resourceType": "Patient"}, FHIR_JSON, "Parameters", id="not-parameters"),
        pytest.param(parameters(("_type", "Patient")), "text/plain", "body", id="media-type"),
        pytest.param(
            {"resourceType": "Parameters", "parameter": {"name": "_type"}},
            FHIR_JSON,
            "Parameters.parameter",
            id="parameter-not-a-list",
        ),
        pytest.param(
            {"resourceType": "Parameters", "parameter": [{"valueString": "Patient"}]},
            FHIR_JSON,
            "Parameters.parameter[0]",
            id="no-name",
        ),
        pytest.param(
            {"resourceType": "Parameters", "parameter": [{"name": "_type"}]},
            FHIR_JSON,
            "Parameters.parameter[0]",
            id="no-value",
        ),
        pytest.param(
            {"resourceType": "Parameters", "parameter": [{"name": "_type", "valueInteger": 3}]},
            FHIR_JSON,
            "Parameters.parameter[0]",
            id="value-type",
        ),
        pytest.param(parameters(("_type", "Unicorn")), FHIR_JSON, "_type", id="unknown-type"),
        pytest.param(parameters(("patient", "Patient/x")), FHIR_JSON, "patient", id="patient-system-level"),
    ],
)
def test_a_bad_parameters_body_is_400_and_starts_nothing(
    demo, token, client, engine, body, content_type, expression
) -> None:
    response = post(client, token, "$export", body, **{"Content-Type": content_type})
    outcome = assert_outcome(response, 400)
    assert outcome["issue"][0]["expression"] == [expression]
    assert job_count(engine) == 0


def test_post_kickoff_checks_the_headers_too(demo, token, client) -> None:
    response = post(client, token, "$export", parameters(), Prefer="")
    assert_outcome(response, 400)
    assert post(client, token, "$export", parameters()).status_code == 202


def test_patient_parameter_keeps_to_those_patients_compartments(demo, token, export, engine) -> None:
    stored = store_rows(engine, "demo")
    chosen = set(patient_ids(engine)[:2])
    body = parameters(*(("patient", f"Patient/{pid}") for pid in sorted(chosen)))
    result = export("Patient/$export", token, parameters=body)
    assert {r["id"] for r in result.resources() if r["resourceType"] == "Patient"} == chosen
    assert set(result.ids()) == {k for k, c in stored.items() if in_compartment(k[0], c, chosen)}
    # the same as the whole Patient-level export less the third patient's compartment
    whole = export("Patient/$export", token)
    assert set(result.ids()) < set(whole.ids())


def test_patient_parameter_combines_with_type_and_type_filter(demo, token, export, engine) -> None:
    chosen = patient_ids(engine)[0]
    body = parameters(
        ("_type", "Observation"),
        ("_typeFilter", "Observation?category=vital-signs"),
        ("patient", f"http://testserver/fhir/Patient/{chosen}"),  # an absolute reference
    )
    result = export("Patient/$export", token, parameters=body)
    assert result.resources()
    for observation in result.resources():
        assert observation["subject"]["reference"] == f"Patient/{chosen}"
        assert "vital-signs" in {c["code"] for cat in observation["category"] for c in cat["coding"]}


def test_patient_parameter_on_a_group_takes_members_only(demo, token, export, client, engine) -> None:
    ids = patient_ids(engine)
    with Session(engine) as session:
        rows = session.connection().exec_driver_sql(
            "SELECT external_id FROM record WHERE kind = 'patients' ORDER BY external_id"
        )
        by_id = {resource_id("demo", "patients", r[0]): r[0] for r in rows}
        create_group(session, clinic_slug="demo", name="one", patients=[by_id[ids[0]]], group_id="one")
    member = export("Group/one/$export", token, parameters=parameters(("patient", f"Patient/{ids[0]}")))
    assert {r["id"] for r in member.resources() if r["resourceType"] == "Patient"} == {ids[0]}
    outsider = post(client, token, "Group/one/$export", parameters(("patient", f"Patient/{ids[1]}")))
    assert assert_outcome(outsider, 400)["issue"][0]["expression"] == ["patient"]
    # the clinic's own group has every patient of the clinic
    clinic_group = export(
        "Group/demo/$export", token, parameters=parameters(("patient", f"Patient/{ids[1]}"))
    )
    assert {r["id"] for r in clinic_group.resources() if r["resourceType"] == "Patient"} == {ids[1]}


def test_unknown_patient_is_400_unless_lenient(demo, token, client, export, engine) -> None:
    known = patient_ids(engine)[0]
    other_clinic = sorted(rid for t, rid in store_rows(engine, "other", ("Patient",)))[0]
    body = parameters(("patient", f"Patient/{known}"), ("patient", f"Patient/{other_clinic}"))
    outcome = assert_outcome(post(client, token, "Patient/$export", body), 400)
    assert outcome["issue"][0]["expression"] == ["patient"]
    assert other_clinic in outcome["issue"][0]["diagnostics"]
    assert job_count(engine) == 0

    lenient = export(
        "Patient/$export", token, parameters=body, headers={"Prefer": "respond-async, handling=lenient"}
    )
    assert {r["id"] for r in lenient.resources() if r["resourceType"] == "Patient"} == {known}
    assert other_clinic not in {rid for _, rid in lenient.ids()}
    [error_file] = lenient.manifest["error"]
    [warning] = lenient.files[error_file["url"]]
    assert other_clinic in warning["issue"][0]["diagnostics"]


def test_patient_is_a_post_parameter(demo, token, client, engine) -> None:
    pid = patient_ids(engine)[0]
    response = client.get(
        "/fhir/Patient/$export", params={"patient": f"Patient/{pid}"}, headers=auth(token, **ASYNC)
    )
    assert assert_outcome(response, 400)["issue"][0]["expression"] == ["patient"]
    malformed = post(client, token, "Patient/$export", parameters(("patient", "Observation/1")))
    assert assert_outcome(malformed, 400)["issue"][0]["expression"] == ["patient"]


def test_post_kickoff_status_and_files_belong_to_its_client(demo, token, make_token, client) -> None:
    response = post(client, token, "Patient/$export", parameters(("_type", "Patient")))
    assert response.status_code == 202, response.text
    stranger = make_token()
    assert_outcome(client.get(local(response.headers["Content-Location"]), headers=auth(stranger)), 404)
