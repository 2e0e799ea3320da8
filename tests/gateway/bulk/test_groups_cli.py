"""``kap-gateway groups``: ad-hoc groups of a clinic's patients for Group/{id}/$export."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from gateway.core.config import get_settings
from gateway.core.ids import resource_id


@pytest.fixture
def cli(database_url: str, demo, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("KAPGW_DATABASE_URL", database_url)
    monkeypatch.setenv("KAPGW_BASE_URL", "http://testserver")
    get_settings.cache_clear()
    runner = CliRunner()
    yield lambda *args: runner.invoke(app, list(args))
    get_settings.cache_clear()


def patients(engine) -> list[str]:
    from sqlalchemy import text

    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT r.external_id FROM record r JOIN clinic c ON c.id = r.clinic_pk"
                " WHERE c.slug = 'demo' AND r.kind = 'patients' ORDER BY r.external_id"
            )
        )
        return [r.external_id for r in rows]


def test_create_list_export_delete(cli, engine, client, make_token) -> None:
    first, second, *_ = patients(engine)
    fhir_second = resource_id("demo", "patients", second)
    created = cli(
        "groups",
        "create",
        "--clinic",
        "demo",
        "--name",
        "Study A",
        "--patient",
        first,
        "--patient",
        fhir_second,
    )
    assert created.exit_code == 0, created.output
    group = json.loads(created.output)
    assert group["members"] == 2 and group["kind"] == "ad-hoc" and group["clinic"] == "demo"
    assert group["export"] == f"http://testserver/fhir/Group/{group['id']}/$export"

    listed = [json.loads(line) for line in cli("groups", "list").output.splitlines()]
    assert {
        "id": "demo",
        "clinic": "demo",
        "name": "Demo KAP Clinic",
        "members": 3,
        "kind": "clinic",
    } in listed
    assert {g["id"] for g in listed} >= {group["id"], "demo", "other"}

    token = make_token()
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/fhir+json",
        "Prefer": "respond-async",
    }
    assert client.get(f"/fhir/Group/{group['id']}/$export", headers=headers).status_code == 202

    assert cli("groups", "delete", group["id"]).exit_code == 0
    assert client.get(f"/fhir/Group/{group['id']}/$export", headers=headers).status_code == 404


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--clinic", "nowhere", "--patient", "x"], "clinic nowhere is not known", id="clinic"),
        pytest.param(
            ["--clinic", "demo", "--patient", "not-a-patient"], "not patients of clinic demo", id="patient"
        ),
        pytest.param(
            ["--clinic", "demo", "--patient", "x", "--id", "demo"], "group demo exists", id="clinic-id"
        ),
    ],
)
def test_operator_mistakes_are_one_line(cli, args, message) -> None:
    result = cli("groups", "create", "--name", "g", *args)
    assert result.exit_code == 1
    assert message in result.output


def test_other_clinics_patients_cannot_join(cli, engine) -> None:
    from sqlalchemy import text

    with engine.connect() as connection:
        other = connection.execute(
            text(
                "SELECT r.external_id FROM record r JOIN clinic c ON c.id = r.clinic_pk"
                " WHERE c.slug = 'other' AND r.kind = 'patients'"
            )
        ).first()
    result = cli(
        "groups",
        "create",
        "--clinic",
        "demo",
        "--name",
        "g",
        "--patient",
        resource_id("other", "patients", other.external_id),
    )
    assert result.exit_code == 1
    assert "not patients of clinic demo" in result.output
