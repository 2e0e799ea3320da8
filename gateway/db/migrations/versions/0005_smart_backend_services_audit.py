"""SMART backend services, jti replay store, audit events (issue 9)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "assertion_jti",
        sa.Column("client_pk", sa.Integer(), nullable=False),
        sa.Column("jti_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["client_pk"], ["client.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("client_pk", "jti_hash"),
    )
    with op.batch_alter_table("assertion_jti", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_assertion_jti_expires_at"), ["expires_at"], unique=False)
    op.create_table(
        "audit_event",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("recorded", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=2), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=True),
        sa.Column("clinic_pk", sa.Integer(), nullable=True),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("resource_type", sa.String(length=64), nullable=True),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index("ix_audit_event_recorded", ["recorded"], unique=False)
        batch_op.create_index("ix_audit_event_client", ["client_id", "recorded"], unique=False)
        batch_op.create_index("ix_audit_event_patient", ["patient_id", "recorded"], unique=False)
        batch_op.create_index("ix_audit_event_action", ["action", "recorded"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_event_action")
        batch_op.drop_index("ix_audit_event_patient")
        batch_op.drop_index("ix_audit_event_client")
        batch_op.drop_index("ix_audit_event_recorded")
    op.drop_table("audit_event")
    with op.batch_alter_table("assertion_jti", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assertion_jti_expires_at"))
    op.drop_table("assertion_jti")
