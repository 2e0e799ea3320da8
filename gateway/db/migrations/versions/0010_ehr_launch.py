"""SMART EHR launch: app launch URLs, minted launches, launch context of a grant (issue 9)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("client", schema=None) as batch_op:
        batch_op.add_column(sa.Column("launch_url", sa.String(length=2000), nullable=True))
    with op.batch_alter_table("authorization_code", schema=None) as batch_op:
        batch_op.add_column(sa.Column("launch_context", sa.JSON(), nullable=True))
    op.create_table(
        "ehr_launch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("launch_hash", sa.String(length=64), nullable=False),
        sa.Column("client_pk", sa.Integer(), nullable=False),
        sa.Column("clinic_pk", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("encounter_id", sa.String(length=64), nullable=True),
        sa.Column("fhir_context", sa.JSON(), nullable=True),
        sa.Column("user_pk", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["client_pk"], ["client.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["clinic_pk"], ["clinic.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_pk"], ["app_user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("launch_hash"),
    )
    with op.batch_alter_table("ehr_launch", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ehr_launch_client_pk"), ["client_pk"], unique=False)
        batch_op.create_index(batch_op.f("ix_ehr_launch_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ehr_launch", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ehr_launch_expires_at"))
        batch_op.drop_index(batch_op.f("ix_ehr_launch_client_pk"))
    op.drop_table("ehr_launch")
    with op.batch_alter_table("authorization_code", schema=None) as batch_op:
        batch_op.drop_column("launch_context")
    with op.batch_alter_table("client", schema=None) as batch_op:
        batch_op.drop_column("launch_url")
