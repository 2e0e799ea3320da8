"""``kap-gateway``: serve, worker, db upgrade, clinics, clients, demo."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import TYPE_CHECKING, Annotated

import typer

from gateway.core.config import get_settings
from gateway.core.logging import configure_logging

if TYPE_CHECKING:
    from gateway.db.engine import Engine, Session

app = typer.Typer(help="KAP FHIR Gateway", no_args_is_help=True, pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema", no_args_is_help=True)
clinics_app = typer.Typer(help="Clinics", no_args_is_help=True)
clients_app = typer.Typer(help="OAuth clients", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(clinics_app, name="clinics")
app.add_typer(clients_app, name="clients")


@contextmanager
def _engine() -> Iterator[Engine]:
    from gateway.db.engine import make_engine

    engine = make_engine(get_settings())
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def _session() -> Iterator[Session]:
    """A session on the configured database (an embedded SQLite is upgraded first)."""
    from gateway.db.engine import Session
    from gateway.db.migrate import upgrade

    with _engine() as engine:
        if get_settings().is_sqlite:
            upgrade(engine)
        with Session(engine, expire_on_commit=False) as session:
            yield session


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(help="worker processes (PostgreSQL only)")] = 1,
) -> None:
    """Run the gateway (embedded default: SQLite under ./data/, upgraded automatically)."""
    import uvicorn

    settings = get_settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    if workers > 1 and settings.is_sqlite:
        raise typer.BadParameter(
            "several workers need PostgreSQL (KAPGW_DATABASE_URL)", param_hint="--workers"
        )
    uvicorn.run(
        "gateway.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
    )


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply the Alembic migrations up to REVISION (default head)."""
    from gateway.db.migrate import current_revision, upgrade

    with _engine() as engine:
        upgrade(engine, revision)
        typer.echo(f"database at revision {current_revision(engine)}")


@clinics_app.command("create")
def clinics_create(
    slug: Annotated[str, typer.Option(help="short id, e.g. bright-path")],
    name: Annotated[str, typer.Option(help="display name")],
) -> None:
    """Create a clinic."""
    from gateway.auth.clients import create_clinic

    with _session() as session:
        row = create_clinic(session, slug=slug, name=name)
        typer.echo(json.dumps({"slug": row.slug, "name": row.name}))


@clinics_app.command("list")
def clinics_list() -> None:
    """List clinics."""
    from gateway.db.repositories.clinics import list_clinics

    with _session() as session:
        for row in list_clinics(session):
            typer.echo(json.dumps({"slug": row.slug, "name": row.name}))


@clients_app.command("create")
def clients_create(
    kind: Annotated[str, typer.Option(help="client kind: clinic")],
    clinic: Annotated[str, typer.Option(help="clinic slug")],
    name: Annotated[str, typer.Option(help="client name")],
) -> None:
    """Create an OAuth client; prints {"client_id", "client_secret"} once (the secret is stored hashed)."""
    from gateway.auth.clients import create_clinic_client

    if kind != "clinic":
        raise typer.BadParameter("only clinic clients exist so far", param_hint="--kind")
    with _session() as session:
        created = create_clinic_client(session, clinic_slug=clinic, name=name)
        typer.echo(json.dumps({"client_id": created.client_id, "client_secret": created.client_secret}))


@app.command()
def demo(
    patients: Annotated[int, typer.Option(min=1, max=5000)] = 20,
    seed: Annotated[int, typer.Option()] = 0,
    slug: Annotated[str, typer.Option(help="demo clinic slug")] = "demo",
    start: Annotated[str, typer.Option(help="first course date, YYYY-MM-DD")] = "2026-01-05",
) -> None:
    """Create the demo clinic, load synthetic KAP courses through the records service, create a client."""
    from gateway.demo import load_demo

    with _session() as session:
        summary = load_demo(
            session, get_settings(), slug=slug, patients=patients, seed=seed, start=date.fromisoformat(start)
        )
    base = get_settings().base_url
    typer.echo(json.dumps(summary.counts, indent=2))
    typer.echo(f"""
Demo clinic '{slug}' loaded. Client credentials (shown once):
  client_id={summary.client_id}
  client_secret={summary.client_secret}

Try it (with `kap-gateway serve` running):
  TOKEN=$(curl -s -u '{summary.client_id}:{summary.client_secret}' -d grant_type=client_credentials \\
          {base}/auth/token | python3 -c 'import sys,json; print(json.load(sys.stdin)["access_token"])')
  curl -s -H "Authorization: Bearer $TOKEN" {base}/api/v1/patients?limit=3
""")


if __name__ == "__main__":
    app()
