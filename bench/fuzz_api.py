"""Schemathesis run over the records API and the token endpoint, all checks, against a real gateway per database.

For each backend (SQLite file; PostgreSQL when KAPGW_BENCH_POSTGRES_URL or KAPGW_TEST_POSTGRES_URL is set)
it starts `kap-gateway serve` on a fresh database, creates a clinic with one record of each kind (so
references can resolve) and a client, then runs `schemathesis run` twice from the gateway's own
/openapi.json with `--checks all`: the /api/v1 operations with the clinic's bearer token, and /auth/token
with the client's HTTP Basic credentials. Prints the case counts, every 5xx and the other check failures
per check, writes bench/results/fuzz_api.json, and exits 1 if any response was a 5xx.

Not part of the test suite (it takes minutes); tests/gateway/clinic_api/test_clinic_api_schemathesis.py
is the small in-suite run.

    python bench/fuzz_api.py [--max-examples 220] [--backends sqlite postgresql] [--seed 6]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import ROOT, Gateway, postgres_database

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
SEED_KINDS = ("patients", "practitioners", "sessions", "doses", "vitals", "assessments", "adverse-events")


def seed_clinic(gateway: Gateway) -> tuple[str, tuple[str, str]]:
    """A clinic with one record of each writable kind; returns (bearer token, (client id, secret))."""
    sys.path.insert(0, str(ROOT))
    from gateway.clinic_api.examples import RECORD_EXAMPLES

    gateway.cli("clinics", "create", "--slug", "fuzz", "--name", "Fuzz Clinic")
    creds = json.loads(
        gateway.cli("clients", "create", "--kind", "clinic", "--clinic", "fuzz", "--name", "fuzz")
    )
    basic = (creds["client_id"], creds["client_secret"])
    token = httpx.post(
        f"{gateway.base}/auth/token", data={"grant_type": "client_credentials"}, auth=basic
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    for kind in SEED_KINDS:
        external_id, record = RECORD_EXAMPLES[kind]
        httpx.put(
            f"{gateway.base}/api/v1/{kind}/{external_id}", json=record, headers=headers
        ).raise_for_status()
    return token, basic


def schemathesis_run(
    gateway: Gateway,
    *,
    name: str,
    filters: list[str],
    auth: list[str],
    max_examples: int,
    seed: int,
    out: Path,
) -> dict:
    report = out / f"{name}.json"
    junit = out / f"{name}.junit.xml"
    command = [
        SCHEMATHESIS,
        "run",
        f"{gateway.base}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(max_examples),
        "--seed",
        str(seed),
        "--workers",
        "1",  # hypothesis' lambda-source cache is not thread-safe (a "Runtime Error" with 2 workers)
        "--request-timeout",
        "60",
        "--continue-on-failure",
        "--suppress-health-check",
        "all",
        "--report",
        "json,junit",
        "--report-json-path",
        str(report),
        "--report-junit-path",
        str(junit),
        "--output-truncate",
        "true",
        *filters,
        *auth,
    ]
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, cwd=out)
    seconds = time.perf_counter() - started
    log = completed.stdout + completed.stderr
    (out / f"{name}.log").write_text(log)
    return summarize(json.loads(report.read_text()), log, seconds=seconds, exit_code=completed.returncode)


def summarize(report: dict, log: str, *, seconds: float, exit_code: int) -> dict:
    """Case counts, the 5xx cases (as schemathesis prints them, secrets filtered) and failures per check."""
    server_errors = [
        block.strip()
        for block in log.split("Test Case ID:")[1:]
        if "ST101" in block.split("Reproduce with:")[0] or "[5" in block.split("Reproduce with:")[0]
    ]
    return {
        "seconds": round(seconds, 1),
        "exit_code": exit_code,
        "operations": report["operations"]["tested"],
        "cases": report["test_cases"]["generated"],
        "cases_with_failures": report["test_cases"]["with_failures"],
        "server_errors": sum(f["count"] for f in report["failures"] if f["code"] == "ST101"),
        "server_error_cases": [block.split("st replay")[0].strip() for block in server_errors],
        "failures": [
            {"check": f["code"], "title": f["title"], "count": f["count"], "operations": f["operations"]}
            for f in report["failures"]
        ],
        "errors": report["errors"],
    }


def run(backend: str, max_examples: int, seed: int, out: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        drop = None
        if backend == "sqlite":
            url = f"sqlite:///{tmp}/fuzz.db"
        else:
            url, drop = postgres_database(
                os.environ.get("KAPGW_BENCH_POSTGRES_URL") or os.environ["KAPGW_TEST_POSTGRES_URL"]
            )
        try:
            with Gateway(url, Path(tmp)) as gateway:
                token, (client_id, secret) = seed_clinic(gateway)
                runs = {
                    "records": schemathesis_run(
                        gateway,
                        name=f"{backend}-records",
                        filters=["--include-path-regex", "^/api/v1/"],
                        auth=["--header", f"Authorization: Bearer {token}"],
                        max_examples=max_examples,
                        seed=seed,
                        out=out,
                    ),
                    "token": schemathesis_run(
                        gateway,
                        name=f"{backend}-token",
                        filters=["--include-path", "/auth/token"],
                        auth=["--auth", f"{client_id}:{secret}"],
                        max_examples=max_examples,
                        seed=seed,
                        out=out,
                    ),
                }
        finally:
            if drop:
                drop()
    return {"backend": backend, "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--max-examples", type=int, default=220)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--backends", nargs="+", default=None)
    args = parser.parse_args()
    has_pg = bool(os.environ.get("KAPGW_BENCH_POSTGRES_URL") or os.environ.get("KAPGW_TEST_POSTGRES_URL"))
    backends = args.backends or ["sqlite", *(["postgresql"] if has_pg else [])]
    out = ROOT / "bench" / "results" / "fuzz_api"
    out.mkdir(parents=True, exist_ok=True)
    results = []
    print(
        f"{'backend':<11}{'run':<9}{'operations':>11}{'cases':>8}{'5xx':>5}  other check failures", flush=True
    )
    for backend in backends:
        result = run(backend, args.max_examples, args.seed, out)
        results.append(result)
        for name, r in result["runs"].items():
            others = ", ".join(
                f"{f['check']} {f['title']} x{f['count']}" for f in r["failures"] if f["check"] != "ST101"
            )
            print(
                f"{backend:<11}{name:<9}{r['operations']:>11}{r['cases']:>8}{r['server_errors']:>5}  {others or '-'}"
            )
            for case in r["server_error_cases"]:
                print("    5xx: " + case.replace("\n", "\n         "))
            for error in r["errors"]:
                print(f"    schemathesis error: {error['title']} x{error['count']}")
    total = {b["backend"]: sum(r["cases"] for r in b["runs"].values()) for b in results}
    print("cases per backend: " + ", ".join(f"{k} {v}" for k, v in total.items()))
    path = ROOT / "bench" / "results" / "fuzz_api.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"wrote {path.relative_to(ROOT)} (logs and reports in {out.relative_to(ROOT)})")
    if any(r["server_errors"] for b in results for r in b["runs"].values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
