"""FHIR server search support (issue 8)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # FHIR searches by a bare reference id (subject=123, patient=123 before its type is known) look up
    # (resource_type, param, target_id); ix_search_reference_lookup has target_type before target_id
    with op.batch_alter_table("search_reference", schema=None) as batch_op:
        batch_op.create_index(
            "ix_search_reference_target", ["resource_type", "param", "target_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("search_reference", schema=None) as batch_op:
        batch_op.drop_index("ix_search_reference_target")
