"""Outbound EHR errors (STYLE.md): the worker decides retry or dead letter from the type alone.

``EhrError`` -> ``EhrTransportError`` (connect, timeout, dropped connection: retried),
``EhrStatusError`` (an HTTP status: ``retryable`` for 408, 409, 425, 429 and 5xx, with the EHR's
``Retry-After``; any other 4xx goes to the dead letters with the EHR's OperationOutcome kept) and
``EhrAuthError`` (the token endpoint refused us, or the EHR answered 401 after one re-authentication).
Messages hold statuses, codes and URLs' paths only, never a body (PHI rule).
"""

from __future__ import annotations

from typing import Any

from gateway.core.errors import GatewayError

RETRYABLE_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class EhrError(Exception):
    retryable: bool = True
    status_code: int | None = None
    outcome: dict[str, Any] | None = None
    retry_after: float | None = None

    @property
    def outcome_code(self) -> str | None:
        issues = (self.outcome or {}).get("issue") or []
        return str(issues[0].get("code")) if issues and isinstance(issues[0], dict) else None


class EhrTransportError(EhrError):
    """The request may or may not have reached the EHR (so every send must be safe to repeat)."""


class EhrStatusError(EhrError):
    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        outcome: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{message}: HTTP {status_code}")
        self.status_code = status_code
        self.outcome = outcome
        self.retry_after = retry_after
        self.retryable = status_code in RETRYABLE_STATUSES or status_code >= 500


class EhrAuthError(EhrError):
    def __init__(self, message: str, *, status_code: int | None = None, outcome: Any = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.outcome = outcome if isinstance(outcome, dict) else None


class ConnectionConfigError(GatewayError):
    """A connection that cannot work as configured (no key, bad alg): an operator's mistake."""

    status_code = 422
