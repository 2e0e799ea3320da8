"""``kap-gateway audit search|purge``: the audit trail for operators (the same search as GET
/admin/audit-events) and its purge before a date (``gateway.audit.retention``).

Registered on the main ``kap-gateway`` app by ``gateway/cli.py``. ``search`` prints one AuditEvent (JSON)
per line, newest first.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer

from gateway.audit import retention
from gateway.audit import search as audit_search
from gateway.cli import _engine, _session, operator_errors

audit_app = typer.Typer(help="The audit trail (AuditEvents of token requests, FHIR access, failures)")


def register_commands(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")


@audit_app.command("search")
@operator_errors
def audit_search_command(
    action: Annotated[
        str | None, typer.Option(help="token, authentication-failure, read, search ...")
    ] = None,
    client_id: Annotated[str | None, typer.Option(help="the OAuth client")] = None,
    patient: Annotated[str | None, typer.Option(help="FHIR Patient id")] = None,
    resource_type: Annotated[str | None, typer.Option(help="FHIR resource type")] = None,
    outcome: Annotated[str | None, typer.Option(help="0 success, 4 refused, 8 server error")] = None,
    since: Annotated[
        datetime | None, typer.Option(help="recorded at or after (UTC unless an offset is given)")
    ] = None,
    until: Annotated[datetime | None, typer.Option(help="recorded before")] = None,
    limit: Annotated[int, typer.Option(min=1, max=audit_search.MAX_LIMIT)] = 100,
) -> None:
    """Search the audit trail; prints AuditEvents as JSON lines, newest first."""
    query = audit_search.AuditQuery(
        action=action,
        client_id=client_id,
        patient_id=patient,
        resource_type=resource_type,
        outcome=outcome,
        since=since,
        until=until,
        limit=limit,
    )
    with _session() as session:
        page = audit_search.search(session, query=query)
    for event in page.events:
        typer.echo(event.decode())


@audit_app.command("purge")
@operator_errors
def audit_purge_command(
    before: Annotated[
        datetime, typer.Option(help="delete events recorded before this (UTC unless an offset)")
    ],
    batch_size: Annotated[int, typer.Option(min=1, max=100_000, help="events per transaction")] = (
        retention.BATCH_SIZE
    ),
) -> None:
    """Delete AuditEvents recorded before a date (the worker does this by KAPGW_AUDIT_RETENTION_DAYS);
    prints {"deleted", "before"}."""
    with _engine() as engine:
        deleted = retention.purge_before(engine, before=before, batch_size=batch_size)
    cutoff = before if before.tzinfo is not None else before.replace(tzinfo=UTC)
    typer.echo(json.dumps({"deleted": deleted, "before": cutoff.isoformat()}))
