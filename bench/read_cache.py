"""FHIR read cache across processes: how long another process's write stays invisible.

Two real ``kap-gateway serve`` processes on one fresh PostgreSQL database (as ``serve --workers 2`` runs
them, but each on its own port so the bench can pick): a clinic pushes a patient update to process A; an EHR
reads that patient from process B, whose read cache held the old version, in a tight loop until it answers
the new ``versionId``. The figure is the time from A's response to the first new answer from B: the
window in which B still served the old version (PostgreSQL's NOTIFY delivery to B's listener, plus one
read). Within one process there is no such window (the commit tells the cache before the response).

    python bench/read_cache.py [--updates 200]

Needs KAPGW_BENCH_POSTGRES_URL or KAPGW_TEST_POSTGRES_URL. Prints p50/p95/max, writes
bench/results/read_cache.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.fhir_read import ehr_token  # noqa: E402
from bench.ingest import Gateway, postgres_database  # noqa: E402

PATIENT = {"given_name": "Avery", "family_name": "Testpatient", "birth_date": "1984-03-12", "sex": "female"}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--updates", type=int, default=200)
    args = parser.parse_args()
    admin = os.environ.get("KAPGW_BENCH_POSTGRES_URL") or os.environ["KAPGW_TEST_POSTGRES_URL"]
    url, drop = postgres_database(admin)
    try:
        with tempfile.TemporaryDirectory() as tmp, Gateway(url, Path(tmp)) as a, Gateway(url, Path(tmp)) as b:
            clinic = a.client_for("bench")
            assert clinic.put("/api/v1/patients/p1", json=PATIENT).status_code in (200, 201)
            (patient,) = [r for r in clinic.get("/api/v1/patients/p1/fhir").json()["entry"]
                          if r["resource"]["resourceType"] == "Patient"]  # fmt: skip
            path = f"/fhir/Patient/{patient['resource']['id']}"
            ehr = httpx.Client(
                base_url=b.base, headers={"Authorization": f"Bearer {ehr_token(url)}"}, timeout=30
            )
            windows: list[float] = []
            reads: list[int] = []
            deadline_s = 5.0
            for n in range(args.updates):
                before = ehr.get(path).json()["meta"]["versionId"]
                ehr.get(path)  # B now holds the current version (a cache hit from here on)
                response = clinic.put("/api/v1/patients/p1", json={**PATIENT, "given_name": f"Avery{n}"})
                assert response.status_code == 200, response.text
                written = time.perf_counter()
                count = 0
                while True:
                    count += 1
                    if ehr.get(path).json()["meta"]["versionId"] != before:
                        break
                    if time.perf_counter() - written > deadline_s:
                        raise SystemExit(
                            f"process B still served version {before} {deadline_s} s after the write"
                        )
                windows.append((time.perf_counter() - written) * 1000)
                reads.append(count)
            windows.sort()
            figures = {
                "updates": args.updates,
                "window_ms": {
                    "p50": round(statistics.median(windows), 2),
                    "p95": round(windows[int(len(windows) * 0.95) - 1], 2),
                    "max": round(windows[-1], 2),
                },
                "stale_reads_per_update": {
                    "mean": round(statistics.mean(c - 1 for c in reads), 2),
                    "max": max(reads) - 1,
                },
            }
    finally:
        drop()
    print(json.dumps(figures, indent=2))
    out = ROOT / "bench" / "results" / "read_cache.json"
    out.write_text(json.dumps(figures, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
