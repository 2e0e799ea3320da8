"""``kap-gateway users|signing-keys|launch``: clinician users, the id_token signing keys and EHR launches
(SMART App Launch).

Registered on the main ``kap-gateway`` app by ``gateway/cli.py``. Output is JSON lines; passwords are read
from a prompt (hidden, asked twice) or from stdin with ``--password-stdin``, never from the command line.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from gateway.cli import _session, echo_json, operator_errors
from gateway.core.config import get_settings

users_app = typer.Typer(help="Clinician users who sign in to authorize SMART apps", no_args_is_help=True)
signing_keys_app = typer.Typer(
    help="The gateway's id_token signing keys (served at /auth/jwks)", no_args_is_help=True
)

launch_app = typer.Typer(
    help="EHR launches of SMART apps (what an EHR does to open an app)", no_args_is_help=True
)


def register_commands(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
    app.add_typer(signing_keys_app, name="signing-keys")
    app.add_typer(launch_app, name="launch")


@users_app.command("create")
@operator_errors
def users_create(
    username: Annotated[str, typer.Option(help="sign-in name")],
    clinic: Annotated[list[str], typer.Option(help="clinic slug the user belongs to (repeat for several)")],
    name: Annotated[str | None, typer.Option(help="display name (default: the username)")] = None,
    practitioner: Annotated[
        str | None,
        typer.Option(help="the clinic's practitioner id (external id) of this user: the id_token's fhirUser"),
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option(help="read the password from the first line of stdin")
    ] = False,
) -> None:
    """Create a clinician user (password hashed with scrypt); prints {"username", "clinics", "fhirUser"}."""
    from gateway.auth.users import create_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with _session() as session:
        user = create_user(
            session,
            username=username,
            password=password,
            clinic_slugs=clinic,
            display_name=name,
            practitioner=practitioner,
        )
        fhir_user = f"{get_settings().fhir_base_url}/{user.fhir_user}" if user.fhir_user else None
        echo_json({"username": user.username, "clinics": list(dict.fromkeys(clinic)), "fhirUser": fhir_user})


@users_app.command("list")
@operator_errors
def users_list() -> None:
    """List users (never their password hashes)."""
    from gateway.db.repositories.users import list_users

    with _session() as session:
        for user in list_users(session):
            echo_json({"username": user.username, "name": user.display_name, "disabled": user.disabled})


@signing_keys_app.command("rotate")
@operator_errors
def signing_keys_rotate() -> None:
    """Add a new signing key; the old ones stop signing and stay in /auth/jwks for two days."""
    from gateway.auth.launch_keys import rotate

    with _session() as session:
        echo_json({"kid": rotate(session, get_settings()), "alg": "RS256"})


@signing_keys_app.command("list")
@operator_errors
def signing_keys_list() -> None:
    """List the signing keys served at /auth/jwks (public parts only)."""
    from gateway.auth.launch_keys import jwks

    with _session() as session:
        for key in jwks(session)["keys"]:
            echo_json({"kid": key["kid"], "alg": key.get("alg"), "kty": key["kty"]})


@launch_app.command("create")
@operator_errors
def launch_create(
    client_id: Annotated[str, typer.Option(help="the app client (registered with --launch-url)")],
    patient: Annotated[str, typer.Option(help="FHIR Patient id of the app's clinic")],
    encounter: Annotated[str | None, typer.Option(help="FHIR Encounter id of that patient")] = None,
    user: Annotated[
        str | None, typer.Option(help="username of the clinician who may approve it (default: any)")
    ] = None,
    fhir_context: Annotated[
        list[str] | None, typer.Option(help="a further resource of the launch, Type/id (repeat for several)")
    ] = None,
) -> None:
    """Mint a single-use launch; prints {"launch", "launch_url" (open it in a browser), "iss", "expires_at"}."""
    from gateway.auth.ehr_launch import create_launch

    with _session() as session:
        minted = create_launch(
            session,
            get_settings(),
            client_id=client_id,
            patient_id=patient,
            encounter_id=encounter,
            username=user,
            fhir_context=fhir_context,
        )
    echo_json(minted.as_json())
