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

import threading
import weakref
from collections.abc import Iterable
from typing import Any, Protocol

from gateway.db.engine import Session
from gateway.db.notify import NotificationListener, defer_until_commit, on_commit

CHANNEL = "kapgw_resource"
#: the payload of a change that may have touched every resource (TRUNCATE)
EVERYTHING = "*"


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
    defer_until_commit(session, keys)


def _tell_committed(keys: set[Any]) -> None:
    with _subscribers_lock:
        subscribers = list(_subscribers)
    for subscriber in subscribers:
        for resource_type, resource_id in keys:
            subscriber.changed(resource_type, resource_id)


on_commit(_tell_committed)


def apply_payload(subscriber: ChangeSubscriber, payload: str) -> None:
    """One notification of the trigger (``Type/id`` or ``*``)."""
    resource_type, slash, resource_id = payload.partition("/")
    if payload == EVERYTHING or not slash:
        subscriber.changed_everything()
    else:
        subscriber.changed(resource_type, resource_id)


class ChangeListener(NotificationListener):
    """Tells ``subscriber`` of the trigger's notifications: enabled once listening, disabled when the
    connection is lost (see :class:`gateway.db.notify.NotificationListener`)."""

    def __init__(
        self,
        conninfo: str,
        subscriber: ChangeSubscriber,
        *,
        check_seconds: float = 5.0,
        retry_seconds: float = 1.0,
    ) -> None:
        super().__init__(
            conninfo,
            CHANNEL,
            payload=lambda text: apply_payload(subscriber, text),
            listening=subscriber.enable,
            lost=subscriber.disable,
            check_seconds=check_seconds,
            retry_seconds=retry_seconds,
        )
        self.subscriber = subscriber
