"""``kap-gateway``: serve, worker, db upgrade, clinics, clients, groups, demo.

An operator's mistake (a clinic that exists or is unknown, a bad slug, invalid ``KAPGW_`` settings, a
database that cannot be reached or is not migrated) prints one line, ``error: ...``, on stderr and exits
with status 1; only a bug shows a traceback.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from pydantic import ValidationError

from gateway.core.config import Settings, get_settings
from gateway.core.errors import GatewayError
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
groups_app = typer.Typer(help="Groups for Bulk Data Group/{id}/$export", no_args_is_help=True)
app.add_typer(groups_app, name="groups")

F = TypeVar("F", bound=Callable[..., Any])


def describe_operator_error(error: BaseException) -> str | None:
    """The one line for an operator's mistake, or None for an error that is a bug."""
    from gateway.db.diagnose import describe_database_error

    if isinstance(error, GatewayError) and isinstance(error.detail, str):
        return error.detail
    if isinstance(error, ValidationError) and error.title == Settings.__name__:
        return "settings: " + "; ".join(_setting_problem(e) for e in error.errors())
    if isinstance(error, OSError) and error.filename:
        return f"{error.filename}: {error.strerror}"
    return describe_database_error(error)


def _setting_problem(error: Any) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if not error["loc"]:
        return message
    return f"KAPGW_{str(error['loc'][0]).upper()}: {message}"


def operator_errors(command: F) -> F:
    """Turns an operator's mistake in ``command`` into one line on stderr and exit status 1."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except Exception as error:
            message = describe_operator_error(error)
            if message is None:
                raise
            typer.echo(f"error: {message}", err=True)
            raise typer.Exit(1) from None

    return run  # type: ignore[return-value]


def echo_json(value: Any) -> None:
    """One line of JSON output on stdout (what is not JSON, such as a datetime, as its ``str``)."""
    typer.echo(json.dumps(value, default=str))


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


@contextmanager
def _progress_bar(description: str) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on stderr (shown on a terminal only); yields ``update(done, total)``."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, disable=not console.is_terminal) as progress:
        task = progress.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


@app.command()
@operator_errors
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
        "gateway.app:create_served_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
    )


@db_app.command("upgrade")
@operator_errors
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply the Alembic migrations up to REVISION (default head)."""
    from gateway.db.migrate import current_revision, upgrade

    with _engine() as engine:
        upgrade(engine, revision)
        typer.echo(f"database at revision {current_revision(engine)}")


@clinics_app.command("create")
@operator_errors
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
@operator_errors
def clinics_list() -> None:
    """List clinics."""
    from gateway.db.repositories.clinics import list_clinics

    with _session() as session:
        for row in list_clinics(session):
            typer.echo(json.dumps({"slug": row.slug, "name": row.name}))


@clients_app.command("create")
@operator_errors
def clients_create(
    kind: Annotated[
        str,
        typer.Option(
            help="client kind: clinic (records API), ehr (SMART backend services), app (SMART App Launch), admin"
        ),
    ],
    name: Annotated[str, typer.Option(help="client name")],
    clinic: Annotated[
        list[str] | None, typer.Option(help="clinic slug (ehr clients: repeat for each clinic granted)")
    ] = None,
    jwks_file: Annotated[
        Path | None, typer.Option(help="ehr: a JSON file with the client's public JWK Set (RS384/ES384 keys)")
    ] = None,
    jwks_url: Annotated[str | None, typer.Option(help="ehr: the https URL of the client's JWK Set")] = None,
    scope: Annotated[
        str | None, typer.Option(help='ehr: space-separated system/ scope ceiling (default "system/*.rs")')
    ] = None,
    redirect_uri: Annotated[
        list[str] | None, typer.Option(help="app: a redirect URI, matched exactly (repeat for several)")
    ] = None,
    public: Annotated[bool, typer.Option(help="app: a public client (no secret, PKCE only)")] = False,
    launch_url: Annotated[
        str | None, typer.Option(help="app: the URL an EHR launch opens (?iss=...&launch=...)")
    ] = None,
) -> None:
    """Create an OAuth client. Clinic and admin clients: prints {"client_id", "client_secret"} once (the secret
    is stored hashed). EHR clients (private_key_jwt): prints {"client_id"}."""
    from gateway.auth.clients import (
        DEFAULT_EHR_SCOPE,
        create_admin_client,
        create_clinic_client,
        create_ehr_client,
    )

    clinics = clinic or []
    if kind != "app" and (redirect_uri or public or launch_url):
        raise typer.BadParameter(
            "--redirect-uri, --public and --launch-url are for app clients", param_hint="--kind"
        )
    with _session() as session:
        if kind == "clinic":
            if len(clinics) != 1 or jwks_file or jwks_url or scope:
                raise typer.BadParameter("a clinic client takes exactly one --clinic and no keys or scope")
            created = create_clinic_client(session, clinic_slug=clinics[0], name=name)
            typer.echo(json.dumps({"client_id": created.client_id, "client_secret": created.client_secret}))
        elif kind == "ehr":
            jwks = _read_jwks(jwks_file)
            new = create_ehr_client(
                session,
                name=name,
                clinic_slugs=clinics,
                jwks=jwks,
                jwks_uri=jwks_url,
                scopes=scope or DEFAULT_EHR_SCOPE,
            )
            typer.echo(json.dumps({"client_id": new.client_id}))
        elif kind == "app":
            _create_app(
                session, name, clinics, redirect_uri or [], scope, public, jwks_file, jwks_url, launch_url
            )
        elif kind == "admin":
            if clinics or jwks_file or jwks_url or scope:
                raise typer.BadParameter("an admin client takes no clinic, keys or scope")
            created = create_admin_client(session, name=name)
            typer.echo(json.dumps({"client_id": created.client_id, "client_secret": created.client_secret}))
        else:
            raise typer.BadParameter("kind: clinic, ehr, app or admin", param_hint="--kind")


def _read_jwks(jwks_file: Path | None) -> Any:
    """The client's public keys from ``--jwks-file`` (a JSON JWK Set), or None."""
    if jwks_file is None:
        return None
    try:
        return json.loads(jwks_file.read_text())
    except (OSError, ValueError) as error:
        raise typer.BadParameter(f"cannot read a JSON JWK Set: {error}", param_hint="--jwks-file") from None


def _create_app(
    session: Session,
    name: str,
    clinics: list[str],
    redirect_uris: list[str],
    scope: str | None,
    public: bool,
    jwks_file: Path | None,
    jwks_url: str | None,
    launch_url: str | None,
) -> None:
    """A SMART app (gateway/auth/launch_clients.py): public, confidential-symmetric (a secret, printed
    once) or, with --jwks-file, confidential-asymmetric (private_key_jwt)."""
    from gateway.auth.launch_clients import DEFAULT_APP_SCOPE, create_app_client

    if len(clinics) != 1 or jwks_url:
        raise typer.BadParameter("an app client takes exactly one --clinic (and keys by --jwks-file only)")
    jwks = _read_jwks(jwks_file)
    created = create_app_client(
        session,
        clinic_slug=clinics[0],
        name=name,
        redirect_uris=redirect_uris,
        scope=scope or DEFAULT_APP_SCOPE,
        public=public,
        jwks=jwks,
        launch_url=launch_url,
    )
    shown: dict[str, str] = {"client_id": created.client_id}
    if created.client_secret is not None:
        shown["client_secret"] = created.client_secret
    shown["token_endpoint_auth_method"] = created.token_endpoint_auth_method
    typer.echo(json.dumps(shown))


@app.command()
@operator_errors
def demo(
    patients: Annotated[int, typer.Option(min=1, max=5000)] = 20,
    seed: Annotated[int, typer.Option()] = 0,
    slug: Annotated[str, typer.Option(help="demo clinic slug")] = "demo",
    start: Annotated[
        datetime, typer.Option(formats=["%Y-%m-%d"], help="first course date, YYYY-MM-DD")
    ] = datetime(2026, 1, 5),
) -> None:
    """Create the demo clinic, load synthetic KAP courses through the records service, create a client."""
    from gateway.demo import load_demo

    with _session() as session, _progress_bar("loading records") as progress:
        summary = load_demo(
            session,
            get_settings(),
            slug=slug,
            patients=patients,
            seed=seed,
            start=start.date(),
            progress=progress,
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


def _register_launch_commands() -> None:
    """users, signing-keys (gateway/auth/launch_cli.py; imported last, it uses the helpers above)."""
    from gateway.auth.launch_cli import register_commands

    register_commands(app)


def _register_sync_commands() -> None:
    """connections, keys, sync, worker (gateway/sync/cli.py; imported last, it uses the helpers above)."""
    from gateway.sync.cli import register_commands

    register_commands(app)


@groups_app.command("create")
@operator_errors
def groups_create(
    clinic: Annotated[str, typer.Option(help="clinic slug")],
    name: Annotated[str, typer.Option(help="group name")],
    patient: Annotated[
        list[str], typer.Option(help="a patient: the clinic's patient id (or FHIR id); repeat")
    ],
    group_id: Annotated[
        str | None, typer.Option("--id", help="FHIR id of the group (default: a new uuid)")
    ] = None,
) -> None:
    """Create an ad-hoc group of a clinic's patients; prints it with its $export URL."""
    from gateway.bulk.groups import create_group

    with _session() as session:
        group = create_group(session, clinic_slug=clinic, name=name, patients=patient, group_id=group_id)
    export = f"{get_settings().fhir_base_url}/Group/{group.group_id}/$export"
    typer.echo(json.dumps({**group.as_json(), "export": export}))


@groups_app.command("list")
@operator_errors
def groups_list() -> None:
    """List groups: each clinic's own (id = its slug, all its patients) and the ad-hoc ones."""
    from gateway.bulk.groups import list_groups

    with _session() as session:
        for group in list_groups(session):
            typer.echo(json.dumps(group.as_json()))


@groups_app.command("delete")
@operator_errors
def groups_delete(group_id: Annotated[str, typer.Argument(help="the ad-hoc group's id")]) -> None:
    """Delete an ad-hoc group."""
    from gateway.bulk.groups import delete_group

    with _session() as session:
        delete_group(session, group_id=group_id)
    typer.echo(json.dumps({"deleted": group_id}))


def _register_audit_commands() -> None:
    """audit search (gateway/audit/cli.py; imported last, it uses the helpers above)."""
    from gateway.audit.cli import register_commands

    register_commands(app)


if __name__ == "__main__":
    # `python -m gateway.cli`: run the importable module's app, which the command modules (they import
    # gateway.cli) register on; registering from this __main__ copy would import gateway.cli a second time
    from gateway.cli import app as main_app

    main_app()
else:
    _register_audit_commands()
    _register_sync_commands()
    _register_launch_commands()
