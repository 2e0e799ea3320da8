"""bad-input hardening (issue 6): a record's references in indexed columns, not looked up in its JSON

Deleting a patient, session, practitioner or dose asks which live records still reference it. That was a
``data->>'session_id'`` lookup on the JSON text of every record of the clinic, which PostgreSQL refuses for
a row whose JSON holds ``\\u0000`` (a NUL once accepted in a lot number or note made later deletes fail).
The references now live in ``session_external_id``, ``practitioner_external_id`` and ``dose_external_id``
(``patient_external_id`` existed); existing rows are filled in from their JSON, read in Python.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

#: record field -> the column that holds it (a record references at most one record of each kind)
FIELD_COLUMNS = {
    "session_id": "session_external_id",
    "practitioner_id": "practitioner_external_id",
    "rater_id": "practitioner_external_id",
    "dose_id": "dose_external_id",
}
COLUMNS = ("session_external_id", "practitioner_external_id", "dose_external_id")
INDEXES = {
    "ix_record_session": "session_external_id",
    "ix_record_practitioner": "practitioner_external_id",
    "ix_record_dose": "dose_external_id",
}
BATCH = 1000


def upgrade() -> None:
    with op.batch_alter_table("record", schema=None) as batch_op:
        for column in COLUMNS:
            batch_op.add_column(sa.Column(column, sa.String(length=64), nullable=True))
    _backfill()
    with op.batch_alter_table("record", schema=None) as batch_op:
        for name, column in INDEXES.items():
            batch_op.create_index(name, ["clinic_pk", column], unique=False)


def _backfill() -> None:
    record = sa.table(
        "record",
        sa.column("id", sa.Integer()),
        sa.column("data", sa.JSON()),
        *(sa.column(c) for c in COLUMNS),
    )
    connection = op.get_bind()
    last = 0
    while True:
        rows = connection.execute(
            sa.select(record.c.id, record.c.data).where(record.c.id > last).order_by(record.c.id).limit(BATCH)
        ).all()
        if not rows:
            return
        updates = [values for row in rows if (values := _references(row.id, row.data))]
        if updates:
            connection.execute(
                record.update()
                .where(record.c.id == sa.bindparam("pk"))
                .values({c: sa.bindparam(f"new_{c}") for c in COLUMNS}),
                updates,
            )
        last = rows[-1].id


def _references(pk: int, data: Any) -> dict[str, Any] | None:
    if isinstance(data, str | bytes):
        data = json.loads(data)
    values: dict[str, Any] = dict.fromkeys(COLUMNS)
    for field, column in FIELD_COLUMNS.items():
        value = data.get(field) if isinstance(data, dict) else None
        if isinstance(value, str):
            values[column] = value
    if not any(values.values()):
        return None
    return {"pk": pk, **{f"new_{c}": v for c, v in values.items()}}


def downgrade() -> None:
    with op.batch_alter_table("record", schema=None) as batch_op:
        for name in INDEXES:
            batch_op.drop_index(name)
        for column in COLUMNS:
            batch_op.drop_column(column)
