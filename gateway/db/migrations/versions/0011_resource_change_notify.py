"""Resource changes notified to listening processes (the FHIR read cache), PostgreSQL only

Each inserted, updated or deleted ``resource`` row sends ``pg_notify('kapgw_resource', 'Type/id')``, a
TRUNCATE ``'*'``; PostgreSQL delivers them at commit to the sessions that LISTEN (``gateway.store.changes``)
and drops them when none does. SQLite has no other process to tell: nothing is created there.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

FUNCTION = """
CREATE OR REPLACE FUNCTION kapgw_resource_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('kapgw_resource', '*');
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('kapgw_resource', OLD.resource_type || '/' || OLD.resource_id);
    ELSE
        PERFORM pg_notify('kapgw_resource', NEW.resource_type || '/' || NEW.resource_id);
    END IF;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(FUNCTION)
    op.execute(
        "CREATE TRIGGER resource_changed AFTER INSERT OR UPDATE OR DELETE ON resource "
        "FOR EACH ROW EXECUTE FUNCTION kapgw_resource_changed()"
    )
    op.execute(
        "CREATE TRIGGER resource_truncated AFTER TRUNCATE ON resource "
        "FOR EACH STATEMENT EXECUTE FUNCTION kapgw_resource_changed()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS resource_truncated ON resource")
    op.execute("DROP TRIGGER IF EXISTS resource_changed ON resource")
    op.execute("DROP FUNCTION IF EXISTS kapgw_resource_changed()")
