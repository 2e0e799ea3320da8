"""The load generator the HTTP benchmarks share: keep-alive clients that send raw HTTP/1.1 requests for a
fixed time and report throughput, latency quantiles and status counts.

A small asyncio client (no HTTP library), so the generator is not the bottleneck of a benchmark.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable

LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


class Connection:
    """One keep-alive HTTP/1.1 connection; responses must carry Content-Length (uvicorn's do)."""

    def __init__(self, port: int):
        self.port = port

    async def __aenter__(self) -> Connection:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.writer.close()

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        match = LENGTH.search(head)
        body = await self.reader.readexactly(int(match.group(1))) if match else b""
        return int(head[9:12]), body


async def run_clients(
    port: int, clients: int, seconds: float, request_for: Callable[[int, int], bytes]
) -> dict:
    """``clients`` connections, each sending ``request_for(client, k)`` (k = 0, 1, ... per client) one
    after the other for ``seconds``; returns requests, requests/s, p50/p95/p99/max ms and statuses."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    deadline = time.perf_counter() + seconds

    async def client(index: int) -> None:
        k = 0
        async with Connection(port) as connection:
            while time.perf_counter() < deadline:
                raw = request_for(index, k)
                k += 1
                started = time.perf_counter()
                status, _ = await connection.request(raw)
                latencies.append(time.perf_counter() - started)
                statuses[status] += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    elapsed = time.perf_counter() - started
    quantiles = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(quantiles[49] * 1000, 2),
        "p95_ms": round(quantiles[94] * 1000, 2),
        "p99_ms": round(quantiles[98] * 1000, 2),
        "max_ms": round(max(latencies) * 1000, 2),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "5xx": sum(v for k, v in statuses.items() if k >= 500),
    }
