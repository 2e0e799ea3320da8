"""``kap-gateway connections|keys|sync|worker``: the sync engine's operator commands (issue 10).

Registered on the main ``kap-gateway`` app by ``gateway/cli.py``. Output is JSON lines; a private key is
never printed (``keys generate`` writes it to a file readable by its owner only).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from gateway.cli import _engine, _session, echo_json, operator_errors
from gateway.core.config import get_settings
from gateway.core.logging import configure_logging

connections_app = typer.Typer(
    help="EHR connections (hospital FHIR servers the clinic syncs with)", no_args_is_help=True
)
keys_app = typer.Typer(help="Client keys for SMART Backend Services", no_args_is_help=True)
sync_app = typer.Typer(help="EHR sync state: status, dead letters, replay", no_args_is_help=True)


def register_commands(app: typer.Typer) -> None:
    app.add_typer(connections_app, name="connections")
    app.add_typer(keys_app, name="keys")
    app.add_typer(sync_app, name="sync")
    app.command()(worker)


def _clinic_pk(session: Any, slug: str | None) -> int | None:
    from gateway.auth.known_clinics import clinic_pk

    return None if slug is None else clinic_pk(session, slug)


@connections_app.command("create")
@operator_errors
def connections_create(
    clinic: Annotated[str, typer.Option(help="clinic slug")],
    name: Annotated[str, typer.Option(help="connection name, e.g. general-hospital")],
    fhir_base: Annotated[str, typer.Option(help="the EHR's FHIR R4 base URL")],
    client_id: Annotated[str, typer.Option(help="client id the hospital registered for the gateway")],
    kid: Annotated[str, typer.Option(help="key id (kid) of the registered public key")],
    private_key_file: Annotated[Path | None, typer.Option(help="PEM private key file")] = None,
    private_key_env: Annotated[str | None, typer.Option(help="environment variable holding the PEM")] = None,
    alg: Annotated[str, typer.Option(help="RS384 or ES384")] = "RS384",
    scope: Annotated[str, typer.Option(help="scopes to ask for")] = "system/*.cruds",
    push: Annotated[str | None, typer.Option(help="comma-separated resource types to push")] = None,
    probe: Annotated[bool, typer.Option(help="probe /metadata and smart-configuration now")] = True,
) -> None:
    """Create a connection; its backfill (everything the clinic already has) starts in the background."""
    from gateway.sync.connections import create_connection, describe

    with _session() as session:
        row = create_connection(
            session,
            get_settings(),
            clinic_slug=clinic,
            name=name,
            fhir_base=fhir_base,
            client_id=client_id,
            private_key_file=str(private_key_file.resolve()) if private_key_file else None,
            private_key_env=private_key_env,
            kid=kid,
            alg=alg,
            scope=scope,
            push=[t.strip() for t in push.split(",") if t.strip()] if push else None,
            probe=probe,
        )
        echo_json(describe(row, clinic))


@connections_app.command("list")
@operator_errors
def connections_list(clinic: Annotated[str | None, typer.Option(help="clinic slug")] = None) -> None:
    """List connections."""
    from gateway.db.repositories.clinics import list_clinics
    from gateway.db.repositories.sync import list_connections
    from gateway.sync.connections import describe

    with _session() as session:
        slugs = {c.id: c.slug for c in list_clinics(session)}
        for row in list_connections(session, clinic_pk=_clinic_pk(session, clinic)):
            echo_json(describe(row, slugs.get(row.clinic_pk)))


@connections_app.command("show")
@operator_errors
def connections_show(
    clinic: Annotated[str, typer.Option(help="clinic slug")],
    name: Annotated[str, typer.Option(help="connection name")],
) -> None:
    """Show one connection, with the capabilities last probed."""
    from gateway.sync.connections import describe, find

    with _session() as session:
        echo_json(describe(find(session, clinic_slug=clinic, name=name), clinic))


@connections_app.command("probe")
@operator_errors
def connections_probe(
    clinic: Annotated[str, typer.Option(help="clinic slug")],
    name: Annotated[str, typer.Option(help="connection name")],
) -> None:
    """Probe the EHR's /metadata and smart-configuration again now."""
    from gateway.sync.connections import describe, find, probe_connection

    with _session() as session:
        row = find(session, clinic_slug=clinic, name=name)
        probe_connection(session, get_settings(), row=row)
        echo_json(describe(row, clinic))


def _set_disabled(clinic: str, name: str, disabled: bool) -> None:
    from gateway.sync.connections import describe, find, set_disabled

    with _session() as session:
        row = set_disabled(session, row=find(session, clinic_slug=clinic, name=name), disabled=disabled)
        echo_json(describe(row, clinic))


@connections_app.command("disable")
@operator_errors
def connections_disable(
    clinic: Annotated[str, typer.Option(help="clinic slug")],
    name: Annotated[str, typer.Option(help="connection name")],
) -> None:
    """Stop syncing to a connection (what is queued stays queued)."""
    _set_disabled(clinic, name, True)


@connections_app.command("enable")
@operator_errors
def connections_enable(
    clinic: Annotated[str, typer.Option(help="clinic slug")],
    name: Annotated[str, typer.Option(help="connection name")],
) -> None:
    """Resume a disabled (or paused) connection."""
    _set_disabled(clinic, name, False)


@keys_app.command("generate")
@operator_errors
def keys_generate(
    out: Annotated[Path, typer.Option(help="where to write the PEM private key (created, mode 0600)")],
    alg: Annotated[str, typer.Option(help="RS384 or ES384")] = "RS384",
    kid: Annotated[str | None, typer.Option(help="key id; default the JWK thumbprint")] = None,
) -> None:
    """Make a key pair: the private key goes to OUT, the public JWKS (to register with the hospital) to stdout."""
    from gateway.core.errors import ConflictError
    from gateway.sync.keys import generate_key

    if out.exists():
        raise ConflictError(f"{out} exists; not overwriting a key")
    generated = generate_key(alg, kid)
    descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(generated.private_pem)
    echo_json(generated.public_jwks)


@sync_app.command("status")
@operator_errors
def sync_status(
    clinic: Annotated[str | None, typer.Option(help="clinic slug")] = None,
    connection: Annotated[str | None, typer.Option(help="connection name")] = None,
) -> None:
    """Pending, delivered and dead deliveries per connection, and whether it is paused."""
    from gateway.sync.status import status

    with _session() as session:
        for line in status(session, clinic_pk=_clinic_pk(session, clinic), name=connection):
            echo_json(line)


@sync_app.command("dead-letters")
@operator_errors
def sync_dead_letters(
    clinic: Annotated[str | None, typer.Option(help="clinic slug")] = None,
    connection: Annotated[str | None, typer.Option(help="connection name")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 100,
) -> None:
    """Deliveries given up on, with the EHR's OperationOutcome."""
    from gateway.sync.status import dead_letters

    with _session() as session:
        for line in dead_letters(
            session, clinic_pk=_clinic_pk(session, clinic), name=connection, limit=limit
        ):
            echo_json(line)


@sync_app.command("replay")
@operator_errors
def sync_replay(
    clinic: Annotated[str | None, typer.Option(help="clinic slug")] = None,
    connection: Annotated[str | None, typer.Option(help="connection name")] = None,
    id: Annotated[
        list[int] | None, typer.Option("--id", help="dead letter id (repeatable); default all")
    ] = None,
) -> None:
    """Put dead letters back into the queue."""
    from gateway.sync.status import replay

    with _session() as session:
        echo_json(
            {"replayed": replay(session, clinic_pk=_clinic_pk(session, clinic), name=connection, ids=id)}
        )


@operator_errors
def worker(
    until_idle: Annotated[bool, typer.Option(help="exit once no task finds work")] = False,
) -> None:
    """Run the background tasks (EHR sync, export jobs) standalone; run as many as you like."""
    from gateway.background import WorkerLoop
    from gateway.db.migrate import upgrade

    settings = get_settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    with _engine() as engine:
        if settings.is_sqlite:
            upgrade(engine)
        loop = WorkerLoop(engine, settings)
        signal.signal(signal.SIGTERM, lambda *_: loop.stop())
        signal.signal(signal.SIGINT, lambda *_: loop.stop())
        if until_idle:
            while not loop.stopping.is_set() and loop.run_once():
                pass
            return
        loop.run_forever()
