"""Ingest benchmark: records/s through the clinic API over real HTTP (uvicorn), batch and single PUT.

For each backend (SQLite file; PostgreSQL when KAPGW_BENCH_POSTGRES_URL or KAPGW_TEST_POSTGRES_URL is set)
and each clinic size (default 100 and 1,000 demo patients) it starts a fresh gateway on a fresh database,
loads the demo clinic with POST /api/v1/batch (500 records a request), then PUTs the first
--single-limit records of a second clinic one by one. Prints a table and writes bench/results/ingest.json.

    python bench/ingest.py [--patients 100 1000] [--single-limit 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fixtures.demo import generate_clinic  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str) -> None:
    """Polls ``url`` until it answers 200 (10 s at most)."""
    for _ in range(100):
        try:
            if httpx.get(url).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def bench_database(backend: str, tmp: str) -> Iterator[str]:
    """A fresh database URL: a SQLite file in ``tmp``, or a new PostgreSQL database dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp}/bench.db"
        return
    url, drop = postgres_database(
        os.environ.get("KAPGW_BENCH_POSTGRES_URL") or os.environ["KAPGW_TEST_POSTGRES_URL"]
    )
    try:
        yield url
    finally:
        drop()


class Gateway:
    """A real `kap-gateway serve` process on a fresh database."""

    def __init__(self, database_url: str, workdir: Path):
        self.database_url = database_url
        self.workdir = workdir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "KAPGW_DATABASE_URL": database_url,
            "KAPGW_BASE_URL": self.base,
            "KAPGW_LOG_LEVEL": "WARNING",
            "KAPGW_MAX_BODY_BYTES": str(64 * 1024 * 1024),
        }

    def cli(self, *args: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "gateway.cli", *args],
            env=self.env,
            cwd=self.workdir,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def __enter__(self) -> Gateway:
        self.cli("db", "upgrade")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve", "--port", str(self.port)],
            env=self.env,
            cwd=self.workdir,
            stderr=subprocess.DEVNULL,
        )
        wait_until_up(f"{self.base}/healthz")
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(10)

    def client_for(self, slug: str) -> httpx.Client:
        self.cli("clinics", "create", "--slug", slug, "--name", slug)
        creds = json.loads(
            self.cli("clients", "create", "--kind", "clinic", "--clinic", slug, "--name", "bench")
        )
        token = httpx.post(
            f"{self.base}/auth/token",
            data={"grant_type": "client_credentials"},
            auth=(creds["client_id"], creds["client_secret"]),
        ).json()["access_token"]
        return httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {token}"}, timeout=300)


def postgres_database(admin_url: str) -> tuple[str, callable]:
    admin = create_engine(
        make_url(admin_url.replace("postgresql://", "postgresql+psycopg://", 1)), isolation_level="AUTOCOMMIT"
    )
    name = f"kapgw_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    url = admin.url.set(database=name).render_as_string(hide_password=False)
    return url, drop


def run(backend: str, patients: int, single_limit: int) -> dict:
    clinic = generate_clinic(patients=patients, seed=0)
    with (
        tempfile.TemporaryDirectory() as tmp,
        bench_database(backend, tmp) as url,
        Gateway(url, Path(tmp)) as gateway,
    ):
        http = gateway.client_for("bench-batch")
        started = time.perf_counter()
        for batch in clinic.batches(500):
            body = [{"kind": k, "id": i, "record": r} for k, i, r in batch]
            response = http.post("/api/v1/batch", json=body)
            response.raise_for_status()
        batch_seconds = time.perf_counter() - started
        http = gateway.client_for("bench-single")
        subset = clinic.entries[:single_limit]
        started = time.perf_counter()
        for kind, external_id, record in subset:
            http.put(f"/api/v1/{kind}/{external_id}", json=record).raise_for_status()
        single_seconds = time.perf_counter() - started
        started = time.perf_counter()
        for kind, external_id, record in subset[:500]:  # repeated identical PUTs: the no-op path
            assert http.put(f"/api/v1/{kind}/{external_id}", json=record).json()["outcome"] == "unchanged"
        noop_seconds = time.perf_counter() - started
    return {
        "backend": backend,
        "patients": patients,
        "records": len(clinic.entries),
        "batch_records_per_s": round(len(clinic.entries) / batch_seconds, 1),
        "batch_seconds": round(batch_seconds, 2),
        "single_put_records": len(subset),
        "single_put_records_per_s": round(len(subset) / single_seconds, 1),
        "noop_put_per_s": round(min(500, len(subset)) / noop_seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--single-limit", type=int, default=2000)
    parser.add_argument("--backends", nargs="+", default=None)
    args = parser.parse_args()
    has_pg = bool(os.environ.get("KAPGW_BENCH_POSTGRES_URL") or os.environ.get("KAPGW_TEST_POSTGRES_URL"))
    backends = args.backends or ["sqlite", *(["postgresql"] if has_pg else [])]
    results = []
    print(
        f"{'backend':<11}{'patients':>9}{'records':>9}{'batch rec/s':>13}{'PUT rec/s':>11}{'no-op PUT/s':>13}"
    )
    for backend in backends:
        for patients in args.patients:
            r = run(backend, patients, args.single_limit)
            results.append(r)
            print(
                f"{r['backend']:<11}{r['patients']:>9}{r['records']:>9}{r['batch_records_per_s']:>13}"
                f"{r['single_put_records_per_s']:>11}{r['noop_put_per_s']:>13}",
                flush=True,
            )
    out = ROOT / "bench" / "results" / "ingest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": {"cpus": os.cpu_count()}, "results": results}, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
