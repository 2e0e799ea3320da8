"""The Alembic migrations build exactly the schema the table models describe, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from gateway.db.migrate import current_revision, downgrade, head_revision, upgrade


def test_migrated_schema_matches_models(engine) -> None:
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert diff == []
    assert current_revision(engine) == head_revision(engine)


def test_downgrade_to_base_and_upgrade_again(engine) -> None:
    downgrade(engine, "base")
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision(engine)
