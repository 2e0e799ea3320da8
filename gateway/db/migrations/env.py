"""Alembic environment: the engine comes from ``gateway.db.migrate`` (config.attributes)."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import gateway.db.tables  # noqa: F401  (registers the tables on SQLModel.metadata)

config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    if connection.dialect.name == "postgresql":  # a migration may wait for locks and run long
        connection.exec_driver_sql("SET LOCAL lock_timeout = 0")
        connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=True,  # SQLite ALTER TABLE support
        compare_type=True,
    )
    context.run_migrations()
