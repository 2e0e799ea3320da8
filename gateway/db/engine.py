"""The one engine: SQLite (embedded default, WAL mode) or PostgreSQL through psycopg 3.

Concurrency contract (README "Concurrency"):

* Sessions are lazy: a transaction begins at the first query, so a request's transaction starts after its
  body has been read and validated, and ends at the service's commit (or the session's close).
* SQLite: WAL journal, so readers never block the writer nor the writer readers. A write use case begins
  with ``BEGIN IMMEDIATE`` (the write lock up front: writers queue on the busy timeout instead of failing
  when a read transaction would have to upgrade); a read-only session (``session_scope(read_only=True)``)
  begins a deferred ``BEGIN`` and never takes the write lock. https://www.sqlite.org/wal.html,
  https://www.sqlite.org/lang_transaction.html
* The pool holds as many connections as there are worker threads (anyio's limiter, ``worker_threads``),
  so a thread never waits for a connection in normal operation; a wait beyond ``db_pool_timeout_seconds``,
  a lock wait beyond ``db_lock_timeout_seconds`` (SQLite busy timeout, PostgreSQL ``lock_timeout``) or a
  statement beyond ``db_statement_timeout_seconds`` (PostgreSQL) is a :func:`busy_error`: 503 with
  ``Retry-After``, never a 500.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import IntegrityError as WriteConflictError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlmodel import Session, create_engine

from gateway.core.config import Settings
from gateway.core.errors import ServiceUnavailableError

__all__ = [
    "DATABASE_ERRORS",
    "Engine",
    "Session",
    "WriteConflictError",
    "busy_error",
    "make_engine",
    "normalize_url",
    "ping",
    "session_scope",
]

#: execution option a read-only session's engine carries (SQLite then begins a deferred transaction)
READ_ONLY = "kapgw_read_only"
_GATE = "kapgw_write_gate"
_CHECKED_IN = "kapgw_checked_in"


class WriteQueueTimeoutError(Exception):
    """A write use case waited longer than the lock timeout for its turn at SQLite's one writer."""


#: exception classes :func:`busy_error` looks at (for the app's exception handlers)
DATABASE_ERRORS: tuple[type[Exception], ...] = (PoolTimeoutError, WriteQueueTimeoutError, DBAPIError)

_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6
# PostgreSQL SQLSTATEs that mean "wait and retry": lock_timeout, statement_timeout, serialization failure,
# deadlock, too many connections, cannot connect now (https://www.postgresql.org/docs/current/errcodes-appendix.html)
_PG_TRANSIENT = {"55P03", "57014", "40001", "40P01", "53300", "57P03"}


def normalize_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and route them through psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(settings: Settings) -> Engine:
    url = normalize_url(settings.database_url)
    pool: dict[str, Any] = {
        "pool_size": settings.pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_timeout": settings.db_pool_timeout_seconds,
    }
    if url.startswith("sqlite"):
        path = settings.sqlite_path()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        else:
            pool = {}  # an in-memory database lives in one connection (SingletonThreadPool)
        lock_timeout = settings.db_lock_timeout_seconds
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": lock_timeout}, **pool
        )
        event.listen(engine, "connect", _sqlite_pragmas(lock_timeout))
        _SqliteWriters(lock_timeout).listen(engine)
        return engine
    # No server-side prepared statements: psycopg prepares a statement after 5 runs, and PostgreSQL may then
    # keep a generic plan made while the tables were small (seq scans that slowed a 1,000-patient load 6x).
    # timezone=UTC: psycopg then hands back timestamps in datetime.UTC (not a ZoneInfo to convert from)
    options = (
        "-c timezone=UTC"
        f" -c lock_timeout={round(settings.db_lock_timeout_seconds * 1000)}"
        f" -c statement_timeout={round(settings.db_statement_timeout_seconds * 1000)}"
    )
    engine = create_engine(url, connect_args={"prepare_threshold": None, "options": options}, **pool)
    _PingWhenIdle(settings.db_ping_after_idle_seconds).listen(engine)
    return engine


class _PingWhenIdle:
    """Pessimistic disconnect handling, only for a connection that sat idle in the pool.

    ``pool_pre_ping`` costs a round trip (``SELECT 1``) on every checkout, that is on every request; a
    connection checked in less than ``after_seconds`` ago was just working, so only older ones are pinged.
    A failed ping raises ``DisconnectionError``: the pool drops that connection and connects anew (as with
    ``pool_pre_ping``). A server restarted within ``after_seconds`` of a connection's last use can still
    fail the first request on it (503 with Retry-After, see ``busy_error``), as it could a request in flight.
    https://docs.sqlalchemy.org/en/20/core/pooling.html#disconnect-handling-pessimistic
    """

    def __init__(self, after_seconds: float) -> None:
        self.after_seconds = after_seconds

    def listen(self, engine: Engine) -> None:
        event.listen(engine, "checkin", self.checkin)
        event.listen(engine, "checkout", self.checkout)

    @staticmethod
    def checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_CHECKED_IN] = time.monotonic()

    def checkout(self, dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        checked_in = record.info.get(_CHECKED_IN)
        if checked_in is not None and time.monotonic() - checked_in < self.after_seconds:
            return
        autocommit = dbapi_connection.autocommit
        try:
            dbapi_connection.autocommit = True
            dbapi_connection.execute("SELECT 1")
            dbapi_connection.autocommit = autocommit
        except Exception as error:
            raise DisconnectionError("the pooled connection did not answer a ping") from error


def _sqlite_pragmas(lock_timeout: float) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # the "begin" listener issues BEGIN itself
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={round(lock_timeout * 1000)}")
        cursor.close()

    return on_connect


class _SqliteWriters:
    """Begins SQLite transactions: deferred for reads; for writes, a turn in this process's queue, then
    ``BEGIN IMMEDIATE``.

    The queue (a lock the transaction holds until it commits or rolls back) hands the write lock on the
    moment it frees. Without it, waiting writers poll in SQLite's busy handler, whose sleeps grow to 100 ms,
    and under 64 clients some waited seconds while others went first. Writers in other processes (CLI,
    a second server) still meet the busy timeout. Correctness never rests on the queue: SQLite's own lock
    does that; the queue only orders this process's writers.
    """

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.turn = threading.Lock()

    def listen(self, engine: Engine) -> None:
        event.listen(engine, "begin", self.begin)
        event.listen(engine, "commit", self.end)
        event.listen(engine, "rollback", self.end)
        # a connection that leaves without commit or rollback (invalidated, returned) gives its turn back
        event.listen(engine, "checkin", lambda _dbapi, record: self._give_back(record.info))
        event.listen(engine, "invalidate", lambda _dbapi, record, _exc: self._give_back(record.info))

    def begin(self, conn: Any) -> None:
        if conn.get_execution_options().get(READ_ONLY, False):
            conn.exec_driver_sql("BEGIN")
            return
        if not self.turn.acquire(timeout=self.timeout):
            raise WriteQueueTimeoutError("no turn at the SQLite writer within the lock timeout")
        conn.info[_GATE] = True
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            self.end(conn)
            raise

    def end(self, conn: Any) -> None:
        self._give_back(conn.info)

    def _give_back(self, info: dict[str, Any]) -> None:
        if info.pop(_GATE, False):
            self.turn.release()


@contextmanager
def session_scope(engine: Engine, *, read_only: bool = False, autocommit: bool = False) -> Iterator[Session]:
    """A session for one use case; the service commits, anything unhandled rolls back.

    The session connects at its first query. ``read_only`` sessions never take SQLite's write lock.
    ``autocommit`` (read-only use cases whose statements need no common snapshot, such as the FHIR read
    path, whose pages are bounded by a high-water id instead): on PostgreSQL each statement runs on its own,
    without the BEGIN and ROLLBACK round trips of a transaction; SQLite (in process) keeps its transaction."""
    bind = _bind(engine, "autocommit" if autocommit else "read_only" if read_only else None)
    with Session(bind, expire_on_commit=False) as session:
        try:
            yield session
        except BaseException:
            session.rollback()
            raise


_BINDS: weakref.WeakKeyDictionary[Engine, dict[str, Engine]] = weakref.WeakKeyDictionary()


def _bind(engine: Engine, mode: str | None) -> Engine:
    """The engine with the execution options of a session mode, made once per engine (each
    ``execution_options`` call builds a new option engine)."""
    if mode is None:
        return engine
    binds = _BINDS.setdefault(engine, {})
    bind = binds.get(mode)
    if bind is None:
        options: dict[str, Any] = {READ_ONLY: True}
        if mode == "autocommit" and engine.dialect.name != "sqlite":
            options["isolation_level"] = "AUTOCOMMIT"
        bind = binds[mode] = engine.execution_options(**options)
    return bind


def busy_error(error: BaseException) -> ServiceUnavailableError | None:
    """The 503 for a wait that took too long (no free connection, a lock or statement timeout) or a lost
    connection, else None."""
    if isinstance(error, PoolTimeoutError):
        return ServiceUnavailableError("no database connection became free in time")
    if isinstance(error, WriteQueueTimeoutError):
        return ServiceUnavailableError("the database is busy (lock wait timed out)")
    if not isinstance(error, DBAPIError):
        return None
    if (
        error.connection_invalidated
    ):  # the server closed the connection (restart, failover); the pool reconnects
        return ServiceUnavailableError("the database connection was lost; retry shortly")
    orig = error.orig
    sqlite_code = getattr(orig, "sqlite_errorcode", None)
    if sqlite_code is not None and sqlite_code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return ServiceUnavailableError("the database is busy (lock wait timed out)")
    if getattr(orig, "sqlstate", None) in _PG_TRANSIENT:
        return ServiceUnavailableError("the database is busy (lock or statement timeout)")
    return None


def ping(engine: Engine) -> None:
    """Raises if the database cannot be reached."""
    with engine.execution_options(**{READ_ONLY: True}).connect() as connection:
        connection.exec_driver_sql("SELECT 1")
