"""SMART app launch: users, authorization codes, refresh tokens (issue 9)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "app_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("fhir_user", sa.String(length=200), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username"),
    )
    op.create_table(
        "app_user_clinic",
        sa.Column("user_pk", sa.Integer(), nullable=False),
        sa.Column("clinic_pk", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["clinic_pk"], ["clinic.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_pk"], ["app_user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_pk", "clinic_pk"),
    )
    op.create_table(
        "authorization_code",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("client_pk", sa.Integer(), nullable=False),
        sa.Column("user_pk", sa.Integer(), nullable=False),
        sa.Column("clinic_pk", sa.Integer(), nullable=False),
        sa.Column("redirect_uri", sa.String(length=2000), nullable=False),
        sa.Column("scope", sa.String(length=2000), nullable=False),
        sa.Column("code_challenge", sa.String(length=128), nullable=False),
        sa.Column("nonce", sa.String(length=255), nullable=True),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["client_pk"], ["client.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["clinic_pk"], ["clinic.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_pk"], ["app_user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code_hash"),
    )
    with op.batch_alter_table("authorization_code", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_authorization_code_client_pk"), ["client_pk"], unique=False)
        batch_op.create_index(batch_op.f("ix_authorization_code_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_authorization_code_user_pk"), ["user_pk"], unique=False)
    op.create_table(
        "grant_token",
        sa.Column("code_pk", sa.Integer(), nullable=False),
        sa.Column("access_token_pk", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["access_token_pk"], ["access_token.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["code_pk"], ["authorization_code.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("code_pk", "access_token_pk"),
    )
    op.create_table(
        "refresh_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("code_pk", sa.Integer(), nullable=False),
        sa.Column("client_pk", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=2000), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replaced", sa.Boolean(), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["client_pk"], ["client.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["code_pk"], ["authorization_code.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("refresh_token", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_refresh_token_code_pk"), ["code_pk"], unique=False)
    op.create_table(
        "signing_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("alg", sa.String(length=16), nullable=False),
        sa.Column("public_jwk", sa.JSON(), nullable=False),
        sa.Column("sealed_private_key", sa.String(length=8000), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kid"),
    )


def downgrade() -> None:
    op.drop_table("signing_key")
    with op.batch_alter_table("refresh_token", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refresh_token_code_pk"))
    op.drop_table("refresh_token")
    op.drop_table("grant_token")
    with op.batch_alter_table("authorization_code", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authorization_code_user_pk"))
        batch_op.drop_index(batch_op.f("ix_authorization_code_expires_at"))
        batch_op.drop_index(batch_op.f("ix_authorization_code_client_pk"))
    op.drop_table("authorization_code")
    op.drop_table("app_user_clinic")
    op.drop_table("app_user")
