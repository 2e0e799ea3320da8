"""Holding a database's write lock from a test, so the code under test has to wait for it."""

from __future__ import annotations

from sqlalchemy.engine import Connection


def hold_write_lock(connection: Connection, table: str) -> None:
    """Until ``connection``'s transaction ends, writers of ``table`` wait: PostgreSQL locks the table,
    SQLite (whose engine begins every transaction ``BEGIN IMMEDIATE``) takes the database's write lock."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE')
    else:
        connection.exec_driver_sql("SELECT 1")  # the first statement begins the transaction: BEGIN IMMEDIATE
