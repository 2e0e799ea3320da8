"""The sync engine against a real hospital: Medplum's fhir-router as the FHIR server, oidc-provider as its
SMART authorization server (both started per test, tools/peers), with our fault proxy in between."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from gateway.clinic_api import services
from gateway.core.config import Settings
from gateway.db.engine import session_scope
from gateway.db.repositories.clinics import get_clinic
from gateway.sync import status as sync_status
from integration.conftest import assert_exactly_once, connect, counts, drain
from integration.peers import FaultProxy, Hospital
from mappings.records import RECORD_KINDS

pytestmark = pytest.mark.integration
#: tests whose subject does not depend on the database (fault handling, delivery modes) run on SQLite only,
#: to keep the suite quick; PostgreSQL runs the demo sync, update, worker and import tests
SQLITE_ONLY = pytest.mark.backends("sqlite")


def _scope(engine: Engine, slug: str = "demo") -> services.ClinicScope:
    with session_scope(engine, read_only=True) as session:
        clinic = get_clinic(session, slug=slug)
        assert clinic is not None and clinic.id is not None
        return services.ClinicScope(clinic.id, clinic.slug, clinic.name)


def _record(engine: Engine, kind: str, index: int = 0) -> tuple[str, dict]:
    scope = _scope(engine)
    with session_scope(engine, read_only=True) as session:
        rows = services.list_records(session, clinic=scope, kind=kind, after=None, limit=100, patient_id=None)
    return rows[index].external_id, dict(rows[index].data)


def _put(engine: Engine, settings: Settings, kind: str, external_id: str, data: dict) -> services.Outcome:
    model = RECORD_KINDS[kind].model_validate(data)
    with session_scope(engine) as session:
        return services.put_record(
            session, settings, clinic=_scope(engine), kind=kind, external_id=external_id, model=model
        ).outcome


def test_demo_clinic_syncs_completely_exactly_once_and_a_rerun_sends_nothing(
    engine: Engine, sync_settings: Settings, demo: str, ehr: Hospital, proxy: FaultProxy
) -> None:
    connection = connect(engine, sync_settings, ehr, fhir_base=proxy.base)
    assert (connection.capabilities or {})["mode"] == "transaction"
    drain(engine, sync_settings)
    held = assert_exactly_once(engine, ehr)
    assert len(held.by_ours) > 300  # one patient's course: Patient, Encounters, Observations, ...
    assert counts(engine).keys() == {"delivered"}
    sent = ehr.stats()
    assert sent.get("POST bundle-transaction", 0) > 0  # delivered in transaction Bundles

    # backfilling again, draining again and re-putting an unchanged record send nothing new
    patient_id, data = _record(engine, "patients")
    assert _put(engine, sync_settings, "patients", patient_id, data) is services.Outcome.unchanged
    drain(engine, sync_settings)
    assert ehr.stats() == sent
    with session_scope(engine, read_only=True) as session:
        (line,) = sync_status.status(session)
    assert (line["pending"], line["dead"], line["paused"]) == (0, 0, False)


def test_a_record_update_arrives_as_a_new_version_of_the_same_ehr_resource(
    engine: Engine, sync_settings: Settings, demo: str, ehr: Hospital, proxy: FaultProxy
) -> None:
    connect(engine, sync_settings, ehr, fhir_base=proxy.base)
    drain(engine, sync_settings)
    before = {r["id"]: r for r in ehr.resources("Patient")}
    patient_id, data = _record(engine, "patients")
    data["phone"] = "+1-555-0100"
    assert _put(engine, sync_settings, "patients", patient_id, data) is services.Outcome.updated
    sent = ehr.stats()
    drain(engine, sync_settings)
    after = {r["id"]: r for r in ehr.resources("Patient")}
    assert after.keys() == before.keys()  # the same EHR resource, no second Patient
    (ehr_id,) = after
    assert after[ehr_id]["meta"]["versionId"] != before[ehr_id]["meta"]["versionId"]
    assert {"system": "phone", "value": "+1-555-0100"}.items() <= next(
        t for t in after[ehr_id]["telecom"] if t["system"] == "phone"
    ).items()
    assert_exactly_once(engine, ehr)
    assert ehr.stats().get("POST bundle-transaction", 0) > sent.get("POST bundle-transaction", 0)


@SQLITE_ONLY
def test_a_deleted_record_arrives_as_entered_in_error(
    engine: Engine, sync_settings: Settings, demo: str, ehr: Hospital, proxy: FaultProxy
) -> None:
    connect(engine, sync_settings, ehr, fhir_base=proxy.base)
    drain(engine, sync_settings)
    vitals_id, _ = _record(engine, "vitals")
    with session_scope(engine) as session:
        services.delete_record(
            session, sync_settings, clinic=_scope(engine), kind="vitals", external_id=vitals_id
        )
    drain(engine, sync_settings)
    held = assert_exactly_once(engine, ehr)
    retired = [
        r
        for key, rs in held.by_ours.items()
        for r in rs
        if key[0] == "Observation"
        and any(str(i.get("value")).split("#")[0] == vitals_id for i in r.get("identifier", []))
    ]
    assert retired and all(r["status"] == "entered-in-error" for r in retired)


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("ehr", "mode"),
    [
        pytest.param("conditional-create", "conditional", id="conditional-create"),
        pytest.param("", "search", id="search-then-create"),
    ],
    indirect=["ehr"],
)
def test_ehrs_without_transactions_or_conditional_create_get_everything_once(
    engine: Engine,
    sync_settings: Settings,
    demo: str,
    ehr: Hospital,
    proxy: FaultProxy,
    mode: str,
) -> None:
    connection = connect(engine, sync_settings, ehr, fhir_base=proxy.base)
    assert (connection.capabilities or {})["mode"] == mode
    drain(engine, sync_settings)
    assert_exactly_once(engine, ehr)
    assert "POST bundle-transaction" not in ehr.stats()


@SQLITE_ONLY
@pytest.mark.parametrize(
    "faults",
    [
        pytest.param(["429"] * 3, id="429-retry-after"),
        pytest.param(["503"] * 3, id="503-retry-after"),
        pytest.param(["drop-after"] * 4, id="dropped-after-commit"),
        pytest.param(["slow"] * 2, id="slow-timeout"),
        pytest.param(
            ["drop-after", "429", "500", "drop-before", "slow", "500", "503"], id="mixed-500-dropped-before"
        ),
    ],
)
def test_faults_between_gateway_and_ehr_lose_and_duplicate_nothing(
    engine: Engine,
    sync_settings: Settings,
    demo: str,
    ehr: Hospital,
    proxy: FaultProxy,
    faults: list[str],
) -> None:
    proxy.faults.extend(faults)
    connect(engine, sync_settings, ehr, fhir_base=proxy.base)
    drain(engine, sync_settings)
    assert not proxy.faults, "every fault was injected"
    assert_exactly_once(engine, ehr)
    assert counts(engine).keys() == {"delivered"}


@SQLITE_ONLY
def test_a_token_the_ehr_stops_accepting_is_replaced_once(
    engine: Engine, sync_settings: Settings, demo: str, ehr: Hospital, proxy: FaultProxy
) -> None:
    connect(engine, sync_settings, ehr, fhir_base=proxy.base)
    proxy.faults.extend(["500"])  # stop after the first claims, then invalidate the token mid-run
    drain(engine, sync_settings)
    patient_id, data = _record(engine, "patients")
    data["phone"] = "+1-555-0101"
    _put(engine, sync_settings, "patients", patient_id, data)
    ehr.reject_tokens()
    denied = ehr.stats().get("denied", 0)
    drain(engine, sync_settings)
    assert ehr.stats().get("denied", 0) == denied + 1  # one 401, then a fresh token worked
    assert_exactly_once(engine, ehr)


@SQLITE_ONLY
def test_a_resource_the_ehr_rejects_is_a_dead_letter_with_its_outcome_and_can_be_replayed(
    engine: Engine, sync_settings: Settings, demo: str, ehr: Hospital, proxy: FaultProxy
) -> None:
    proxy.reject_type = "AdverseEvent"
    connect(engine, sync_settings, ehr, fhir_base=proxy.base)
    drain(engine, sync_settings, allow_pending=1)  # the AdverseEvent's Provenance waits for its target
    with session_scope(engine, read_only=True) as session:
        dead = sync_status.dead_letters(session)
        (line,) = sync_status.status(session)
    assert dead and all(d["resource"].startswith("AdverseEvent/") for d in dead)
    assert {d["status_code"] for d in dead} == {422}
    assert dead[0]["outcome"]["issue"][0]["code"] == "business-rule"  # the EHR's OperationOutcome, kept
    assert (line["pending"], line["dead"]) == (1, len(dead))
    assert not ehr.resources("AdverseEvent")
    assert ehr.resources("Observation")  # the rest went through, one by one around the refused ones

    proxy.reject_type = None
    with session_scope(engine) as session:
        assert sync_status.replay(session) == len(dead)
    drain(engine, sync_settings)
    assert_exactly_once(engine, ehr)
    assert counts(engine).keys() == {"delivered"}
