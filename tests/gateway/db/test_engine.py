"""The engine's waits end in errors that ``busy_error`` turns into 503 (both databases), and only those."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from support.db_locks import hold_write_lock

from gateway.core.config import Settings
from gateway.core.errors import ServiceUnavailableError
from gateway.db.engine import busy_error, make_engine, session_scope


@pytest.fixture
def quick(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "db_pool_size": 1,
            "db_max_overflow": 0,
            "db_pool_timeout_seconds": 0.2,
            "db_lock_timeout_seconds": 0.2,
            "db_statement_timeout_seconds": 0.2,
        }
    )


def test_pool_is_sized_to_the_worker_threads(settings: Settings) -> None:
    engine = make_engine(settings.model_copy(update={"worker_threads": 24, "db_max_overflow": 3}))
    try:
        assert engine.pool.size() == 24  # type: ignore[attr-defined]
        assert engine.pool._max_overflow == 3  # type: ignore[attr-defined]
    finally:
        engine.dispose()


def test_waiting_for_a_connection_is_busy(quick: Settings) -> None:
    engine = make_engine(quick)
    try:
        with engine.connect(), pytest.raises(PoolTimeoutError) as raised, engine.connect():
            pass
        assert isinstance(busy_error(raised.value), ServiceUnavailableError)
    finally:
        engine.dispose()


def test_waiting_for_a_lock_is_busy(quick: Settings) -> None:
    holder, waiter = make_engine(quick), make_engine(quick)
    try:
        with holder.connect() as held:
            hold_write_lock(held, "clinic")
            with pytest.raises(DBAPIError) as raised, session_scope(waiter) as session:
                session.exec(text("SELECT count(*) FROM clinic")).one()  # type: ignore[call-overload]
        error = busy_error(raised.value)
        assert isinstance(error, ServiceUnavailableError)
        assert error.status_code == 503
        assert error.headers == {"Retry-After": "1"}
    finally:
        holder.dispose()
        waiter.dispose()


def test_reads_take_no_write_lock(quick: Settings) -> None:
    holder, reader = make_engine(quick), make_engine(quick)
    try:
        with holder.connect() as held:
            held.exec_driver_sql("SELECT 1")  # on SQLite: BEGIN IMMEDIATE
            with session_scope(reader, read_only=True) as session:
                assert session.exec(text("SELECT count(*) FROM clinic")).one() == (0,)  # type: ignore[call-overload]
    finally:
        holder.dispose()
        reader.dispose()


@pytest.mark.backends("postgresql")  # SQLite has no statement timeout
def test_a_statement_past_the_timeout_is_busy(quick: Settings) -> None:
    engine = make_engine(quick)
    try:
        with pytest.raises(DBAPIError) as raised, engine.connect() as connection:
            connection.exec_driver_sql("SELECT pg_sleep(2)")
        assert isinstance(busy_error(raised.value), ServiceUnavailableError)
    finally:
        engine.dispose()


def test_other_database_errors_are_not_busy(settings: Settings) -> None:
    engine = make_engine(settings)
    try:
        with pytest.raises(DBAPIError) as raised, engine.connect() as connection:
            connection.exec_driver_sql("SELECT * FROM no_such_table")
        assert busy_error(raised.value) is None
        assert busy_error(IntegrityError("INSERT", {}, Exception("duplicate"))) is None
        assert busy_error(ValueError("x")) is None
    finally:
        engine.dispose()


def _backend_pid(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        return int(connection.exec_driver_sql("SELECT pg_backend_pid()").scalar())


@contextmanager
def _idle_connection_killed(
    settings: Settings, *, ping_after_idle_seconds: float
) -> Iterator[tuple[Engine, int]]:
    """An engine with a pool of one connection whose server process another engine terminated while it sat
    idle in the pool; yields the engine and that dead backend's pid."""
    engine = make_engine(
        settings.model_copy(update={"db_pool_size": 1, "db_ping_after_idle_seconds": ping_after_idle_seconds})
    )
    killer = make_engine(settings)
    try:
        pid = _backend_pid(engine)
        with killer.connect() as connection:
            connection.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
        yield engine, pid
    finally:
        engine.dispose()
        killer.dispose()


@pytest.mark.backends("postgresql")  # the idle ping is PostgreSQL's (SQLite has no server connection to lose)
def test_an_idle_connection_that_died_is_replaced(settings: Settings) -> None:
    with _idle_connection_killed(settings, ping_after_idle_seconds=0) as (engine, pid):
        assert _backend_pid(engine) != pid  # the ping found it dead: a new connection, no error


@pytest.mark.backends("postgresql")  # the idle ping is PostgreSQL's
def test_a_recently_used_connection_is_not_pinged(settings: Settings) -> None:
    """The documented trade-off: no ping within ``db_ping_after_idle_seconds`` of a connection's last use, so
    a server gone in between fails that one request (503 with Retry-After); the pool then replaces the connection."""
    with _idle_connection_killed(settings, ping_after_idle_seconds=3600) as (engine, pid):
        with pytest.raises(DBAPIError) as lost:
            _backend_pid(engine)
        busy = busy_error(lost.value)  # answered as 503 with Retry-After, not 500
        assert busy is not None and busy.status_code == 503 and busy.headers == {"Retry-After": "1"}
        assert _backend_pid(engine) != pid


def test_autocommit_reads_hold_no_transaction(settings: Settings) -> None:
    engine = make_engine(settings)
    try:
        with session_scope(engine, autocommit=True) as session:
            assert session.exec(text("SELECT count(*) FROM clinic")).one() == (0,)  # type: ignore[call-overload]
            if engine.dialect.name == "postgresql":
                state = session.exec(  # type: ignore[call-overload]
                    text("SELECT state FROM pg_stat_activity WHERE pid = pg_backend_pid()")
                ).one()
                assert state == ("active",)  # not "idle in transaction" between statements
                status = session.connection().connection.dbapi_connection.info.transaction_status  # type: ignore[union-attr]
                assert status.name == "IDLE"  # no BEGIN was sent
    finally:
        engine.dispose()
