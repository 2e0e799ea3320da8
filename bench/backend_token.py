"""SMART Backend Services token issue latency: private_key_jwt client_credentials against a real gateway.

For each backend (SQLite file; PostgreSQL when KAPGW_BENCH_POSTGRES_URL or KAPGW_TEST_POSTGRES_URL is
set) it starts a real `kap-gateway serve` on a fresh database, registers an EHR client with the synthetic
keys of fixtures/keys (`clients create --kind ehr --jwks-file`), and sends --requests sequential token
requests per kind, each with a freshly signed assertion (new jti, exp = now + 300 s):

- RS384 and ES384 assertions that succeed (verify, jti insert, token insert, audit event);
- an assertion of the client signed by another key with the same kid (bad signature), and one in the name
  of an unknown client (verified against a dummy key): the two failures must cost the same;
- a replayed assertion (refused by the jti store).

The throttle is raised out of the way. Signing happens before the clock starts, so the figures are the
server's (plus loopback HTTP). Prints p50 / p95 per kind and writes bench/results/backend_token.json.

    python bench/backend_token.py [--requests 200] [--backends sqlite postgresql]
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
from joserfc import jwk, jwt

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import ROOT, Gateway, bench_database

KEYS = ROOT / "fixtures" / "keys"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
KINDS = ("RS384", "ES384", "known client, bad signature", "unknown client", "replayed jti")


def load(name: str) -> tuple[jwk.Key, dict]:
    data = json.loads((KEYS / f"{name}.private.jwk.json").read_text())
    return jwk.import_key(data), data


def assertion(client_id: str, token_url: str, key: tuple[jwk.Key, dict]) -> str:
    secret, data = key
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "iat": now,
        "exp": now + 300,
        "jti": secrets.token_urlsafe(24),
    }
    return jwt.encode(
        {"alg": data["alg"], "kid": data["kid"], "typ": "JWT"}, claims, secret, algorithms=[data["alg"]]
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(backend: str, requests: int) -> dict:
    rs, es, impostor = load("backend-rs384"), load("backend-es384"), load("other-rs384")
    with tempfile.TemporaryDirectory() as tmp, bench_database(backend, tmp) as url:
        gateway = Gateway(url, Path(tmp))
        gateway.env["KAPGW_TOKEN_THROTTLE_CLIENT_FAILURES"] = "1000000"
        gateway.env["KAPGW_TOKEN_THROTTLE_ADDRESS_FAILURES"] = "1000000"
        with gateway:
            gateway.cli("clinics", "create", "--slug", "bench", "--name", "bench")
            client_id = json.loads(
                gateway.cli(
                    "clients",
                    "create",
                    "--kind",
                    "ehr",
                    "--name",
                    "bench EHR",
                    "--clinic",
                    "bench",
                    "--jwks-file",
                    str(KEYS / "backend.jwks.json"),
                    "--scope",
                    "system/*.rs",
                )
            )["client_id"]
            token_url = f"{gateway.base}/auth/token"
            used = assertion(client_id, token_url, rs)
            samples: dict[str, list[float]] = {k: [] for k in KINDS}
            statuses: dict[str, set[int]] = {k: set() for k in KINDS}
            with httpx.Client(timeout=60) as http:

                def send(kind: str, signed: str) -> None:
                    form = {
                        "grant_type": "client_credentials",
                        "scope": "system/*.rs",
                        "client_assertion_type": ASSERTION_TYPE,
                        "client_assertion": signed,
                    }
                    started = time.perf_counter()
                    response = http.post(token_url, data=form)
                    samples[kind].append((time.perf_counter() - started) * 1000)
                    statuses[kind].add(response.status_code)

                send("RS384", used)  # warm-up, and the assertion replayed below
                samples["RS384"].clear()
                for _ in range(requests):
                    send("RS384", assertion(client_id, token_url, rs))
                    send("ES384", assertion(client_id, token_url, es))
                    send("known client, bad signature", assertion(client_id, token_url, impostor))
                    send("unknown client", assertion("no-such-" + secrets.token_hex(4), token_url, rs))
                    send("replayed jti", used)
    return {
        "backend": backend,
        "requests": requests,
        "kinds": {
            kind: {
                "p50_ms": round(statistics.median(values), 2),
                "p95_ms": round(percentile(values, 0.95), 2),
                "statuses": sorted(statuses[kind]),
            }
            for kind, values in samples.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    default = ["sqlite"] + (
        ["postgresql"]
        if os.environ.get("KAPGW_BENCH_POSTGRES_URL") or os.environ.get("KAPGW_TEST_POSTGRES_URL")
        else []
    )
    parser.add_argument("--backends", nargs="+", default=default)
    args = parser.parse_args()
    results = [run(backend, args.requests) for backend in args.backends]
    for result in results:
        print(f"\n{result['backend']}: {result['requests']} sequential requests per kind")
        print(f"{'kind':<30} {'p50 ms':>8} {'p95 ms':>8}  statuses")
        for kind, figures in result["kinds"].items():
            print(f"{kind:<30} {figures['p50_ms']:>8} {figures['p95_ms']:>8}  {figures['statuses']}")
    out = ROOT / "bench" / "results" / "backend_token.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
