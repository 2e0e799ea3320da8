"""FHIR read-path benchmark: read and search latency and throughput at 1,000 and 10,000 demo patients.

For each size it builds a PostgreSQL database (KAPGW_BENCH_POSTGRES_URL or KAPGW_TEST_POSTGRES_URL) holding
that many demo patients, starts a real ``kap-gateway serve`` on it (one process, default settings) and,
beside it, a bare FastAPI app on the same uvicorn that answers every request of the run with the bytes the
gateway answered (the ceiling: HTTP, routing, the event loop). Both get the same requests, side by side:

* ``read``: ``GET /fhir/Patient/{id}`` (bearer token check + one indexed read of stored bytes);
* ``search``: ``GET /fhir/Observation?patient={id}&category=vital-signs`` (first page of 50);
* ``search-date``: ``GET /fhir/Encounter?patient={id}&date=ge2026-01-01``.

Requests rotate over 200 patients; clients keep their connections alive (the small asyncio HTTP/1.1 client
of bench/load.py, so the load generator is not the bottleneck).

Loading: the demo generator's first 100 patients go through the real records service once (mapping,
validation, store) into a scratch SQLite file; the loader then copies that clinic as many times as needed,
each copy its own clinic with fresh ids (uuid5 of the copy and the old id, references and identifier
systems rewritten), and writes resource and search-index rows with PostgreSQL COPY (no version rows: read and search never
touch them). The index rows are ``gateway.store.search_index.index_rows`` of the base resources, exactly as
the store computes them, with each copy's ids; the indexes are built after the COPY, then ANALYZE. The EHR token is granted every clinic, so
searches run over all patients.

    python bench/fhir_read.py [--sizes 1000 10000] [--seconds 8] [--clients 1 8 32]
    python bench/fhir_read.py --reuse-database PREFIX [--load-only]   # load each size once, reuse it
    python bench/fhir_read.py --drop-reused PREFIX                    # drop PREFIX_<size> when done

Prints a table, writes bench/results/fhir_read.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pickle
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import namedtuple
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ingest import Gateway, free_port, postgres_database, wait_until_up  # noqa: E402
from bench.load import run_clients  # noqa: E402

BASE_PATIENTS = 100
BaseRow = namedtuple("BaseRow", "resource_type resource_id version_id last_updated content content_hash")
ROTATE = 200
UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


# --- loading ----------------------------------------------------------------------------------------------


def base_clinic(tmp: Path) -> tuple[list[Any], str]:
    """The first BASE_PATIENTS demo patients through the real records service, in a scratch SQLite file."""
    from gateway.core.config import Settings
    from gateway.db.engine import Session, make_engine
    from gateway.db.migrate import upgrade
    from gateway.db.repositories.resources import RESOURCE
    from gateway.demo import load_demo

    settings = Settings(database_url=f"sqlite:///{tmp}/base.db", log_json=False)
    engine = make_engine(settings)
    upgrade(engine)
    with Session(engine) as session:
        load_demo(session, settings, slug="bench", patients=BASE_PATIENTS, seed=0, start=date(2026, 1, 5))
        rows = list(session.connection().execute(RESOURCE.select().where(RESOURCE.c.deleted.is_(False))))
    engine.dispose()
    return rows, settings.identifier_base


def _copy_rows(cursor: Any, table: str, columns: list[str], rows: list[tuple]) -> None:
    with cursor.copy(f'COPY "{table}" ({", ".join(columns)}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(row)


def base_index(base: list[Any]) -> list[list[tuple[str, tuple]]]:
    """The search-index rows of each base resource, as the store computes them (``index_rows``)."""
    from gateway.store.search_index import index_rows

    out = []
    for position, row in enumerate(base):
        rows: list[tuple[str, tuple]] = []
        for kind, kind_rows in index_rows(position, orjson.loads(row.content)).items():
            for r in kind_rows:
                if kind == "token":
                    rows.append((kind, (r["resource_type"], r["param"], r["system"], r["code"])))
                elif kind == "reference":
                    rows.append((kind, (r["resource_type"], r["param"], r["target_type"], r["target_id"])))
                elif kind == "date":
                    rows.append((kind, (r["resource_type"], r["param"], r["start"], r["end"])))
                else:
                    rows.append((kind, (r["resource_type"], r["param"], r["value"])))
        out.append(rows)
    return out


INDEX_COLUMNS = {
    "token": ["resource_pk", "resource_type", "param", "system", "code"],
    "reference": ["resource_pk", "resource_type", "param", "target_type", "target_id"],
    "date": ["resource_pk", "resource_type", "param", "start", '"end"'],
    "string": ["resource_pk", "resource_type", "param", "value"],
}


UUID_IN_JSON = r'([/"])000([0-9a-f]{5}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})'


def load_copies(url: str, base: list[Any], identifier_base: str, patients: int) -> dict[str, Any]:
    """``patients // BASE_PATIENTS`` copies of the base clinic; returns counts and timings.

    Copy 0 is written with COPY: the base resources with every id's first three hex digits set to ``000``
    and the index rows ``index_rows`` computes for them. Copy k is cloned inside PostgreSQL
    (``INSERT ... SELECT``): ids get the prefix ``k`` in hex (in the JSON, in reference index rows), the
    identifier systems the copy's clinic slug, and primary keys an offset. Version rows are not written
    (read and search never touch them); the indexes are built after the load, then ANALYZE."""
    import psycopg
    from sqlalchemy import create_engine, text
    from sqlmodel import SQLModel

    import gateway.db.tables  # noqa: F401  (the tables on SQLModel.metadata)
    from gateway.db.engine import normalize_url

    started = time.perf_counter()
    copies = patients // BASE_PATIENTS
    engine = create_engine(normalize_url(url))
    tables = {t.name: t for t in SQLModel.metadata.sorted_tables}
    bulk = ["resource", "search_token", "search_reference", "search_date", "search_string"]
    indexes = [index for name in bulk for index in tables[name].indexes]
    with engine.begin() as connection:
        for index in indexes:
            index.drop(connection)
    engine.dispose()
    base_rows = base_index(base)
    system = f"{identifier_base.rstrip('/')}/"
    size = len(base)

    def zero(text_id: str) -> str:
        return "000" + text_id[3:] if UUID.fullmatch(text_id.encode()) else text_id

    with (
        psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn,
        conn.cursor() as cursor,
    ):
        clinics = []
        for k in range(copies):
            cursor.execute(
                "INSERT INTO clinic (slug, name, created_at) VALUES (%s, %s, %s) RETURNING id",
                (f"bench-{k:03d}", f"Bench clinic {k}", datetime.now(UTC)),
            )
            clinics.append(cursor.fetchone()[0])
        with cursor.copy(
            "COPY resource (id, clinic_pk, resource_type, resource_id, version_id, last_updated, content, "
            "content_hash, deleted) FROM STDIN"
        ) as copy:
            for pk, row in enumerate(base, start=1):
                content = UUID.sub(lambda m: b"000" + m.group(0)[3:], row.content)
                content = content.replace(f"{system}bench/".encode(), f"{system}bench-000/".encode())
                copy.write_row(
                    (pk, clinics[0], row.resource_type, zero(row.resource_id), row.version_id,
                     row.last_updated, content, row.content_hash, False)
                )  # fmt: skip
        for kind, columns in INDEX_COLUMNS.items():
            with cursor.copy(f"COPY search_{kind} ({', '.join(columns)}) FROM STDIN") as copy:
                for pk, rows in enumerate(base_rows, start=1):
                    for row_kind, values in rows:
                        if row_kind != kind:
                            continue
                        if kind == "reference":
                            values = (*values[:3], zero(values[3]))
                        elif kind == "token" and values[2] and values[2].startswith(f"{system}bench/"):
                            values = (
                                *values[:2],
                                values[2].replace(f"{system}bench/", f"{system}bench-000/"),
                                values[3],
                            )
                        copy.write_row((pk, *values))
        for table in bulk:  # the copies are cloned from these (unindexed tables only grow)
            cursor.execute(f"CREATE TEMP TABLE base_{table} AS SELECT * FROM {table}")
        conn.commit()
        for k in range(1, copies):
            prefix, offset = f"{k:03x}", k * size
            old, new = f"{system}bench-000/", f"{system}bench-{k:03d}/"
            cursor.execute(
                "INSERT INTO resource (id, clinic_pk, resource_type, resource_id, version_id, last_updated, "
                "content, content_hash, deleted) SELECT id + %(offset)s, %(clinic)s, resource_type, "
                "%(prefix)s || substr(resource_id, 4), version_id, last_updated, "
                "convert_to(regexp_replace(replace(convert_from(content, 'UTF8'), %(old)s, %(new)s), "
                "%(pattern)s, '\\1' || %(prefix)s || '\\2', 'g'), 'UTF8'), content_hash, false "
                "FROM base_resource",
                {"offset": offset, "clinic": clinics[k], "prefix": prefix, "old": old, "new": new,
                 "pattern": UUID_IN_JSON, "base": clinics[0]},
            )  # fmt: skip
            bounds = {"offset": offset, "prefix": prefix, "old": old, "new": new, "last": size}
            cursor.execute(
                "INSERT INTO search_reference (resource_pk, resource_type, param, target_type, target_id) "
                "SELECT resource_pk + %(offset)s, resource_type, param, target_type, CASE WHEN target_id ~ "
                "'^000[0-9a-f]{5}-' THEN %(prefix)s || substr(target_id, 4) ELSE target_id END "
                "FROM base_search_reference",
                bounds,
            )
            cursor.execute(
                "INSERT INTO search_token (resource_pk, resource_type, param, system, code) SELECT "
                "resource_pk + %(offset)s, resource_type, param, replace(system, %(old)s, %(new)s), code "
                "FROM base_search_token",
                bounds,
            )
            cursor.execute(
                'INSERT INTO search_date (resource_pk, resource_type, param, start, "end") SELECT '
                'resource_pk + %(offset)s, resource_type, param, start, "end" FROM base_search_date',
                bounds,
            )
            cursor.execute(
                "INSERT INTO search_string (resource_pk, resource_type, param, value) SELECT "
                "resource_pk + %(offset)s, resource_type, param, value FROM base_search_string",
                bounds,
            )
            conn.commit()
            print(f"  copy {k + 1}/{copies}: {(k + 1) * size:,} resources", end="\r", flush=True)
        cursor.execute("SELECT setval(pg_get_serial_sequence('resource', 'id'), %s)", (copies * size,))
        counts = {}
        for table in bulk:
            cursor.execute(f"SELECT count(*) FROM {table}")
            counts[table] = cursor.fetchone()[0]
        conn.commit()
    print()
    loaded = time.perf_counter() - started
    engine = create_engine(normalize_url(url))
    with engine.begin() as connection:
        for index in indexes:
            index.create(connection)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE"))
    engine.dispose()
    return {
        "patients": copies * BASE_PATIENTS,
        "clinics": copies,
        "rows": counts,
        "copy_seconds": round(loaded, 1),
        "index_seconds": round(time.perf_counter() - started - loaded, 1),
    }


def ehr_token(url: str) -> str:
    """An ehr client granted every clinic, and a system/*.read token, written as the token endpoint does."""
    from gateway.auth import credentials
    from gateway.core.config import Settings
    from gateway.db.engine import Session, make_engine
    from gateway.db.repositories import clinics as clinic_repo
    from gateway.db.repositories import tokens as token_repo
    from gateway.db.tables import AccessTokenRow, ClientRow

    settings = Settings(database_url=url)
    engine = make_engine(settings)
    token = credentials.new_token()
    now = datetime.now(UTC)
    with Session(engine) as session:
        pks = [c.id for c in clinic_repo.list_clinics(session) if c.id is not None]
        client = clinic_repo.add_client(
            session,
            client=ClientRow(client_id=credentials.new_client_id(), kind="ehr", name="bench",
                             token_endpoint_auth_method="private_key_jwt", scopes="system/*.read"),
            clinic_pks=pks,
        )  # fmt: skip
        assert client.id is not None
        token_repo.add_token(
            session,
            token=AccessTokenRow(
                token_hash=credentials.token_hash(token, settings.token_signing_secret.get_secret_value()),
                client_pk=client.id,
                scope="system/*.read",
                issued_at=now,
                expires_at=now + timedelta(hours=6),
            ),
        )
        session.commit()
    engine.dispose()
    return token


# --- load generation --------------------------------------------------------------------------------------


def paths_for(patient_ids: list[str]) -> dict[str, list[str]]:
    return {
        "read": [f"/fhir/Patient/{p}" for p in patient_ids],
        "search": [f"/fhir/Observation?patient={p}&category=vital-signs" for p in patient_ids],
        "search-date": [f"/fhir/Encounter?patient={p}&date={quote('ge2026-01-01')}" for p in patient_ids],
    }


def raw_request(port: int, token: str, path: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Accept: application/fhir+json\r\n\r\n"
    ).encode()


async def load(port: int, token: str, paths: list[str], clients: int, seconds: float) -> dict:
    requests = [raw_request(port, token, p) for p in paths]
    return await run_clients(
        port, clients, seconds, lambda index, k: requests[(index * 7 + k + 1) % len(requests)]
    )


class BareServer:
    """A bare FastAPI app answering each recorded path with the gateway's bytes (``--serve-bare``)."""

    def __init__(self, bodies: dict[str, bytes], workdir: Path):
        self.port = free_port()
        self.workdir = workdir
        (workdir / "bare.json").write_bytes(orjson.dumps({k: v.decode() for k, v in bodies.items()}))

    def __enter__(self) -> BareServer:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve-bare", str(self.port), str(self.workdir)],
            stderr=subprocess.DEVNULL,
        )
        wait_until_up(f"http://127.0.0.1:{self.port}/healthz")
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(10)


def serve_bare(port: int, workdir: Path) -> None:
    import uvicorn
    from fastapi import FastAPI
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response

    bodies = {k: v.encode() for k, v in orjson.loads((workdir / "bare.json").read_bytes()).items()}
    app = FastAPI()

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def fhir(request: Request) -> Response:
        key = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return Response(bodies[key], media_type="application/fhir+json")

    app.router.add_route("/healthz", healthz)
    app.router.add_route("/fhir/{path:path}", fhir)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def admin_url() -> str:
    return os.environ.get("KAPGW_BENCH_POSTGRES_URL") or os.environ["KAPGW_TEST_POSTGRES_URL"]


LOAD_MARK = "bench_fhir_read_load"


def _database_url(admin: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    return (
        make_url(admin.replace("postgresql://", "postgresql+psycopg://", 1))
        .set(database=name)
        .render_as_string(hide_password=False)
    )


def reused_database(admin: str, name: str) -> tuple[str, dict | None]:
    """The database ``name`` (``--reuse-database``): created if absent; with the load figures if it was fully
    loaded by an earlier run (the loader writes them into ``bench_fhir_read_load`` as its last step), else
    ``None`` (an interrupted load is dropped and started again)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(_database_url(admin, "postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        exists = c.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
    url = _database_url(admin, name)
    loaded = None
    if exists:
        db = create_engine(url)
        with db.connect() as c:
            if c.execute(text("SELECT to_regclass(:t)"), {"t": LOAD_MARK}).scalar() is not None:
                loaded = c.execute(text(f"SELECT figures FROM {LOAD_MARK}")).scalar()
        db.dispose()
    if loaded is None:
        with engine.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            c.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return url, (orjson.loads(loaded) if isinstance(loaded, str) else loaded)


def mark_loaded(url: str, loaded: dict) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as c:
        c.execute(text(f"CREATE TABLE {LOAD_MARK} (figures text NOT NULL)"))
        c.execute(text(f"INSERT INTO {LOAD_MARK} VALUES (:f)"), {"f": json.dumps(loaded)})
    engine.dispose()


def drop_reused(admin: str, prefix: str, sizes: list[int]) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(_database_url(admin, "postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        for size in sizes:
            c.execute(text(f'DROP DATABASE IF EXISTS "{prefix}_{size}" WITH (FORCE)'))
            print(f"dropped {prefix}_{size}")
    engine.dispose()


def run_size(
    patients: int,
    base: list[Any],
    identifier_base: str,
    clients: list[int],
    seconds: float,
    keep: bool = False,
    reuse: str | None = None,
    load_only: bool = False,
    caches: tuple[str, ...] = ("on", "off"),
) -> dict:
    admin = admin_url()
    if reuse is not None:
        url, loaded = reused_database(admin, f"{reuse}_{patients}")
        keep = True
        drop: Any = None
    else:
        url, drop = postgres_database(admin)
        loaded = None
    rows: list[dict] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if loaded is None:
                subprocess.run([sys.executable, "-m", "gateway.cli", "db", "upgrade"], check=True, cwd=tmp,
                               env={**os.environ, "KAPGW_DATABASE_URL": url}, capture_output=True)  # fmt: skip
                print(f"loading {patients:,} patients")
                loaded = load_copies(url, base, identifier_base, patients)
                if reuse is not None:
                    mark_loaded(url, loaded)
            else:
                print(f"reusing {url.rsplit('/', 1)[-1]} (loaded earlier)")
            print(f"  {loaded}")
            if load_only:
                return {"load": loaded, "results": rows}
            token = ehr_token(url)
            for cache in caches:
                rows += measure(url, Path(tmp), token, loaded, patients, cache, clients, seconds)
    finally:
        if keep or drop is None:
            print(f"  kept the database: {url}")
        else:
            drop()
    return {"load": loaded, "results": rows}


def measure(
    url: str,
    tmp: Path,
    token: str,
    loaded: dict,
    patients: int,
    cache: str,
    clients: list[int],
    seconds: float,
) -> list[dict]:
    """One gateway (read cache on or off) and the bare app, side by side, every op at every client count."""
    import httpx

    rows: list[dict] = []
    gateway = Gateway(url, tmp)
    gateway.env["KAPGW_FHIR_CACHE_MB"] = "64" if cache == "on" else "0"
    with gateway:
        http = httpx.Client(base_url=gateway.base, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        everyone = http.get("/fhir/Patient", params={"_count": "1000", "_total": "accurate"}).json()
        assert everyone["total"] == loaded["patients"], everyone.get("total")
        rng = random.Random(patients)
        ids = [e["resource"]["id"] for e in everyone["entry"]]
        if loaded["patients"] > 1000:  # pick from every clinic, not the first 1,000 patients only
            ids = [e["resource"]["id"] for e in http.get(
                "/fhir/Patient", params={"_count": "1000", "_sort": "-_lastUpdated"}).json()["entry"]] + ids  # fmt: skip
        patient_ids = rng.sample(ids, min(ROTATE, len(ids)))
        ops = paths_for(patient_ids)
        bodies: dict[str, bytes] = {}
        for op_paths in ops.values():
            for path in op_paths:
                response = http.get(path)
                assert response.status_code == 200, (path, response.status_code)
                bodies[path] = response.content
        with BareServer(bodies, Path(tmp)) as bare:
            servers = {"gateway": gateway.port, "bare FastAPI": bare.port}
            for port in servers.values():
                asyncio.run(load(port, token, ops["read"], 8, 1.0))
            for op, op_paths in ops.items():
                for n in clients:
                    for name, port in servers.items():
                        cell = asyncio.run(load(port, token, op_paths, n, seconds))
                        row = {"patients": patients, "cache": cache, "server": name, "op": op,
                               "clients": n, **cell}  # fmt: skip
                        rows.append(row)
                        print_row(row)
    return rows


HEADER = f"{'patients':>9} {'cache':<6}{'server':<14}{'op':<13}{'clients':>8}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"


def print_row(r: dict) -> None:
    print(
        f"{r['patients']:>9} {r['cache']:<6}{r['server']:<14}{r['op']:<13}{r['clients']:>8}{r['requests_per_s']:>9}"
        f"{r['p50_ms']:>9}{r['p95_ms']:>9}{r['p99_ms']:>9}  {r['statuses']}",
        flush=True,
    )


def markdown(rows: list[dict]) -> str:
    lines = [
        "| patients | read cache | op | clients | gateway req/s | p50 / p95 / p99 ms | bare FastAPI req/s "
        "| p50 / p95 / p99 ms | gateway / bare |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    index = {(r["patients"], r["cache"], r["op"], r["clients"], r["server"]): r for r in rows}
    for patients, cache, op, clients, server in index:
        if server != "gateway":
            continue
        g = index[(patients, cache, op, clients, "gateway")]
        b = index[(patients, cache, op, clients, "bare FastAPI")]
        ratio = g["requests_per_s"] / b["requests_per_s"] if b["requests_per_s"] else 0.0
        lines.append(
            f"| {patients:,} | {cache} | {op} | {clients} | {g['requests_per_s']:,.0f} | "
            f"{g['p50_ms']:.1f} / {g['p95_ms']:.1f} / {g['p99_ms']:.1f} | {b['requests_per_s']:,.0f} | "
            f"{b['p50_ms']:.1f} / {b['p95_ms']:.1f} / {b['p99_ms']:.1f} | {ratio:.0%} |"
        )
    return "\n".join(lines)


def growth(rows: list[dict], sizes: list[int]) -> list[str]:
    if len(sizes) < 2:
        return []
    small, large = min(sizes), max(sizes)
    index = {(r["patients"], r["cache"], r["op"], r["clients"], r["server"]): r for r in rows}
    out = []
    for (patients, cache, op, clients, server), r in index.items():
        if patients != small or server != "gateway" or (large, cache, op, clients, server) not in index:
            continue
        big = index[(large, cache, op, clients, server)]
        out.append(
            f"cache {cache}, {op} at {clients} clients: p95 {r['p95_ms']:.1f} -> {big['p95_ms']:.1f} ms "
            f"(x{big['p95_ms'] / r['p95_ms']:.2f}), req/s {r['requests_per_s']:,.0f} -> {big['requests_per_s']:,.0f}"
        )
    return out


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-bare":
        serve_bare(int(sys.argv[2]), Path(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument(
        "--cache",
        nargs="+",
        choices=["on", "off"],
        default=["on", "off"],
        help="measure the gateway with its read cache on, off or both (default both, one after the other)",
    )
    parser.add_argument("--base-cache", help="a file to keep the mapped base clinic in between runs")
    parser.add_argument("--keep", action="store_true", help="keep the databases (prints their URLs)")
    parser.add_argument(
        "--reuse-database",
        metavar="PREFIX",
        help="load each size once into the database PREFIX_<size> and reuse it on later runs (kept: drop it "
        "with --drop-reused PREFIX when done)",
    )
    parser.add_argument("--drop-reused", metavar="PREFIX", help="drop PREFIX_<size> for --sizes, then exit")
    parser.add_argument(
        "--load-only", action="store_true", help="with --reuse-database: load, do not measure"
    )
    args = parser.parse_args()
    if args.drop_reused:
        drop_reused(admin_url(), args.drop_reused, args.sizes)
        return
    cache = Path(args.base_cache) if args.base_cache else None
    if cache is not None and cache.is_file():
        base, identifier_base = pickle.loads(cache.read_bytes())
        print(f"base clinic from {cache}: {len(base):,} resources")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            print(f"mapping the base clinic ({BASE_PATIENTS} patients) through the records service")
            started = time.perf_counter()
            rows, identifier_base = base_clinic(Path(tmp))
            base = [BaseRow(r.resource_type, r.resource_id, r.version_id, r.last_updated, r.content,
                            r.content_hash) for r in rows]  # fmt: skip
            print(f"  {len(base):,} resources in {time.perf_counter() - started:.0f} s")
        if cache is not None:
            cache.write_bytes(pickle.dumps((base, identifier_base)))
    print(HEADER)
    runs = {
        size: run_size(
            size,
            base,
            identifier_base,
            args.clients,
            args.seconds,
            args.keep,
            args.reuse_database,
            args.load_only,
            tuple(args.cache),
        )
        for size in args.sizes
    }
    if args.load_only:
        return
    rows = [row for run in runs.values() for row in run["results"]]
    print()
    print(markdown(rows))
    print()
    for line in growth(rows, args.sizes):
        print(line)
    out = ROOT / "bench" / "results" / "fhir_read.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "machine": {"cpus": os.cpu_count()},
                "seconds": args.seconds,
                "loads": {str(k): v["load"] for k, v in runs.items()},
                "results": rows,
                "growth": growth(rows, args.sizes),
            },
            indent=2,
            default=str,
        )
    )
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
