"""Recording AuditEvents without slowing the request that causes them.

``AuditRecorder.record`` only appends the entry to an in-memory queue; one writer thread per process
takes what has queued and inserts it in one transaction per batch (at most ``batch_size`` events, at
least every ``interval_seconds``). So a FHIR read never waits for a write, and on SQLite a read request
never takes the write lock: only the writer does, once per batch rather than once per event. Appending
wakes nobody (the writer looks every ``interval_seconds``, or at once when a full batch is waiting): a
wake-up per event cost a GIL hand-off per request and batches of one under light load. The queue is
bounded: when it is full, ``record`` waits for the writer (back pressure) rather than drop an event,
and ``try_record`` (for the event loop) says so instead of waiting. ``flush`` writes what is queued now
(tests, shutdown); ``close`` flushes and stops the thread.

No wait is unbounded: a ``record`` that finds the queue still full after ``put_timeout_seconds`` (the
writer is stopped or stuck) raises :class:`AuditBackloggedError` instead of hanging its request, and
``close`` gives the writer ``close_timeout_seconds`` to stop and then returns (reporting what it could
not write) rather than wait on a writer stuck in the database.

If the database refuses a batch, the batch is kept and retried after a pause; events are lost only if the
process dies with events still queued (at most ``interval_seconds`` worth).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from datetime import UTC, datetime

from gateway.audit.events import AuditEntry
from gateway.core.ids import event_uuid
from gateway.db.engine import Engine, session_scope
from gateway.db.repositories import audit as audit_repo

log = logging.getLogger(__name__)


class AuditBackloggedError(RuntimeError):
    """The audit queue stayed full: the writer is not writing (stopped, or the database refuses)."""


def new_event_id() -> str:
    return str(event_uuid())


def utcnow() -> datetime:
    return datetime.now(UTC)


class AuditRecorder:
    def __init__(
        self,
        engine: Engine,
        *,
        batch_size: int = 500,
        interval_seconds: float = 0.2,
        max_queued: int = 50_000,
        retry_seconds: float = 1.0,
        put_timeout_seconds: float = 60.0,
        close_timeout_seconds: float = 10.0,
    ) -> None:
        self.engine = engine
        self.batch_size = batch_size
        self.interval_seconds = interval_seconds
        self.retry_seconds = retry_seconds
        self.max_queued = max_queued
        self.put_timeout_seconds = put_timeout_seconds
        self.close_timeout_seconds = close_timeout_seconds
        self._queue: deque[AuditEntry] = deque()  # append/popleft are atomic: no lock on the request path
        self._pending: list[AuditEntry] = []  # taken from the queue, not yet written
        self._write_lock = threading.Lock()
        self._wake = threading.Event()  # a full batch waits, or the recorder closes
        self._room = threading.Condition()  # the writer made room (for ``record`` waiting on a full queue)
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._stopping = threading.Event()
        self.written = 0

    def record(self, entry: AuditEntry) -> None:
        """Queues the event (waits only if the queue is full, at most ``put_timeout_seconds``); the writer
        thread stores it."""
        deadline = time.monotonic() + self.put_timeout_seconds
        while not self.try_record(entry):
            if time.monotonic() > deadline:
                raise AuditBackloggedError(
                    f"the audit queue stayed full for {self.put_timeout_seconds} s: the writer is not writing"
                )
            self._wake.set()
            with self._room:
                self._room.wait(timeout=self.interval_seconds)

    def try_record(self, entry: AuditEntry) -> bool:
        """Queues the event unless the queue is full (never waits: for the event loop)."""
        if self._thread is None:
            self._ensure_started()
        queued = len(self._queue)
        if queued >= self.max_queued:
            return False
        self._queue.append(entry)
        if queued + 1 == self.batch_size:
            self._wake.set()
        return True

    def flush(self) -> None:
        """Writes every event queued so far, in the calling thread."""
        self._write_available()

    def close(self) -> None:
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=self.close_timeout_seconds)
            if thread.is_alive():  # stuck in a write: flushing beside it would wait on its lock
                log.error(
                    "the audit writer did not stop within %s s; %d queued events are not written",
                    self.close_timeout_seconds,
                    len(self._queue) + len(self._pending),
                )
                return
        try:
            self.flush()
        except Exception:
            log.exception("audit events could not be written at shutdown (%d queued)", len(self._queue))

    def _ensure_started(self) -> None:
        if self._thread is not None or self._stopping.is_set():
            return
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.interval_seconds)
            self._wake.clear()
            try:
                self._write_available()
            except Exception:
                log.exception("audit batch not written; retrying")
                time.sleep(self.retry_seconds)

    def _write_available(self) -> None:
        with self._write_lock:
            while True:
                while len(self._pending) < self.batch_size:
                    try:
                        self._pending.append(self._queue.popleft())
                    except IndexError:
                        break
                if not self._pending:
                    return
                self._write(self._pending)
                self.written += len(self._pending)
                self._pending = []
                with self._room:
                    self._room.notify_all()
                if not self._queue:
                    return

    def _write(self, entries: list[AuditEntry]) -> None:
        rows = [
            {
                "event_id": entry.event_id,
                "recorded": entry.recorded,
                "action": entry.action,
                "outcome": entry.outcome,
                "client_id": entry.client_id[:255] if entry.client_id else None,
                "clinic_pk": entry.clinic_pk,
                "patient_id": entry.patient_id[:64] if entry.patient_id else None,
                "resource_type": entry.resource_type[:64] if entry.resource_type else None,
                "content": entry.content,
            }
            for entry in entries
        ]
        with session_scope(self.engine) as session:
            audit_repo.add_events(session, rows=rows)
            session.commit()
