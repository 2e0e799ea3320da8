"""Running the sync deliverer in tests until it has nothing due, with a bound instead of a possible endless loop
(under load, items waiting with a short backoff can become due again faster than one pass ends)."""

from __future__ import annotations

from gateway.sync.outbox import Deliverer

MAX_CLAIMS = 5_000


def run_until_idle(deliverer: Deliverer, *, max_claims: int = MAX_CLAIMS) -> int:
    """Claims and delivers until nothing is due; returns the number of claims, fails past ``max_claims``."""
    for claims in range(max_claims):
        if not deliverer.run_once():
            return claims
    raise AssertionError(f"the deliverer still had due work after {max_claims} claims (a retry loop?)")
