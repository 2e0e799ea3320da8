"""Retry policy of deliveries (DESIGN §8): what an error means for the outbox rows it hit.

Exponential backoff with full jitter (aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter):
the n-th retry waits ``random(0, min(cap, base * 2**n))``; an EHR's ``Retry-After`` (429, 503) is honoured
as a floor. Transport errors, 5xx, 408, 409, 425 and 429 are retried, an authentication failure too (a
fixed key or registration recovers by itself); any other 4xx is a dead letter, with the EHR's
OperationOutcome kept. A delivery still failing ``sync_max_age_seconds`` after it was written is a dead
letter too.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gateway.core.config import Settings
from gateway.sync.errors import EhrError, EhrTransportError


@dataclass(frozen=True)
class Decision:
    status: str  # "pending" (retry) or "dead"
    next_attempt_at: datetime
    status_code: int | None
    outcome_code: str | None
    outcome: dict[str, Any] | None


def backoff_seconds(attempts: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**attempts)]."""
    ceiling = min(cap, base * (2 ** min(attempts, 62)))
    return (rng or random).uniform(0, ceiling)


def error_outcome(error: EhrError) -> dict[str, Any]:
    """What is kept of the failure: the EHR's OperationOutcome, or one naming the transport error."""
    if error.outcome is not None:
        return error.outcome
    code = "transient" if isinstance(error, EhrTransportError) else "exception"
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": str(error)[:300]}],
    }


def decide(
    error: EhrError,
    *,
    attempts: int,
    created_at: datetime,
    now: datetime,
    settings: Settings,
    rng: random.Random | None = None,
) -> Decision:
    outcome = error_outcome(error)
    code = error.outcome_code or outcome["issue"][0]["code"]
    too_old = (now - created_at).total_seconds() >= settings.sync_max_age_seconds
    if not error.retryable or too_old:
        return Decision("dead", now, error.status_code, code, outcome)
    wait = backoff_seconds(
        attempts, base=settings.sync_backoff_base_seconds, cap=settings.sync_backoff_cap_seconds, rng=rng
    )
    if error.retry_after is not None:
        wait = max(wait, min(error.retry_after, settings.sync_backoff_cap_seconds))
    return Decision("pending", now + timedelta(seconds=wait), error.status_code, code, outcome)
