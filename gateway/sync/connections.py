"""EHR connections (DESIGN §8): create, list, show, disable; capability probes; the client of each.

A connection names its private key by file path or environment variable; the key itself never enters the
database, the logs or any output (``describe`` shows where it is, never what it is). Workers and the
running gateway read connections from the database on every claim, so a connection created, changed or
disabled from the CLI takes effect without a restart.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from gateway.auth import known_clinics
from gateway.core.config import Settings
from gateway.core.errors import ConflictError, NotFoundError
from gateway.db.engine import Engine, Session, session_scope
from gateway.db.repositories import clinics as clinic_repo
from gateway.db.repositories import sync as sync_repo
from gateway.db.tables import EhrConnectionRow, utcnow
from gateway.sync import capabilities
from gateway.sync.errors import ConnectionConfigError, EhrError
from gateway.sync.keys import ALGORITHMS, load_private_key
from gateway.sync.smart_client import Endpoint, SmartClient

log = logging.getLogger(__name__)

#: what a connection pushes unless told otherwise: everything the gateway maps clinic records to
#: (imported referral data -- Condition, MedicationRequest, AllergyIntolerance -- came from an EHR)
DEFAULT_PUSH = (
    "Organization",
    "Practitioner",
    "Patient",
    "Encounter",
    "Procedure",
    "Observation",
    "MedicationAdministration",
    "Medication",
    "QuestionnaireResponse",
    "AdverseEvent",
    "Provenance",
)
DEFAULT_SCOPE = "system/*.cruds"


def push_types(row: EhrConnectionRow) -> tuple[str, ...]:
    return tuple(t for t in row.push_types.split(",") if t)


def create_connection(
    session: Session,
    settings: Settings,
    *,
    clinic_slug: str,
    name: str,
    fhir_base: str,
    client_id: str,
    private_key_file: str | None = None,
    private_key_env: str | None = None,
    kid: str,
    alg: str = "RS384",
    scope: str = DEFAULT_SCOPE,
    push: list[str] | None = None,
    probe: bool = True,
) -> EhrConnectionRow:
    """Checks the key loads and (``probe``) that the EHR answers discovery; commits the new connection.

    The background task then backfills every resource the clinic already has."""
    clinic_pk = known_clinics.clinic_pk(session, clinic_slug)
    if alg not in ALGORITHMS:
        raise ConnectionConfigError(f"alg must be one of {', '.join(ALGORITHMS)}")
    url = urlsplit(fhir_base)
    if url.scheme not in ("http", "https") or not url.netloc:
        raise ConnectionConfigError("--fhir-base must be an http(s) URL")
    if (
        url.scheme == "http"
        and settings.env == "production"
        and url.hostname not in ("127.0.0.1", "localhost")
    ):
        raise ConnectionConfigError("--fhir-base must be https in production")
    load_private_key(alg=alg, path=private_key_file, env=private_key_env)
    if sync_repo.get_connection(session, clinic_pk=clinic_pk, name=name) is not None:
        raise ConflictError(f"clinic {clinic_slug!r} already has a connection named {name!r}")
    now = utcnow()
    row = EhrConnectionRow(
        clinic_pk=clinic_pk,
        name=name,
        fhir_base=fhir_base.rstrip("/"),
        client_id=client_id,
        private_key_file=private_key_file,
        private_key_env=private_key_env,
        kid=kid,
        alg=alg,
        scope=scope,
        push_types=",".join(push or DEFAULT_PUSH),
        created_at=now,
        updated_at=now,
    )
    if probe:
        _apply_probe(row, settings, now)
    sync_repo.add_connection(session, row=row)
    session.commit()
    return row


def _apply_probe(row: EhrConnectionRow, settings: Settings, now: datetime) -> None:
    found = capabilities.probe(row.fhir_base, timeout=settings.sync_http_timeout_seconds)
    row.capabilities, row.probed_at = found, now
    row.token_url = found.get("token_url") or row.token_url
    if not row.token_url:
        raise ConnectionConfigError("the EHR names no token endpoint (smart-configuration or oauth-uris)")


def probe_connection(session: Session, settings: Settings, *, row: EhrConnectionRow) -> dict[str, Any]:
    now = utcnow()
    _apply_probe(row, settings, now)
    row.updated_at = now
    session.add(row)
    session.commit()
    return row.capabilities or {}


def find(session: Session, *, clinic_slug: str, name: str) -> EhrConnectionRow:
    clinic = clinic_repo.get_clinic(session, slug=clinic_slug)
    row = (
        None
        if clinic is None or clinic.id is None
        else sync_repo.get_connection(session, clinic_pk=clinic.id, name=name)
    )
    if row is None:
        raise NotFoundError(f"no connection {name!r} for clinic {clinic_slug!r}")
    return row


def set_disabled(session: Session, *, row: EhrConnectionRow, disabled: bool) -> EhrConnectionRow:
    row.disabled, row.updated_at = disabled, utcnow()
    if not disabled:
        row.failures, row.paused_until = 0, None
    session.add(row)
    session.commit()
    return row


def describe(row: EhrConnectionRow, clinic_slug: str | None = None) -> dict[str, Any]:
    """The connection as shown to operators: where the key is, never the key."""
    caps = row.capabilities or {}
    return {
        "clinic": clinic_slug,
        "name": row.name,
        "fhir_base": row.fhir_base,
        "client_id": row.client_id,
        "private_key": f"file:{row.private_key_file}"
        if row.private_key_file
        else f"env:{row.private_key_env}",
        "kid": row.kid,
        "alg": row.alg,
        "scope": row.scope,
        "push": list(push_types(row)),
        "token_url": row.token_url,
        "mode": caps.get("mode"),
        "capabilities": caps,
        "probed_at": row.probed_at.isoformat() if row.probed_at else None,
        "disabled": row.disabled,
        "paused_until": row.paused_until.isoformat() if row.paused_until else None,
        "failures": row.failures,
        "backfilled": row.backfill_passes > 0,
    }


# --- background upkeep: backfills and capability refreshes ---


def upkeep(engine: Engine, settings: Settings, *, now: datetime) -> bool:
    """One pass: backfill new connections (twice: at once, and once more a lease later for records that
    were being written when the connection was created); probe connections not probed for a while.
    Looking costs one read (no write lock) when there is nothing to do."""
    with session_scope(engine, read_only=True) as session:
        rows = [r for r in sync_repo.list_connections(session) if not r.disabled]
    found = False
    for row in rows:
        assert row.id is not None
        second_pass_due = row.created_at + timedelta(seconds=settings.sync_lease_seconds) <= now
        if row.backfill_passes == 0 or (row.backfill_passes == 1 and second_pass_due):
            with session_scope(engine) as session:
                added = sync_repo.backfill(
                    session,
                    connection_pk=row.id,
                    clinic_pk=row.clinic_pk,
                    resource_types=push_types(row),
                    now=now,
                )
                sync_repo.update_connection(
                    session, pk=row.id, values={"backfill_passes": row.backfill_passes + 1}
                )
                session.commit()
            log.info("backfill", extra={"connection": row.id, "rows": added})
            found = found or added > 0
        interval = timedelta(seconds=settings.sync_probe_interval_seconds)
        if row.probed_at is None or row.probed_at + interval <= now:
            with session_scope(engine) as session:
                fresh = sync_repo.get_connection_by_pk(session, pk=row.id)
                if fresh is None:
                    continue
                try:
                    probe_connection(session, settings, row=fresh)
                except (EhrError, ConnectionConfigError) as error:
                    log.warning(
                        "capability probe failed", extra={"connection": row.id, "error": type(error).__name__}
                    )
                    session.rollback()
                    sync_repo.update_connection(session, pk=row.id, values={"probed_at": now})
                    session.commit()
    return found


# --- one client per connection and process ---

_clients: dict[int, tuple[datetime, SmartClient]] = {}
_clients_lock = threading.Lock()


def client_for(row: EhrConnectionRow, settings: Settings) -> SmartClient:
    """The connection's client (token cache included), rebuilt when the connection changed."""
    assert row.id is not None
    with _clients_lock:
        cached = _clients.get(row.id)
        if cached is not None and cached[0] == row.updated_at:
            return cached[1]
        if not row.token_url:
            raise ConnectionConfigError("the connection has no token endpoint yet (not probed)")
        key = load_private_key(alg=row.alg, path=row.private_key_file, env=row.private_key_env)
        endpoint = Endpoint(row.fhir_base, row.token_url, row.client_id, row.scope, row.alg, row.kid, key)
        client = SmartClient(endpoint, timeout=settings.sync_http_timeout_seconds)
        if cached is not None:
            cached[1].close()
        _clients[row.id] = (row.updated_at, client)
        return client


def close_clients() -> None:
    """Closes every cached client (tests; a process that stops its worker loop)."""
    with _clients_lock:
        for _, client in _clients.values():
            client.close()
        _clients.clear()
