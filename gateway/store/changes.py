"""Changes of the resource store, told to whoever keeps copies of stored resources (the FHIR read cache).

Two channels, both firing when a change is committed, never before:

* **this process**: the store's write path (``gateway.store.versions``) calls :func:`record` for each
  resource it writes; when the session commits, every subscriber is told synchronously, before the commit
  returns, so a process always reads its own writes. A rollback tells nothing.
* **every other process** (PostgreSQL): a trigger on ``resource`` (migration 0011) sends
  ``pg_notify('kapgw_resource', 'Type/id')`` for each row inserted, updated or deleted (a clinic's cascaded
  delete too) and ``'*'`` for a TRUNCATE; PostgreSQL delivers them when the transaction commits.
  :class:`ChangeListener` LISTENs on its own connection in a thread and tells the subscriber; until it
  listens, and whenever its connection is lost, the subscriber is disabled (it serves nothing), then
  emptied and enabled again once listening resumes. Another process's commit therefore reaches this process
  after PostgreSQL's delivery delay (``bench/read_cache.py`` measures it), not at once.

A subscriber has ``changed(type, id)``, ``changed_everything()``, ``enable()`` and ``disable()``.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterable
from typing import Any, Protocol

from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession

from gateway.db.engine import Session

log = logging.getLogger("gateway.store.changes")

CHANNEL = "kapgw_resource"
#: the payload of a change that may have touched every resource (TRUNCATE)
EVERYTHING = "*"
_PENDING = "kapgw_changed_resources"


class ChangeSubscriber(Protocol):
    def changed(self, resource_type: str, resource_id: str) -> None: ...

    def changed_everything(self) -> None: ...

    def enable(self) -> None: ...

    def disable(self) -> None: ...


_subscribers: weakref.WeakSet[Any] = weakref.WeakSet()
_subscribers_lock = threading.Lock()


def subscribe(subscriber: ChangeSubscriber) -> None:
    """Tell ``subscriber`` of this process's commits (held weakly: a dropped subscriber leaves by itself)."""
    with _subscribers_lock:
        _subscribers.add(subscriber)


def unsubscribe(subscriber: ChangeSubscriber) -> None:
    with _subscribers_lock:
        _subscribers.discard(subscriber)


def record(session: Session, keys: Iterable[tuple[str, str]]) -> None:
    """Resources the session's transaction wrote, told to the subscribers when it commits."""
    session.info.setdefault(_PENDING, set()).update(keys)


@event.listens_for(OrmSession, "after_commit")
def _tell_committed(session: OrmSession) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    with _subscribers_lock:
        subscribers = list(_subscribers)
    for subscriber in subscribers:
        for resource_type, resource_id in pending:
            subscriber.changed(resource_type, resource_id)


@event.listens_for(OrmSession, "after_rollback")
def _forget_rolled_back(session: OrmSession) -> None:
    session.info.pop(_PENDING, None)


def apply_payload(subscriber: ChangeSubscriber, payload: str) -> None:
    """One notification of the trigger (``Type/id`` or ``*``)."""
    resource_type, slash, resource_id = payload.partition("/")
    if payload == EVERYTHING or not slash:
        subscriber.changed_everything()
    else:
        subscriber.changed(resource_type, resource_id)


class ChangeListener:
    """LISTENs for the trigger's notifications in a daemon thread and tells ``subscriber``.

    ``conninfo`` is a libpq URL (``postgresql://...``). The connection is checked every ``check_seconds``
    (a round trip), so a connection that died silently is noticed within that time; a lost connection
    disables the subscriber and is retried every ``retry_seconds``.
    """

    def __init__(
        self,
        conninfo: str,
        subscriber: ChangeSubscriber,
        *,
        check_seconds: float = 5.0,
        retry_seconds: float = 1.0,
    ) -> None:
        self.conninfo = conninfo
        self.subscriber = subscriber
        self.check_seconds = check_seconds
        self.retry_seconds = retry_seconds
        self.listening = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: the backend pid of the listening connection (for tests and diagnostics)
        self.backend_pid: int | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="kapgw-change-listener", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    self.backend_pid = connection.info.backend_pid
                    self.subscriber.enable()
                    self.listening.set()
                    log.info("listening for store changes")
                    while not self._stop.is_set():
                        for notify in connection.notifies(timeout=self.check_seconds):
                            apply_payload(self.subscriber, notify.payload)
                        connection.execute("SELECT 1")
            except Exception as error:  # any loss of the channel disables the cache
                if not self._stop.is_set():
                    log.warning("store change channel lost: %s", type(error).__name__)
            finally:
                self.listening.clear()
                self.backend_pid = None
                self.subscriber.disable()
            self._stop.wait(self.retry_seconds)
