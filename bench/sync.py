"""Sync benchmark: resources/s delivered to the Medplum hospital peer, and PUT-to-EHR visibility latency.

Loads the demo clinic (--patients, default 100) once into a fresh database (SQLite file, or PostgreSQL with
--postgres URL), then for each delivery mode (transaction Bundles with ifNoneExist; per-resource conditional
creates) and each worker count (1 and 4 `kap-gateway worker` processes) starts a fresh hospital (Medplum
fhir-router + oidc-provider from tools/peers), creates a connection, and times the backfill from the first
claim until nothing is pending. Then, with one worker running, PUTs a patient update --latency-samples times
and measures until the EHR serves the new version (p50/p95). After each backfill the hospital must hold
every resource exactly once with every reference resolving (tests/integration's ``assert_exactly_once``),
and must have received one create per resource (no item sent twice, whatever the worker count). Prints a
table; writes bench/results/sync.json. The bench database (and its temporary directory) is dropped at the end.

    python bench/sync.py [--patients 100] [--workers 1 4] [--postgres postgresql://...]

Four SQLite workers share one writer (they queue for SQLite's lock); use --postgres for scale-out figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from integration.conftest import assert_exactly_once  # noqa: E402
from integration.peers import hospital  # noqa: E402

from gateway.clinic_api import services  # noqa: E402
from gateway.core.config import Settings  # noqa: E402
from gateway.db.engine import make_engine, normalize_url, session_scope  # noqa: E402
from gateway.db.migrate import upgrade  # noqa: E402
from gateway.db.repositories.clinics import get_clinic  # noqa: E402
from gateway.demo import load_demo  # noqa: E402
from gateway.sync import connections  # noqa: E402
from gateway.sync.keys import load_private_key  # noqa: E402
from gateway.sync.smart_client import Endpoint, SmartClient  # noqa: E402
from mappings.records import PatientRecord  # noqa: E402

ADVERTISE = {"transaction": "transaction,conditional-create", "per-resource": "conditional-create"}


def _database(postgres: str | None, tmp: Path) -> str:
    if not postgres:
        return f"sqlite:///{tmp / 'bench.db'}"
    admin_url = make_url(normalize_url(postgres))
    name = f"kapgw_bench_sync_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return admin_url.set(database=name).render_as_string(hide_password=False)


def _drop(url: str) -> None:
    """Drops the bench database (CI later runs on this same PostgreSQL)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql"):
        return
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
    admin.dispose()


def _check_once(engine, h, n: int) -> dict:
    """Every resource at the hospital once, references resolving, one create per resource."""
    held = assert_exactly_once(engine, h)
    creates = h.creates()
    if creates["repeated"]:
        raise SystemExit(f"{n} workers sent items twice: {list(creates['repeated'].items())[:5]}")
    if creates["identities"] != len(held.by_ours):
        raise SystemExit(f"{creates['identities']} identities created, {len(held.by_ours)} held")
    return {"held": len(held.by_ours), "creates": creates["creates"], "repeated_creates": 0}


def _pending(engine, connection_pk: int) -> int:
    with engine.connect() as c:
        return int(
            c.execute(
                text("SELECT count(*) FROM outbox WHERE connection_pk = :c AND status = 'pending'"),
                {"c": connection_pk},
            ).scalar_one()
        )


def _delivered(engine, connection_pk: int) -> int:
    with engine.connect() as c:
        return int(
            c.execute(
                text("SELECT count(*) FROM outbox WHERE connection_pk = :c AND status = 'delivered'"),
                {"c": connection_pk},
            ).scalar_one()
        )


def _steady_seconds(engine, connection_pk: int) -> float:
    with engine.connect() as c:
        first, last = c.execute(
            text("SELECT min(delivered_at), max(delivered_at) FROM outbox WHERE connection_pk = :c"),
            {"c": connection_pk},
        ).one()
    if isinstance(first, str):  # SQLite hands back text through a raw query
        from datetime import datetime

        first, last = datetime.fromisoformat(first), datetime.fromisoformat(last)
    return (last - first).total_seconds()


def _workers(settings: Settings, n: int, log_dir: Path) -> list[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "KAPGW_DATABASE_URL": settings.database_url,
        "KAPGW_IDENTIFIER_BASE": settings.identifier_base,
        "KAPGW_WORKER_POLL_SECONDS": "0.05",
        "KAPGW_LOG_LEVEL": "WARNING",
    }
    out = []
    for i in range(n):
        with (log_dir / f"worker-{i}.log").open("wb") as log:
            out.append(
                subprocess.Popen(
                    [sys.executable, "-m", "gateway.cli", "worker"],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            )
    return out


def _stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for w in workers:
        w.terminate()
    for w in workers:
        w.wait(timeout=30)


def run(args: argparse.Namespace) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="kapgw-bench-sync-"))
    database_url = _database(args.postgres, tmp)
    try:
        return _run(args, tmp, database_url)
    finally:
        _drop(database_url)
        shutil.rmtree(tmp, ignore_errors=True)


def _run(args: argparse.Namespace, tmp: Path, database_url: str) -> dict:
    settings = Settings(
        env="test",
        database_url=database_url,
        identifier_base="https://bench.example/id",
        log_json=False,
        in_process_worker=False,
    )
    engine = make_engine(settings)
    upgrade(engine)
    started = time.perf_counter()
    with session_scope(engine) as session:
        load_demo(session, settings, slug="demo", patients=args.patients, seed=1, start=date(2026, 1, 5))
    load_seconds = time.perf_counter() - started
    with engine.connect() as c:
        resources = int(c.execute(text("SELECT count(*) FROM resource")).scalar_one())
    print(
        f"demo clinic: {args.patients} patients, {resources} resources, loaded in {load_seconds:.1f} s",
        flush=True,
    )
    runs = []
    for mode, advertise in ADVERTISE.items():
        for n in args.workers:
            (tmp / f"{mode}-{n}").mkdir()
            with hospital(tmp / f"{mode}-{n}", advertise=advertise) as h:
                with session_scope(engine) as session:
                    row = connections.create_connection(
                        session,
                        settings,
                        clinic_slug="demo",
                        name=f"{mode}-{n}",
                        fhir_base=h.fhir_base,
                        client_id=h.client_id,
                        private_key_file=str(h.key_file),
                        kid=h.kid,
                    )
                    assert row.id is not None
                    pk = row.id
                load_before = os.getloadavg()[0]
                workers = _workers(settings, n, tmp / f"{mode}-{n}")
                t0 = time.perf_counter()
                try:
                    while _delivered(engine, pk) == 0 or _pending(engine, pk) > 0:
                        time.sleep(0.1)
                        if time.perf_counter() - t0 > args.timeout:
                            raise SystemExit(f"{mode} x{n}: not done after {args.timeout} s")
                    seconds = time.perf_counter() - t0
                    load_after = os.getloadavg()[0]
                    delivered = _delivered(engine, pk)
                    steady = _steady_seconds(engine, pk)
                    checked = _check_once(engine, h, n)
                    latencies = _latency(engine, settings, h, args.latency_samples) if n == 1 else []
                finally:
                    _stop(workers)
                with session_scope(engine) as session:
                    connections.set_disabled(
                        session,
                        row=connections.find(session, clinic_slug="demo", name=f"{mode}-{n}"),
                        disabled=True,
                    )
                stats = h.stats()
            line = {
                "mode": mode,
                "workers": n,
                "resources": delivered,
                "seconds": round(seconds, 2),
                "resources_per_second": round(delivered / seconds, 1),
                # first to last delivery (without the worker processes' start-up)
                "steady_seconds": round(steady, 2),
                "steady_resources_per_second": round(delivered / steady, 1) if steady else None,
                "ehr_requests": stats,
                "exactly_once": checked,
                # 1-minute load average of the machine (2 cores, shared) when the run started and ended
                "load_average": [round(load_before, 1), round(load_after, 1)],
            }
            if latencies:
                line["put_to_ehr_p50_ms"] = round(statistics.median(latencies) * 1000)
                line["put_to_ehr_p95_ms"] = round(statistics.quantiles(latencies, n=20)[18] * 1000)
            runs.append(line)
            print(json.dumps(line), flush=True)
    engine.dispose()
    return {
        "patients": args.patients,
        "resources": resources,
        "database": "postgresql" if args.postgres else "sqlite",
        "load_seconds": round(load_seconds, 1),
        "runs": runs,
    }


def _latency(engine, settings: Settings, h, samples: int) -> list[float]:
    """PUT a patient update, then poll the EHR until it serves it (one worker running, poll 50 ms)."""
    with session_scope(engine, read_only=True) as session:
        clinic = get_clinic(session, slug="demo")
        assert clinic is not None and clinic.id is not None
        scope = services.ClinicScope(clinic.id, clinic.slug, clinic.name)
        (row,) = services.list_records(
            session, clinic=scope, kind="patients", after=None, limit=1, patient_id=None
        )
        with engine.connect() as c:
            ehr_id = c.execute(
                text(
                    "SELECT m.ehr_id FROM sync_id_map m JOIN resource r ON r.id = m.resource_pk "
                    "WHERE r.resource_type = 'Patient' AND r.record_pk = :r ORDER BY m.updated_at DESC"
                ),
                {"r": row.id},
            ).scalar()
    client = SmartClient(
        Endpoint(
            h.fhir_base,
            h.issuer + "/token",
            h.client_id,
            "system/*.cruds",
            "RS384",
            h.kid,
            load_private_key(alg="RS384", path=str(h.key_file)),
        ),
        timeout=10,
    )
    out = []
    try:
        for i in range(samples):
            phone = f"+1-555-{1000 + i:04d}"
            model = PatientRecord.model_validate({**row.data, "phone": phone})
            with session_scope(engine) as session:
                services.put_record(
                    session, settings, clinic=scope, kind="patients", external_id=row.external_id, model=model
                )
            t0 = time.perf_counter()
            while True:
                body = client.request("GET", f"Patient/{ehr_id}").body
                if any(t.get("value") == phone for t in body.get("telecom", [])):
                    break
                if time.perf_counter() - t0 > 30:
                    raise SystemExit("an update did not reach the EHR in 30 s")
                time.sleep(0.01)
            out.append(time.perf_counter() - t0)
    finally:
        client.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=100)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--postgres", default=os.environ.get("KAPGW_BENCH_POSTGRES_URL"))
    parser.add_argument("--latency-samples", type=int, default=40)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    report = run(args)
    print()
    print(
        f"{'mode':<14}{'workers':>8}{'resources':>11}{'seconds':>9}{'res/s':>9}{'steady/s':>10}{'p50 ms':>8}{'p95 ms':>8}"
    )
    for r in report["runs"]:
        print(
            f"{r['mode']:<14}{r['workers']:>8}{r['resources']:>11}{r['seconds']:>9}{r['resources_per_second']:>9}"
            f"{r['steady_resources_per_second'] or '':>10}"
            f"{r.get('put_to_ehr_p50_ms', ''):>8}{r.get('put_to_ehr_p95_ms', ''):>8}"
        )
    out = ROOT / "bench" / "results" / "sync.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"\nwritten {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
