"""Bulk Data export jobs (issue 11): ad-hoc groups, export jobs, their files; a keyset index on resource

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("resource", schema=None) as batch_op:
        batch_op.create_index("ix_resource_export", ["clinic_pk", "resource_type", "id"], unique=False)

    op.create_table(
        "bulk_group",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("clinic_pk", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["clinic_pk"], ["clinic.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("group_id"),
    )
    with op.batch_alter_table("bulk_group", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bulk_group_clinic_pk"), ["clinic_pk"], unique=False)

    op.create_table(
        "bulk_group_member",
        sa.Column("group_pk", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["group_pk"], ["bulk_group.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("group_pk", "patient_id"),
    )

    op.create_table(
        "bulk_job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("client_pk", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("request_url", sa.String(length=4000), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("transaction_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("resources_written", sa.BigInteger(), nullable=False),
        sa.Column("progress", sa.String(length=100), nullable=False),
        sa.Column("failure", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(["client_pk"], ["client.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job_id"),
    )
    with op.batch_alter_table("bulk_job", schema=None) as batch_op:
        batch_op.create_index("ix_bulk_job_due", ["status", "lease_until"], unique=False)
        batch_op.create_index(batch_op.f("ix_bulk_job_client_pk"), ["client_pk"], unique=False)
        batch_op.create_index(batch_op.f("ix_bulk_job_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "bulk_file",
        sa.Column("job_pk", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("clinic_pk", sa.Integer(), nullable=False),
        sa.Column("phase", sa.Integer(), nullable=False),
        sa.Column("last_pk", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["job_pk"], ["bulk_job.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_pk", "seq"),
    )


def downgrade() -> None:
    op.drop_table("bulk_file")
    with op.batch_alter_table("bulk_job", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bulk_job_expires_at"))
        batch_op.drop_index(batch_op.f("ix_bulk_job_client_pk"))
        batch_op.drop_index("ix_bulk_job_due")
    op.drop_table("bulk_job")
    op.drop_table("bulk_group_member")
    with op.batch_alter_table("bulk_group", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bulk_group_clinic_pk"))
    op.drop_table("bulk_group")
    with op.batch_alter_table("resource", schema=None) as batch_op:
        batch_op.drop_index("ix_resource_export")
