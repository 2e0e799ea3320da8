"""Bulk Data export benchmark: resources/s and memory exporting 1,000 and 10,000 demo patients from PostgreSQL.

For each size it builds a PostgreSQL database (KAPGW_BENCH_POSTGRES_URL or KAPGW_TEST_POSTGRES_URL), grants
an ehr client (system/*.read) every clinic, and for each export level (system ``$export``, ``Patient/$export``):

1. loads it: the first 100 demo patients through the real records service once (a scratch SQLite file),
   then copied inside PostgreSQL, one clinic per copy with its own ids (``load``); resource rows and the
   reference index only, all an export reads;
2. kicks the export off through the same service the route calls (``gateway.bulk.jobs.kickoff``);
3. runs the background worker's export task (``gateway.bulk.runner.run_export_turn``, default settings:
   batches of 1,000 rows, files of 100,000 resources) in a fresh child process until the job completes,
   sampling that process's RSS every 0.2 s, so the memory figures are the worker's own;
4. checks every line of every file: it parses (orjson) as a resource of the file's declared type, the
   counts match the manifest and the store (current, non-deleted rows), no resource appears twice, and
   every 500th line validates with fhir.resources.

    python bench/export.py [--sizes 1000 10000] [--levels system patient] [--keep]

Prints a table, writes bench/results/export.json. ``--keep`` leaves the databases (their URLs are printed);
``--database URL`` reuses such a loaded database instead of loading one.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.fhir_read import ehr_token  # noqa: E402
from bench.ingest import postgres_database  # noqa: E402

PATHS = {"system": "$export", "patient": "Patient/$export"}
VALIDATE_EVERY = 500
BASE_PATIENTS = 100
#: how long the worker waits for its RSS sampler to stop (it wakes every 0.2 s) before it fails
SAMPLER_JOIN_SECONDS = 10
#: a copy's ids: the first two hex digits of every uuid become two of these letters (FHIR ids, not uuids)
LETTERS = "ghijklmnopqrstuvwxyz"


# --- loading ----------------------------------------------------------------------------------------------


def base_store(tmp: Path) -> tuple[list[Any], list[Any], str]:
    """The first BASE_PATIENTS demo patients through the real records service, in a scratch SQLite file:
    their current resources and their reference index rows."""
    from datetime import date

    from gateway.core.config import Settings
    from gateway.db.engine import Session, make_engine
    from gateway.db.migrate import upgrade
    from gateway.db.repositories.resources import INDEX_TABLES, RESOURCE
    from gateway.demo import load_demo

    cached = os.environ.get("KAPGW_BENCH_BASE_DB")  # a scratch file of an earlier run, to skip the mapping
    path = Path(cached) if cached else tmp / "base.db"
    fresh = not path.exists()
    settings = Settings(database_url=f"sqlite:///{path}", log_json=False)
    engine = make_engine(settings)
    upgrade(engine)
    with Session(engine) as session:
        if fresh:
            load_demo(session, settings, slug="bench", patients=BASE_PATIENTS, seed=0, start=date(2026, 1, 5))
        connection = session.connection()
        resources = list(connection.execute(RESOURCE.select().where(RESOURCE.c.deleted.is_(False))))
        references = list(connection.execute(INDEX_TABLES["reference"].select()))
    engine.dispose()
    return resources, references, settings.identifier_base


def _copy(cursor: Any, table: str, columns: list[str], rows: list[tuple]) -> None:
    with cursor.copy(f'COPY "{table}" ({", ".join(columns)}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(row)


def load(url: str, resources: list[Any], references: list[Any], identifier_base: str, patients: int) -> dict:
    """``patients // BASE_PATIENTS`` copies of the base clinic, each its own clinic: the base rows go in
    once with COPY, then PostgreSQL copies them with INSERT ... SELECT, ids rewritten in every uuid of the
    stored JSON and of the reference index (the first two hex digits become two letters that name the copy, so
    every copy has its own ids and its references stay inside it) and identifier systems renamed. Only what an
    export reads is written: resource rows and the reference index (no version history, no other index)."""
    import psycopg
    from sqlalchemy import create_engine, text
    from sqlmodel import SQLModel

    from gateway.db.engine import normalize_url

    started = time.perf_counter()
    copies = patients // BASE_PATIENTS
    engine = create_engine(normalize_url(url))
    tables = {t.name: t for t in SQLModel.metadata.sorted_tables}
    indexes = [i for name in ("resource", "search_reference") for i in tables[name].indexes]
    with engine.begin() as connection:
        for index in indexes:
            index.drop(connection)
    system = identifier_base.rstrip("/")
    stride = max(r.id for r in resources) + 1
    now = datetime.now(UTC)
    with (
        psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn,
        conn.cursor() as cursor,
    ):
        clinic_pks = []
        for k in range(copies):
            cursor.execute(
                "INSERT INTO clinic (slug, name, created_at) VALUES (%s, %s, %s) RETURNING id",
                (f"bench-{k:03d}", f"Bench clinic {k}", now),
            )
            clinic_pks.append(cursor.fetchone()[0])
        old, new = f"{system}/bench/".encode(), f"{system}/bench-000/".encode()
        _copy(cursor, "resource", ["id", "clinic_pk", "resource_type", "resource_id", "version_id",
              "last_updated", "content", "content_hash", "deleted"],
              [(r.id, clinic_pks[0], r.resource_type, r.resource_id, r.version_id, r.last_updated,
                r.content.replace(old, new), r.content_hash, False) for r in resources])  # fmt: skip
        keep = {r.id for r in resources}
        _copy(cursor, "search_reference", ["resource_pk", "resource_type", "param", "target_type", "target_id"],
              [(r.resource_pk, r.resource_type, r.param, r.target_type, r.target_id)
               for r in references if r.resource_pk in keep])  # fmt: skip
        conn.commit()
        uuid_re = "[0-9a-f]{2}([0-9a-f]{6}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
        for k in range(1, copies):
            prefix = LETTERS[k // len(LETTERS)] + LETTERS[k % len(LETTERS)]  # never hex: never a base id
            cursor.execute(
                """INSERT INTO resource (id, clinic_pk, resource_type, resource_id, version_id, last_updated,
                       content, content_hash, deleted)
                   SELECT id + %(offset)s, %(clinic)s, resource_type, regexp_replace(resource_id, %(anchored)s, %(repl)s),
                       version_id, last_updated,
                       convert_to(replace(regexp_replace(convert_from(content, 'UTF8'), %(re)s, %(repl)s, 'g'),
                           %(old)s, %(new)s), 'UTF8'),
                       content_hash, false
                   FROM resource WHERE clinic_pk = %(base)s""",
                {"offset": k * stride, "clinic": clinic_pks[k], "repl": prefix + r"\1", "re": uuid_re, "base": clinic_pks[0],
                 "anchored": "^" + uuid_re + "$",
                 "old": f"{system}/bench-000/", "new": f"{system}/bench-{k:03d}/"},
            )  # fmt: skip
            cursor.execute(
                """INSERT INTO search_reference (resource_pk, resource_type, param, target_type, target_id)
                   SELECT resource_pk + %(offset)s, resource_type, param, target_type,
                       regexp_replace(target_id, %(re)s, %(repl)s)
                   FROM search_reference WHERE resource_pk < %(stride)s""",
                {"offset": k * stride, "repl": prefix + r"\1", "re": "^" + uuid_re + "$", "stride": stride},
            )
            conn.commit()
            print(f"  copy {k + 1}/{copies}", end="\r", flush=True)
        cursor.execute("SELECT setval(pg_get_serial_sequence('resource', 'id'), %s)", (copies * stride,))
        cursor.execute("SELECT count(*) FROM resource")
        resource_count = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM search_reference")
        reference_count = cursor.fetchone()[0]
        conn.commit()
    print()
    copied = time.perf_counter() - started
    with engine.begin() as connection:
        for index in indexes:
            index.create(connection)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE resource"))
        connection.execute(text("VACUUM ANALYZE search_reference"))
    engine.dispose()
    return {
        "patients": copies * BASE_PATIENTS,
        "clinics": copies,
        "rows": {"resource": resource_count, "search_reference": reference_count},
        "copy_seconds": round(copied, 1),
        "index_seconds": round(time.perf_counter() - started - copied, 1),
    }


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def worker(url: str, token: str, level: str, export_dir: str) -> None:
    """Child process: kick-off, then the export task until the job is done; prints one JSON line."""
    from gateway.auth.service import authenticate_bearer
    from gateway.bulk import jobs
    from gateway.bulk.kickoff import parse_kickoff
    from gateway.bulk.runner import run_export_turn
    from gateway.core.config import Settings
    from gateway.db.engine import make_engine, session_scope
    from gateway.db.repositories import bulk as repo

    settings = Settings(database_url=url, export_dir=Path(export_dir), log_json=False)
    engine = make_engine(settings)
    with session_scope(engine) as session:
        principal = authenticate_bearer(session, settings, authorization=f"Bearer {token}")
        request = parse_kickoff(level, [], accept="application/fhir+json", prefer="respond-async")  # type: ignore[arg-type]
        location = jobs.kickoff(session, settings, principal=principal, request=request, request_url="bench")
    job_id = location.rsplit("/", 1)[1]
    samples: list[tuple[float, int]] = []
    stop = threading.Event()
    started = time.perf_counter()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.perf_counter() - started, rss_kib()))
            stop.wait(0.2)

    rss_before = rss_kib()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    turns = 0
    while run_export_turn(engine, settings, owner="bench"):
        turns += 1
    seconds = time.perf_counter() - started
    stop.set()
    sampler.join(timeout=SAMPLER_JOIN_SECONDS)
    if sampler.is_alive():
        raise SystemExit(f"the RSS sampler thread did not stop within {SAMPLER_JOIN_SECONDS} s")
    with session_scope(engine, read_only=True) as session:
        job = repo.get_job(session, job_id=job_id)
        assert job is not None and job.id is not None
        status = job.status
        files = [(f.resource_type, f.name, f.count, f.size) for f in repo.files_of(session, job_pk=job.id)]
    engine.dispose()
    with open("/proc/self/status") as proc:
        hwm = next(int(line.split()[1]) for line in proc if line.startswith("VmHWM:"))
    print(
        json.dumps(
            {
                "job_id": job_id,
                "status": status,
                "seconds": seconds,
                "turns": turns,
                "files": files,
                "rss_before_kib": rss_before,
                "rss_peak_kib": hwm,
                "rss_samples": samples,
            }
        )
    )


def expected_counts(url: str, level: str) -> Counter[str]:
    from sqlalchemy import create_engine, text

    from gateway.bulk.compartment import COMPARTMENT_TYPES, PATIENT_COMPARTMENT
    from gateway.db.engine import normalize_url

    engine = create_engine(normalize_url(url))
    counts: Counter[str] = Counter()
    with engine.connect() as connection:
        if level == "system":
            rows = connection.execute(
                text("SELECT resource_type, count(*) FROM resource WHERE NOT deleted GROUP BY resource_type")
            )
            counts.update({r[0]: r[1] for r in rows})
        else:
            for resource_type in COMPARTMENT_TYPES:
                params = PATIENT_COMPARTMENT.get(resource_type, ())
                query = "SELECT count(*) FROM resource r WHERE NOT r.deleted AND r.resource_type = :t"
                if resource_type != "Patient":
                    query += (
                        " AND EXISTS (SELECT 1 FROM search_reference s WHERE s.resource_pk = r.id"
                        " AND s.target_type = 'Patient' AND s.param = ANY(:p))"
                    )
                counts[resource_type] = connection.execute(
                    text(query), {"t": resource_type, "p": list(params)}
                ).scalar_one()
    engine.dispose()
    return +counts


def check_files(export_dir: Path, result: dict[str, Any]) -> dict[str, Any]:
    """Every line: parses, declares the file's type, appears once; a sample validates with fhir.resources."""
    from fhir.resources.R4B import get_fhir_model_class

    seen: set[bytes] = set()
    counts: Counter[str] = Counter()
    validated = 0
    lines = 0
    started = time.perf_counter()
    for resource_type, name, count, _size in result["files"]:
        model = get_fhir_model_class(resource_type)
        in_file = 0
        with open(export_dir / result["job_id"] / name, "rb") as file:
            for line in file:
                resource = orjson.loads(line)
                assert resource["resourceType"] == resource_type, (name, resource["resourceType"])
                key = f"{resource_type}/{resource['id']}".encode()
                assert key not in seen, key
                seen.add(key)
                if lines % VALIDATE_EVERY == 0:
                    model.model_validate(resource)
                    validated += 1
                lines += 1
                in_file += 1
        assert in_file == count, (name, in_file, count)
        counts[resource_type] += in_file
    return {
        "lines": lines,
        "by_type": dict(counts),
        "validated": validated,
        "check_seconds": time.perf_counter() - started,
    }


def run_export(url: str, token: str, level: str, tmp: Path) -> dict[str, Any]:
    export_dir = tmp / f"exports-{level}"
    child = subprocess.run(
        [sys.executable, __file__, "--worker", url, token, level, str(export_dir)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    result = json.loads(child.stdout.strip().splitlines()[-1])
    assert result["status"] == "completed", result["status"]
    checked = check_files(export_dir, result)
    expected = expected_counts(url, level)
    assert Counter(checked["by_type"]) == expected, (checked["by_type"], dict(expected))
    samples = result["rss_samples"]
    quarter = (
        [samples[int(len(samples) * q) - 1][1] // 1024 for q in (0.25, 0.5, 0.75, 1.0)] if samples else []
    )
    size = sum(f[3] for f in result["files"])
    row = {
        "level": level,
        "resources": checked["lines"],
        "files": len(result["files"]),
        "seconds": round(result["seconds"], 1),
        "resources_per_s": round(checked["lines"] / result["seconds"]),
        "mb": round(size / 1e6),
        "mb_per_s": round(size / 1e6 / result["seconds"], 1),
        "rss_before_mib": result["rss_before_kib"] // 1024,
        "rss_peak_mib": result["rss_peak_kib"] // 1024,
        "rss_at_quarters_mib": quarter,
        "validated_sample": checked["validated"],
    }
    subprocess.run(["rm", "-rf", str(export_dir)], check=True)
    return row


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--worker":
        worker(*sys.argv[2:])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--levels", nargs="+", default=["system", "patient"], choices=sorted(PATHS))
    parser.add_argument("--keep", action="store_true", help="keep the loaded databases")
    parser.add_argument("--database", help="a database this script loaded before (--keep); skips loading")
    args = parser.parse_args()
    from gateway.core.config import Settings
    from gateway.db.engine import make_engine
    from gateway.db.migrate import upgrade

    admin = os.environ.get("KAPGW_BENCH_POSTGRES_URL") or os.environ["KAPGW_TEST_POSTGRES_URL"]
    rows: list[dict[str, Any]] = []
    loads: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        base: tuple[list[Any], list[Any], str] = ([], [], "")
        if not args.database:
            print(f"mapping the base clinic ({BASE_PATIENTS} patients) through the records service")
            base = base_store(Path(tmp))
        for size in args.sizes:
            drop = None
            if args.database:
                url = args.database
            else:
                url, drop = postgres_database(admin)
                engine = make_engine(Settings(database_url=url))
                upgrade(engine)
                engine.dispose()
                print(f"loading {size:,} patients")
                loads[str(size)] = load(url, *base, size)
                print(f"  {loads[str(size)]}", flush=True)
            token = ehr_token(url)
            try:
                for level in args.levels:
                    print(f"exporting {size:,} patients, {level} level")
                    row = {"patients": size, **run_export(url, token, level, Path(tmp))}
                    print(f"  {row}", flush=True)
                    rows.append(row)
                    write_results(loads, rows)  # after every run, so a long run's figures are never lost
            finally:
                if drop is not None and not args.keep:
                    drop()
                elif drop is not None:
                    print(f"  kept {url}")
    print()
    print(
        "| patients | level | resources | files | seconds | resources/s | MB written | worker RSS before / peak MiB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['patients']:,} | {r['level']} | {r['resources']:,} | {r['files']} | {r['seconds']} |"
            f" {r['resources_per_s']:,} | {r['mb']:,} | {r['rss_before_mib']} / {r['rss_peak_mib']} |"
        )
    print(f"wrote {write_results(loads, rows).relative_to(ROOT)}")


def write_results(loads: dict[str, Any], rows: list[dict[str, Any]]) -> Path:
    out = ROOT / "bench" / "results" / "export.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"machine": {"cpus": os.cpu_count()}, "loads": loads, "results": rows}, indent=2)
    )
    return out


if __name__ == "__main__":
    main()
