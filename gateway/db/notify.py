"""Database mechanics of change notification: work a session's commit hands on, and a LISTEN thread.

* :func:`defer_until_commit` keeps items on a session; when the session commits, every function registered
  with :func:`on_commit` gets them (synchronously, before ``commit()`` returns); a rollback drops them.
* :class:`NotificationListener` LISTENs on a PostgreSQL channel in a daemon thread and hands each payload on;
  it says when it is listening and when its connection is lost (it reconnects by itself).

``gateway.store.changes`` builds the store's change feed on these.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession

log = logging.getLogger("gateway.db.notify")

_DEFERRED = "kapgw_deferred_until_commit"
#: longest the listener thread waits for notifications before it looks whether it is to stop
WAKE_SECONDS = 0.1
_commit_hooks: list[Callable[[set[Any]], None]] = []


def on_commit(hook: Callable[[set[Any]], None]) -> None:
    """``hook(items)`` after each commit of a session that deferred items (see :func:`defer_until_commit`)."""
    _commit_hooks.append(hook)


def defer_until_commit(session: OrmSession, items: Iterable[Any]) -> None:
    session.info.setdefault(_DEFERRED, set()).update(items)


@event.listens_for(OrmSession, "after_commit")
def _committed(session: OrmSession) -> None:
    items = session.info.pop(_DEFERRED, None)
    if items:
        for hook in _commit_hooks:
            hook(items)


@event.listens_for(OrmSession, "after_rollback")
def _rolled_back(session: OrmSession) -> None:
    session.info.pop(_DEFERRED, None)


class NotificationListener:
    """LISTENs on ``channel`` (libpq URL ``conninfo``) in a daemon thread.

    ``payload(text)`` for each notification; ``listening()`` once LISTEN is in place (after every
    reconnect too); ``lost()`` when the connection ends. The connection is checked every ``check_seconds``
    (a round trip), so one that died silently is noticed within that time; a lost one is retried every
    ``retry_seconds``. The thread waits for notifications at most :data:`WAKE_SECONDS` at a time, so
    :meth:`stop` returns within about that long.
    """

    def __init__(
        self,
        conninfo: str,
        channel: str,
        *,
        payload: Callable[[str], None],
        listening: Callable[[], None],
        lost: Callable[[], None],
        check_seconds: float = 5.0,
        retry_seconds: float = 1.0,
    ) -> None:
        self.conninfo = conninfo
        self.channel = channel
        self.on_payload = payload
        self.on_listening = listening
        self.on_lost = lost
        self.check_seconds = check_seconds
        self.retry_seconds = retry_seconds
        self.listening = threading.Event()
        #: the backend pid of the listening connection (for tests and diagnostics)
        self.backend_pid: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"listen-{self.channel}", daemon=True)
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
                    connection.execute(f"LISTEN {self.channel}")
                    self.backend_pid = connection.info.backend_pid
                    self.on_listening()
                    self.listening.set()
                    log.info("listening on %s", self.channel)
                    checked = time.monotonic()
                    while not self._stop.is_set():
                        for notify in connection.notifies(timeout=WAKE_SECONDS):
                            self.on_payload(notify.payload)
                        if time.monotonic() - checked >= self.check_seconds:
                            connection.execute("SELECT 1")
                            checked = time.monotonic()
            except Exception as error:  # any loss of the connection
                if not self._stop.is_set():
                    log.warning("lost the %s channel: %s", self.channel, type(error).__name__)
            finally:
                self.listening.clear()
                self.backend_pid = None
                self.on_lost()
            self._stop.wait(self.retry_seconds)
