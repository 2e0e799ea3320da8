"""EHR sync connections, id maps, delivery state (issue 10)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ehr_connection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_pk", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("fhir_base", sa.String(length=500), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("private_key_file", sa.String(length=500), nullable=True),
        sa.Column("private_key_env", sa.String(length=100), nullable=True),
        sa.Column("kid", sa.String(length=255), nullable=False),
        sa.Column("alg", sa.String(length=8), nullable=False),
        sa.Column("scope", sa.String(length=2000), nullable=False),
        sa.Column("push_types", sa.String(length=2000), nullable=False),
        sa.Column("token_url", sa.String(length=500), nullable=True),
        sa.Column("capabilities", sa.JSON(), nullable=True),
        sa.Column("probed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("paused_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("backfill_passes", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["clinic_pk"], ["clinic.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("clinic_pk", "name", name="uq_ehr_connection_name"),
    )
    with op.batch_alter_table("ehr_connection", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ehr_connection_clinic_pk"), ["clinic_pk"], unique=False)

    op.create_table(
        "sync_id_map",
        sa.Column("connection_pk", sa.Integer(), nullable=False),
        sa.Column("resource_pk", sa.BigInteger(), nullable=False),
        sa.Column("ehr_id", sa.String(length=64), nullable=False),
        sa.Column("ehr_version", sa.String(length=64), nullable=True),
        sa.Column("version_sent", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["connection_pk"], ["ehr_connection.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("connection_pk", "resource_pk"),
    )
    op.create_table(
        "sync_lease",
        sa.Column("connection_pk", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["connection_pk"], ["ehr_connection.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("connection_pk", "key"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("outcome", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_outbox_group", ["connection_pk", "patient_key", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_group")
        batch_op.drop_column("delivered_at")
        batch_op.drop_column("outcome")
    op.drop_table("sync_lease")
    op.drop_table("sync_id_map")
    with op.batch_alter_table("ehr_connection", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ehr_connection_clinic_pk"))
    op.drop_table("ehr_connection")
