"""Throttling of failed client authentications at the token endpoint, per client id and per client address.

Every attempt is counted *before* the credentials are checked (so parallel guesses cannot overshoot the
limit), in the database (so the limit holds across processes and restarts). An attempt that turns out
not to be a failed authentication is taken back: a success clears the client id's counter and takes the
attempt back from the address's; a refused (429) attempt leaves no trace. A window starts with its first
failure and lasts ``token_throttle_window_seconds``; past a limit, attempts get 429 with ``Retry-After``
until it ends. Counters are keyed by a SHA-256 of the id or address.

OWASP guidance on credential-guessing throttles:
https://cheatsheetseries.owasp.org/cheatsheets/Authentication_Cheat_Sheet.html#protect-against-automated-attacks
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gateway.core.config import Settings
from gateway.db.engine import Session
from gateway.db.repositories import throttle as throttle_repo

CLIENT = "client"
ADDRESS = "address"


@dataclass(frozen=True)
class Attempt:
    """One counted attempt; ``retry_after`` (seconds) is set when a limit refused it."""

    keys: tuple[tuple[str, str], ...]
    retry_after: int | None = None


def key_hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def count_attempt(session: Session, settings: Settings, *, client_id: str, address: str) -> Attempt:
    """Counts the attempt against the client id and the address; flushes, the caller commits."""
    now = datetime.now(UTC)
    window = timedelta(seconds=settings.token_throttle_window_seconds)
    cutoff = now - window
    throttle_repo.delete_ended(session, window_cutoff=cutoff)
    limits = (
        (CLIENT, key_hash(client_id), settings.token_throttle_client_failures),
        (ADDRESS, key_hash(address), settings.token_throttle_address_failures),
    )
    keys = tuple((kind, hashed) for kind, hashed, _ in limits)
    ends: list[datetime] = []
    for kind, hashed, limit in limits:
        failures, window_start = throttle_repo.add_attempt(
            session, kind=kind, key_hash=hashed, now=now, window_cutoff=cutoff
        )
        if failures > limit:
            ends.append(window_start + window)
    if not ends:
        return Attempt(keys)
    for kind, hashed in keys:  # a refused attempt is no authentication: it leaves no trace
        throttle_repo.remove_attempt(session, kind=kind, key_hash=hashed)
    return Attempt(keys, retry_after=max(1, math.ceil((max(ends) - now).total_seconds())))


def forgive(session: Session, attempt: Attempt) -> None:
    """The attempt was no failed authentication: clear the client id, take it back from the address."""
    for kind, hashed in attempt.keys:
        if kind == CLIENT:
            throttle_repo.clear(session, kind=kind, key_hash=hashed)
        else:
            throttle_repo.remove_attempt(session, kind=kind, key_hash=hashed)
