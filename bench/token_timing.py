"""Token endpoint timing: does a failed client authentication cost the same for known and unknown client ids?

For each backend (SQLite file; PostgreSQL when KAPGW_BENCH_POSTGRES_URL or KAPGW_TEST_POSTGRES_URL is set)
it starts a real `kap-gateway serve` on a fresh database, creates one clinic client, and sends --requests
sequential token requests of each kind, interleaved: a known client id with a wrong secret, an unknown
client id, and (for reference) the right secret. The failed-authentication throttle is raised out of the
way for the run. Prints median / p95 per kind and writes bench/results/token_timing.json.

    python bench/token_timing.py [--requests 40] [--backends sqlite postgresql]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import ROOT, Gateway, postgres_database

KINDS = ("known id, wrong secret", "unknown id", "right secret")


def time_kind(http: httpx.Client, base: str, auth: tuple[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    response = http.post(f"{base}/auth/token", data={"grant_type": "client_credentials"}, auth=auth)
    return (time.perf_counter() - started) * 1000, response.status_code


def run(backend: str, requests: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        drop = None
        if backend == "sqlite":
            url = f"sqlite:///{tmp}/bench.db"
        else:
            url, drop = postgres_database(
                os.environ.get("KAPGW_BENCH_POSTGRES_URL") or os.environ["KAPGW_TEST_POSTGRES_URL"]
            )
        try:
            gateway = Gateway(url, Path(tmp))
            gateway.env["KAPGW_TOKEN_THROTTLE_CLIENT_FAILURES"] = "1000000"
            gateway.env["KAPGW_TOKEN_THROTTLE_ADDRESS_FAILURES"] = "1000000"
            with gateway:
                gateway.cli("clinics", "create", "--slug", "timing", "--name", "timing")
                creds = json.loads(
                    gateway.cli("clients", "create", "--kind", "clinic", "--clinic", "timing", "--name", "t")
                )
                auths = {
                    KINDS[0]: (creds["client_id"], "not-the-secret"),
                    KINDS[1]: (secrets.token_urlsafe(16), "not-the-secret"),
                    KINDS[2]: (creds["client_id"], creds["client_secret"]),
                }
                samples: dict[str, list[float]] = {k: [] for k in KINDS}
                statuses: dict[str, set[int]] = {k: set() for k in KINDS}
                with httpx.Client(timeout=60) as http:
                    for kind in KINDS:  # warm-up
                        time_kind(http, gateway.base, auths[kind])
                    for _ in range(requests):
                        for kind in KINDS:
                            ms, status = time_kind(http, gateway.base, auths[kind])
                            samples[kind].append(ms)
                            statuses[kind].add(status)
        finally:
            if drop:
                drop()
    return {
        "backend": backend,
        "requests": requests,
        "kinds": {
            kind: {
                "median_ms": round(statistics.median(values), 1),
                "p95_ms": round(sorted(values)[int(len(values) * 0.95) - 1], 1),
                "statuses": sorted(statuses[kind]),
            }
            for kind, values in samples.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--backends", nargs="+", default=None)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "token_timing.json"))
    args = parser.parse_args()
    has_pg = bool(os.environ.get("KAPGW_BENCH_POSTGRES_URL") or os.environ.get("KAPGW_TEST_POSTGRES_URL"))
    backends = args.backends or ["sqlite", *(["postgresql"] if has_pg else [])]
    results = []
    print(f"{'backend':<11}{'request':<24}{'median ms':>10}{'p95 ms':>9}  statuses")
    for backend in backends:
        r = run(backend, args.requests)
        results.append(r)
        for kind, figures in r["kinds"].items():
            print(
                f"{backend:<11}{kind:<24}{figures['median_ms']:>10}{figures['p95_ms']:>9}  {figures['statuses']}",
                flush=True,
            )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": {"cpus": os.cpu_count()}, "results": results}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
