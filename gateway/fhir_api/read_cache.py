"""Answers of the /fhir read path kept in memory: current rows for ``read``, whole Bundles for ``search``.

An entry is valid until the store changes what it was made from. It does not trust a time-to-live for that:
every change of a resource reaches the cache (``gateway.store.changes``: at the commit of this process's
sessions, and from PostgreSQL's ``NOTIFY`` for every other process's), and each entry carries the
generations of what it depends on when it was made:

* a ``read`` entry depends on its resource's bucket (the resource's key hashed into :data:`BUCKETS`
  buckets, so a change drops the reads of that resource and, rarely, of a few others);
* a ``search`` entry depends on each resource type the search touched (its type, and the types its
  ``_include``/``_revinclude`` load); an include whose target type is open depends on every change.

An answer is only kept when no change at all was told between the start of its queries
(:meth:`ReadCache.snapshot`) and :meth:`ReadCache.put`, so a query that raced a commit is never kept. What
the cache holds is what the database answered; who may see it is decided per request by the caller
(``gateway.fhir_api.service``), never stored with it, except in the search key (the token's clinics and
scopes are part of it).

The cache starts disabled and serves nothing until whoever tells it about changes is listening
(:meth:`enable`); losing that channel disables and empties it (:meth:`disable`). ``ttl`` bounds how long an
entry lives whatever happens (75-100 % of it, jittered), and ``max_bytes`` how much the entries hold (least recently used first out).
"""

from __future__ import annotations

import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

#: buckets that read entries hash into (a change invalidates one bucket)
BUCKETS = 4096
#: what an entry costs beside its bytes (key, row, bookkeeping), for the byte bound
ENTRY_OVERHEAD = 256
#: a dependency on every resource type (an ``_include`` with an open target type)
ANY_TYPE = "*"


@dataclass(frozen=True)
class Snapshot:
    epoch: int
    changes: int


@dataclass
class _Entry:
    value: Any
    size: int
    depends_on: tuple[Hashable, ...]
    stamp: tuple[int, ...]
    expires: float


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    stored: int = 0
    #: answers not kept because a change was told while they were being made
    raced: int = 0


def read_key(resource_type: str, resource_id: str) -> tuple[str, str, str]:
    return ("read", resource_type, resource_id)


def read_dependency(resource_type: str, resource_id: str) -> tuple[int]:
    return (hash((resource_type, resource_id)) % BUCKETS,)


def type_dependencies(types: Iterable[str | None]) -> tuple[str, ...]:
    """What a search over ``types`` depends on (``None``: an open type, that is every change)."""
    wanted = set(types)
    if None in wanted or ANY_TYPE in wanted:
        return (ANY_TYPE,)
    return tuple(sorted(t for t in wanted if t is not None))


class ReadCache:
    def __init__(
        self, max_bytes: int, ttl: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_bytes = max_bytes
        self.ttl = ttl
        self.clock = clock
        self.stats = CacheStats()
        self._jitter = random.Random()
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._bytes = 0
        self._enabled = False
        self._epoch = 0
        self._changes = 0
        self._buckets = [0] * BUCKETS
        self._types: dict[str, int] = {}

    # --- what the store tells ---------------------------------------------------------------------------

    def changed(self, resource_type: str, resource_id: str) -> None:
        with self._lock:
            self._changes += 1
            self._buckets[read_dependency(resource_type, resource_id)[0]] += 1
            self._types[resource_type] = self._types.get(resource_type, 0) + 1
            self._types[ANY_TYPE] = self._types.get(ANY_TYPE, 0) + 1

    def changed_everything(self) -> None:
        with self._lock:
            self._reset()

    def enable(self) -> None:
        """The change channel is listening: start (again) from empty."""
        with self._lock:
            self._reset()
            self._enabled = True

    def disable(self) -> None:
        """The change channel is lost: serve and keep nothing until :meth:`enable`."""
        with self._lock:
            self._enabled = False
            self._reset()

    @property
    def enabled(self) -> bool:
        return self._enabled

    def _reset(self) -> None:
        self._epoch += 1
        self._changes += 1
        self._entries.clear()
        self._bytes = 0

    # --- what the read path asks ------------------------------------------------------------------------

    def snapshot(self) -> Snapshot | None:
        """Taken before an answer's first query; ``None`` while disabled."""
        if not self._enabled:
            return None
        return Snapshot(self._epoch, self._changes)

    def get(self, key: Hashable, *, count_miss: bool = True) -> Any:
        """The value kept for ``key`` while still valid, else None. ``count_miss=False``: the caller asks
        again on a miss (the middleware before the route), so the miss is counted once, by that second ask."""
        if not self._enabled:
            return None
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.stats.misses += count_miss
                return None
            if entry.expires <= self.clock() or entry.stamp != self._stamp(entry.depends_on):
                self._drop(key, entry)
                self.stats.misses += count_miss
                return None
            self._entries.move_to_end(key)
            self.stats.hits += 1
            return entry.value

    def put(
        self,
        key: Hashable,
        value: Any,
        size: int,
        depends_on: tuple[Hashable, ...],
        snapshot: Snapshot | None,
    ) -> bool:
        """Keeps ``value`` unless a change was told since ``snapshot`` (or it is larger than the cache)."""
        size += ENTRY_OVERHEAD
        if snapshot is None or size > self.max_bytes:
            return False
        with self._lock:
            if not self._enabled or snapshot != Snapshot(self._epoch, self._changes):
                self.stats.raced += 1
                return False
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.size
            # a jittered lifetime (75-100 % of ttl): answers kept together do not all expire together,
            # which would send them to the database at once (a stampede on every ttl)
            lifetime = self.ttl * (0.75 + 0.25 * self._jitter.random())
            self._entries[key] = _Entry(
                value, size, depends_on, self._stamp(depends_on), self.clock() + lifetime
            )
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.size
            self.stats.stored += 1
            return True

    def _stamp(self, depends_on: tuple[Hashable, ...]) -> tuple[int, ...]:
        return tuple(
            self._buckets[d] if isinstance(d, int) else self._types.get(str(d), 0) for d in depends_on
        )

    def _drop(self, key: Hashable, entry: _Entry) -> None:
        del self._entries[key]
        self._bytes -= entry.size

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes
