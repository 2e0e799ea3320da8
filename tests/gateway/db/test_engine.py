"""The engine's waits end in errors that ``busy_error`` turns into 503 (both databases), and only those."""

from __future__ import annotations

import pytest
from sqlalchemy import text
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
