"""Concurrency benchmark: requests/s and p50/p95/p99 latency of the records API at 1, 8, 32 and 64 clients.

For each backend (SQLite file; PostgreSQL when KAPGW_BENCH_POSTGRES_URL or KAPGW_TEST_POSTGRES_URL is set)
it starts a real `kap-gateway serve` (uvicorn, one process, default settings) on a fresh database, and beside
it a bare FastAPI app on the same uvicorn that answers the same bytes without doing anything (the floor:
HTTP parsing, routing, the event loop). Each cell runs its clients for --seconds over keep-alive
connections (a small asyncio HTTP/1.1 client, so the load generator is not the bottleneck):

* GET: ``GET /api/v1/patients/{id}`` (token check + one read);
* PUT: ``PUT /api/v1/patients/{id}`` with a changed phone each time, one patient per client (token check,
  upsert, a new FHIR resource version with search index and Provenance, commit).

Prints a table and writes bench/results/concurrency.json; exits non-zero if any request got a 5xx at 64
clients.

    python bench/concurrency.py [--seconds 5] [--clients 1 8 32 64] [--backends sqlite postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ingest import Gateway, bench_database, free_port, wait_until_up  # noqa: E402
from bench.load import run_clients  # noqa: E402
from gateway.clinic_api.examples import RECORD_EXAMPLES  # noqa: E402

PATIENT = RECORD_EXAMPLES["patients"][1]


class BareServer:
    """A bare FastAPI app answering GET and PUT with fixed bytes (this script, run as --serve-bare)."""

    def __init__(self, get_body: bytes, put_body: bytes, workdir: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        (workdir / "get.json").write_bytes(get_body)
        (workdir / "put.json").write_bytes(put_body)
        self.workdir = workdir

    def __enter__(self) -> BareServer:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve-bare", str(self.port), str(self.workdir)],
            stderr=subprocess.DEVNULL,
        )
        wait_until_up(f"{self.base}/api/v1/patients/x")
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(10)


def serve_bare(port: int, workdir: Path) -> None:
    import uvicorn
    from fastapi import FastAPI, Request, Response

    get_body = (workdir / "get.json").read_bytes()
    put_body = (workdir / "put.json").read_bytes()
    app = FastAPI()

    @app.get("/api/v1/patients/{external_id}")
    async def get(external_id: str) -> Response:
        return Response(get_body, media_type="application/json")

    @app.put("/api/v1/patients/{external_id}")
    async def put(external_id: str, request: Request) -> Response:
        await request.body()
        return Response(put_body, media_type="application/json")

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def get_request(port: int, token: str, external_id: str) -> bytes:
    return (
        f"GET /api/v1/patients/{external_id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    ).encode()


def put_request(port: int, token: str, external_id: str, n: int) -> bytes:
    body = orjson.dumps({**PATIENT, "phone": f"+1 555 {n // 10000 % 10000:04d} {n % 10000:04d}"})
    return (
        f"PUT /api/v1/patients/{external_id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def load(port: int, token: str, op: str, clients: int, seconds: float) -> dict:
    first = int(time.time() * 1000) % 1_000_000  # a fresh phone number for every PUT of every run

    def request_for(index: int, k: int) -> bytes:
        if op == "GET":
            return get_request(port, token, "bench-0")
        return put_request(port, token, f"bench-{index}", index * 1_000_000 + first + k + 1)

    return await run_clients(port, clients, seconds, request_for)


def run_backend(backend: str, clients: list[int], seconds: float) -> list[dict]:
    rows: list[dict] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        bench_database(backend, tmp) as url,
        Gateway(url, Path(tmp)) as gateway,
    ):
        http = gateway.client_for("bench")
        token = http.headers["Authorization"].removeprefix("Bearer ")
        for index in range(max(clients)):  # one patient per PUT client
            http.put(f"/api/v1/patients/bench-{index}", json=PATIENT).raise_for_status()
        get_body = http.get("/api/v1/patients/bench-0").content
        put_body = http.put("/api/v1/patients/bench-0", json={**PATIENT, "phone": "+1 555 0100"}).content
        with BareServer(get_body, put_body, Path(tmp)) as bare:
            servers = {"gateway": gateway.port, "bare FastAPI": bare.port}
            for port in servers.values():  # warm up both
                asyncio.run(load(port, token, "GET", 8, 1.0))
            for op in ("GET", "PUT"):
                for n in clients:
                    for name, port in servers.items():
                        cell = asyncio.run(load(port, token, op, n, seconds))
                        row = {"backend": backend, "server": name, "op": op, "clients": n, **cell}
                        rows.append(row)
                        print_row(row)
    return rows


HEADER = (
    f"{'backend':<11}{'server':<14}{'op':<5}{'clients':>8}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}"
    f"{'p99 ms':>9}{'5xx':>6}"
)


def print_row(r: dict) -> None:
    print(
        f"{r['backend']:<11}{r['server']:<14}{r['op']:<5}{r['clients']:>8}{r['requests_per_s']:>9}"
        f"{r['p50_ms']:>9}{r['p95_ms']:>9}{r['p99_ms']:>9}{r['5xx']:>6}",
        flush=True,
    )


def markdown(rows: list[dict]) -> str:
    """The README table: gateway and bare FastAPI side by side per backend, operation and client count."""
    lines = [
        "| backend | op | clients | gateway req/s | p50 / p95 / p99 ms | bare FastAPI req/s | p50 / p95 / p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    index = {(r["backend"], r["op"], r["clients"], r["server"]): r for r in rows}
    for backend, op, clients, server in index:
        if server != "gateway":
            continue
        g, b = index[(backend, op, clients, "gateway")], index[(backend, op, clients, "bare FastAPI")]
        lines.append(
            f"| {backend} | {op} | {clients} | {g['requests_per_s']:,.0f} | "
            f"{g['p50_ms']:.1f} / {g['p95_ms']:.1f} / {g['p99_ms']:.1f} | {b['requests_per_s']:,.0f} | "
            f"{b['p50_ms']:.1f} / {b['p95_ms']:.1f} / {b['p99_ms']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-bare":
        serve_bare(int(sys.argv[2]), Path(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--backends", nargs="+", default=None)
    args = parser.parse_args()
    has_pg = bool(os.environ.get("KAPGW_BENCH_POSTGRES_URL") or os.environ.get("KAPGW_TEST_POSTGRES_URL"))
    backends = args.backends or ["sqlite", *(["postgresql"] if has_pg else [])]
    print(HEADER)
    rows = [row for backend in backends for row in run_backend(backend, args.clients, args.seconds)]
    print()
    print(markdown(rows))
    out = ROOT / "bench" / "results" / "concurrency.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"machine": {"cpus": os.cpu_count()}, "seconds": args.seconds, "results": rows}, indent=2)
    )
    print(f"wrote {out.relative_to(ROOT)}")
    failed = [r for r in rows if r["clients"] == max(args.clients) and r["5xx"]]
    if failed:
        sys.exit(
            f"5xx answers at {max(args.clients)} clients: {[(r['backend'], r['op'], r['5xx']) for r in failed]}"
        )


if __name__ == "__main__":
    main()
