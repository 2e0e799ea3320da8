"""The retry table: what each failure means for a delivery (gateway.sync.retry)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from gateway.core.config import Settings
from gateway.sync.errors import EhrAuthError, EhrError, EhrStatusError, EhrTransportError
from gateway.sync.retry import backoff_seconds, decide

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
SETTINGS = Settings(sync_backoff_base_seconds=2, sync_backoff_cap_seconds=60, sync_max_age_seconds=3600)
OUTCOME = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "invalid"}]}


@pytest.mark.parametrize(
    ("error", "status"),
    [
        pytest.param(EhrTransportError("ConnectError"), "pending", id="transport"),
        pytest.param(EhrStatusError(500, "x"), "pending", id="500"),
        pytest.param(EhrStatusError(503, "x", retry_after=5), "pending", id="503"),
        pytest.param(EhrStatusError(429, "x", retry_after=5), "pending", id="429"),
        pytest.param(EhrStatusError(408, "x"), "pending", id="408"),
        pytest.param(EhrStatusError(409, "x"), "pending", id="409"),
        pytest.param(EhrAuthError("refused"), "pending", id="auth"),
        pytest.param(EhrStatusError(400, "x", outcome=OUTCOME), "dead", id="400"),
        pytest.param(EhrStatusError(403, "x", outcome=OUTCOME), "dead", id="403"),
        pytest.param(EhrStatusError(412, "x", outcome=OUTCOME), "dead", id="412"),
        pytest.param(EhrStatusError(422, "x", outcome=OUTCOME), "dead", id="422"),
    ],
)
def test_retryable_failures_wait_and_others_are_dead_letters(error: EhrError, status: str) -> None:
    decision = decide(error, attempts=0, created_at=NOW, now=NOW, settings=SETTINGS)
    assert decision.status == status
    if status == "dead":
        assert decision.outcome == OUTCOME and decision.outcome_code == "invalid"
    else:
        assert NOW <= decision.next_attempt_at <= NOW + timedelta(seconds=60)


def test_retry_after_is_a_floor() -> None:
    decision = decide(
        EhrStatusError(429, "x", retry_after=30), attempts=0, created_at=NOW, now=NOW, settings=SETTINGS
    )
    assert decision.next_attempt_at >= NOW + timedelta(seconds=30)


def test_too_old_is_a_dead_letter_even_when_retryable() -> None:
    decision = decide(
        EhrTransportError("ConnectError"),
        attempts=3,
        created_at=NOW - timedelta(hours=2),
        now=NOW,
        settings=SETTINGS,
    )
    assert decision.status == "dead"
    assert decision.outcome is not None and decision.outcome["issue"][0]["code"] == "transient"


def test_backoff_is_full_jitter_under_a_growing_capped_ceiling() -> None:
    rng = random.Random(1)
    for attempts in range(12):
        ceiling = min(60, 2 * 2**attempts)
        samples = [backoff_seconds(attempts, base=2, cap=60, rng=rng) for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling * 0.8  # spread over the whole range, not clustered at the ceiling
        assert min(samples) < ceiling * 0.2
