"""The Bulk Data protocol as Inferno checks it (reference/smart-checklist.md §9, BULK-1 to BULK-5):
kick-off headers and parameters, status polling, the manifest, file downloads, access, cancel, expiry."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime

import pytest
from sqlalchemy import text, update

from gateway.bulk.runner import clean_up
from gateway.db.engine import Session
from gateway.db.tables import BulkJobRow
from gateway.demo import load_demo

from .conftest import ASYNC, FHIR_JSON, NDJSON, auth, drain, local


@pytest.fixture
def demo(engine, settings, client) -> str:
    """The protocol needs little data: the demo clinic with one synthetic patient."""
    with Session(engine, expire_on_commit=False) as session:
        load_demo(session, settings, slug="demo", patients=1, seed=1, start=date(2026, 1, 5))
    return "demo"


def assert_outcome(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    if code is not None:
        assert body["issue"][0]["code"] == code
    return body


def kick(client, token: str, path: str = "$export", params=None, **headers: str):
    return client.get(f"/fhir/{path}", params=params, headers=auth(token, **{**ASYNC, **headers}))


@pytest.mark.parametrize("path", ["$export", "Patient/$export", "Group/demo/$export"])
def test_kickoff_answers_202_with_an_absolute_content_location(demo, token, client, path) -> None:
    response = kick(client, token, path)
    assert response.status_code == 202, response.text
    location = response.headers["Content-Location"]
    assert location.startswith("http://testserver/fhir/bulk-status/")


@pytest.mark.parametrize("path", ["$export", "Patient/$export", "Group/demo/$export"])
def test_kickoff_without_a_token_is_refused(demo, client, path) -> None:
    response = client.get(f"/fhir/{path}", headers=ASYNC)
    assert_outcome(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("headers", "expression"),
    [
        pytest.param({"Accept": FHIR_JSON}, "Prefer", id="no-prefer"),
        pytest.param({"Accept": FHIR_JSON, "Prefer": "return=minimal"}, "Prefer", id="prefer-not-async"),
        pytest.param({"Prefer": "respond-async"}, "Accept", id="no-accept"),
        pytest.param({"Prefer": "respond-async", "Accept": "application/xml"}, "Accept", id="accept-xml"),
    ],
)
def test_kickoff_needs_accept_and_prefer(demo, token, client, headers, expression) -> None:
    response = client.get("/fhir/$export", headers=auth(token, **headers))
    body = assert_outcome(response, 400, "invalid")
    assert body["issue"][0]["expression"] == [expression]


@pytest.mark.parametrize("output_format", ["application/fhir+ndjson", "application/ndjson", "ndjson"])
def test_output_format_takes_all_three_ndjson_spellings(demo, token, client, output_format) -> None:
    assert kick(client, token, params={"_outputFormat": output_format}).status_code == 202


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"_outputFormat": "application/fhir+json"}, id="output-format"),
        pytest.param({"_since": "2026-01-01"}, id="since-date-only"),
        pytest.param({"_since": "yesterday"}, id="since-text"),
        pytest.param({"_type": "Unicorn"}, id="unknown-type"),
        pytest.param({"_elements": "id"}, id="elements"),
        pytest.param({"patient": "Patient/1"}, id="patient-system-level"),
        pytest.param({"includeAssociatedData": "LatestProvenanceResources"}, id="associated-data"),
        pytest.param({"_typeFilter": "Observation?unknown-param=1"}, id="type-filter-param"),
        pytest.param({"_typeFilter": "Observation"}, id="type-filter-no-query"),
        pytest.param({"_typeFilter": "Observation?_include=Observation:subject"}, id="type-filter-include"),
        pytest.param({"foo": "bar"}, id="unknown-parameter"),
    ],
)
def test_unsupported_parameters_are_400_with_an_outcome(demo, token, client, params) -> None:
    assert_outcome(kick(client, token, params=params), 400)


def test_since_takes_an_instant_with_an_offset(demo, token, client) -> None:
    assert kick(client, token, params={"_since": "2026-01-01T00:00:00Z"}).status_code == 202
    assert kick(client, token, params={"_since": "2026-01-01T00:00:00.123+02:00"}).status_code == 202
    # an unencoded '+' arrives as a space
    response = client.get("/fhir/$export?_since=2026-01-01T00:00:00+02:00", headers=auth(token, **ASYNC))
    assert response.status_code == 202, response.text


def test_lenient_handling_ignores_and_reports(demo, token, client, engine, settings) -> None:
    response = kick(
        client,
        token,
        params=[("_type", "Patient,Unicorn"), ("_elements", "id"), ("_typeFilter", "Patient?nope=1")],
        Prefer="respond-async, handling=lenient",
    )
    assert response.status_code == 202, response.text
    drain(engine, settings)
    manifest = client.get(local(response.headers["Content-Location"]), headers=auth(token)).json()
    assert [item["type"] for item in manifest["output"]] == ["Patient"]
    assert len(manifest["error"]) == 1 and manifest["error"][0]["type"] == "OperationOutcome"
    errors = client.get(local(manifest["error"][0]["url"]), headers=auth(token)).text.splitlines()
    assert len(errors) == 3
    assert "Unicorn" in errors[0] and "_elements" in errors[1] and "nope" in errors[2]


def test_type_outside_the_scopes_is_403(demo, make_token, client) -> None:
    token = make_token("system/Patient.read")
    assert_outcome(kick(client, token, params={"_type": "Observation"}), 403, "forbidden")
    assert kick(client, token, params={"_type": "Patient"}).status_code == 202


def test_clinic_records_token_is_refused(demo, client, make_clinic) -> None:
    clinic = make_clinic("clinic-a")
    assert_outcome(kick(client, clinic.token), 403, "forbidden")


def test_polling_then_manifest(demo, token, client, engine, settings) -> None:
    kicked = kick(client, token, params={"_type": "Patient,Encounter"})
    status_path = local(kicked.headers["Content-Location"])
    polled = client.get(status_path, headers=auth(token, Accept="application/json"))
    assert polled.status_code == 202
    assert 0 < len(polled.headers["X-Progress"]) < 100
    assert polled.headers["Retry-After"].isdigit()

    drain(engine, settings)
    done = client.get(status_path, headers=auth(token, Accept="application/json"))
    assert done.status_code == 200
    assert done.headers["content-type"].startswith("application/json")
    expires = parsedate_to_datetime(done.headers["Expires"])
    assert expires > datetime.now(UTC)
    manifest = done.json()
    assert set(manifest) >= {"transactionTime", "request", "requiresAccessToken", "output", "error"}
    assert manifest["request"] == "http://testserver/fhir/$export?_type=Patient%2CEncounter"
    assert manifest["requiresAccessToken"] is True
    assert manifest["error"] == []
    assert datetime.fromisoformat(manifest["transactionTime"].replace("Z", "+00:00")) < datetime.now(UTC)
    assert {item["type"] for item in manifest["output"]} == {"Patient", "Encounter"}
    for item in manifest["output"]:
        assert item["url"].startswith("http://testserver/fhir/bulk-files/")
        assert item["count"] > 0
        got = client.get(local(item["url"]), headers=auth(token, Accept=NDJSON))
        assert got.status_code == 200
        assert got.headers["content-type"].startswith(NDJSON)
        assert len(got.text.splitlines()) == item["count"]


def test_a_running_job_reports_progress(demo, token, client, engine, settings) -> None:
    from gateway.bulk.runner import run_export_turn

    kicked = kick(client, token)
    run_export_turn(engine, settings, owner="w1", max_files=1)
    polled = client.get(local(kicked.headers["Content-Location"]), headers=auth(token))
    assert polled.status_code == 202
    assert "resources written" in polled.headers["X-Progress"]


def test_files_need_the_token_of_the_client_that_started_the_job(
    demo, token, backend_client_token, client, engine, settings
) -> None:
    kicked = kick(client, token, params={"_type": "Patient"})
    status_path = local(kicked.headers["Content-Location"])
    drain(engine, settings)
    manifest = client.get(status_path, headers=auth(token)).json()
    file_path = local(manifest["output"][0]["url"])

    anonymous = client.get(file_path)
    assert_outcome(anonymous, 401)
    second = backend_client_token()  # another client, granted the same clinic and scopes
    assert_outcome(client.get(file_path, headers=auth(second)), 404, "not-found")
    assert_outcome(client.get(status_path, headers=auth(second)), 404, "not-found")
    assert_outcome(client.delete(status_path, headers=auth(second)), 404, "not-found")
    assert client.get(status_path, headers=auth(token)).status_code == 200
    assert client.get(file_path, headers=auth(token)).status_code == 200
    # only recorded file names are served (never a path out of the job's directory)
    for name in ("..%2F..%2Fgateway.db", "00000.Patient.ndjson.part", "nothing.ndjson"):
        assert_outcome(client.get(file_path.rsplit("/", 1)[0] + "/" + name, headers=auth(token)), 404)


def test_cancel_then_status_is_404_and_files_go(demo, token, client, engine, settings) -> None:
    kicked = kick(client, token)
    status_path = local(kicked.headers["Content-Location"])
    cancelled = client.delete(status_path, headers=auth(token))
    assert cancelled.status_code == 202
    assert cancelled.json()["resourceType"] == "OperationOutcome"
    assert_outcome(client.get(status_path, headers=auth(token)), 404, "not-found")
    assert_outcome(client.delete(status_path, headers=auth(token)), 404)
    assert drain(engine, settings) == 0  # a cancelled job is never run
    assert clean_up(engine, settings)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM bulk_job")).scalar_one() == 0


def test_cancel_a_finished_job_deletes_its_files(demo, token, client, engine, settings) -> None:
    kicked = kick(client, token, params={"_type": "Patient"})
    status_path = local(kicked.headers["Content-Location"])
    drain(engine, settings)
    manifest = client.get(status_path, headers=auth(token)).json()
    job_dir = settings.export_dir / status_path.rsplit("/", 1)[1]
    assert any(job_dir.iterdir())
    assert client.delete(status_path, headers=auth(token)).status_code == 202
    assert_outcome(client.get(local(manifest["output"][0]["url"]), headers=auth(token)), 404)
    clean_up(engine, settings)
    assert not job_dir.exists()


def test_expired_jobs_are_cleaned_up(demo, token, client, engine, settings) -> None:
    kicked = kick(client, token, params={"_type": "Patient"})
    status_path = local(kicked.headers["Content-Location"])
    drain(engine, settings)
    job_dir = settings.export_dir / status_path.rsplit("/", 1)[1]
    assert job_dir.is_dir()
    assert not clean_up(engine, settings)  # nothing expired yet
    with engine.begin() as connection:
        connection.execute(update(BulkJobRow).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert_outcome(client.get(status_path, headers=auth(token)), 404)
    assert clean_up(engine, settings)
    assert not job_dir.exists()
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM bulk_file")).scalar_one() == 0


def test_too_many_active_exports_is_429(demo, token, client, settings) -> None:
    for _ in range(settings.export_max_active_jobs):
        assert kick(client, token).status_code == 202
    response = kick(client, token)
    assert_outcome(response, 429, "throttled")
    assert response.headers["Retry-After"].isdigit()


def test_capability_statement_declares_the_export_operations(demo, token, client) -> None:
    statement = client.get("/fhir/metadata").json()
    assert "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data" in statement["instantiates"]
    rest = statement["rest"][0]
    assert {"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"} in [
        {k: op[k] for k in ("name", "definition")} for op in rest.get("operation", [])
    ]
    by_type = {r["type"]: r for r in rest["resource"]}
    for resource_type, definition in (("Patient", "patient-export"), ("Group", "group-export")):
        operations = [op["definition"] for op in by_type[resource_type].get("operation", [])]
        assert f"http://hl7.org/fhir/uv/bulkdata/OperationDefinition/{definition}" in operations
