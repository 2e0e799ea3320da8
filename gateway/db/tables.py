"""Database tables. Every class ends in ``Row`` so it never clashes with a FHIR class.

Only ``gateway/db/`` imports the ORM. The schema itself is owned by the Alembic migrations in
``gateway/db/migrations``; a test checks that these models and the migrations agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, Integer, LargeBinary, UniqueConstraint
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, also on SQLite (which hands back naive datetimes)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None or value.tzinfo is UTC:
            return value
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: 64-bit keys on PostgreSQL; SQLite autoincrements only INTEGER PRIMARY KEY
BIGINT_PK = BigInteger().with_variant(Integer, "sqlite")


class ClinicRow(SQLModel, table=True):
    __tablename__ = "clinic"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)
    created_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


class ClientRow(SQLModel, table=True):
    """An OAuth client. ``kind`` is clinic (records API), ehr (backend services) or app (SMART launch).

    Clinic clients authenticate with ``client_secret_basic`` (secret stored as a salted scrypt hash);
    ``jwks``/``jwks_uri`` serve ``private_key_jwt`` clients. ``scopes`` is the space-separated
    ceiling of what the client may ask for. Which clinics it may see is ``ClientClinicRow``.
    """

    __tablename__ = "client"

    id: int | None = Field(default=None, primary_key=True)
    client_id: str = Field(max_length=64, unique=True)
    kind: str = Field(max_length=16)
    name: str = Field(max_length=200)
    token_endpoint_auth_method: str = Field(max_length=32)
    secret_hash: str | None = Field(default=None, max_length=255)
    jwks: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    jwks_uri: str | None = Field(default=None, max_length=500)
    scopes: str = Field(default="", max_length=2000)
    redirect_uris: str = Field(default="", max_length=2000)
    #: app clients: the URL an EHR launch opens (``?iss=...&launch=...``); None = no EHR launch
    launch_url: str | None = Field(default=None, max_length=2000)
    disabled: bool = Field(default=False)
    created_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


class ClientClinicRow(SQLModel, table=True):
    """Grant: the client may act for (clinic clients) or read (ehr/app clients) this clinic."""

    __tablename__ = "client_clinic"

    client_pk: int = Field(foreign_key="client.id", primary_key=True, ondelete="CASCADE")
    clinic_pk: int = Field(foreign_key="clinic.id", primary_key=True, ondelete="CASCADE")


class AccessTokenRow(SQLModel, table=True):
    """Opaque bearer tokens, stored only as a hash so a database leak yields no usable token."""

    __tablename__ = "access_token"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    client_pk: int = Field(foreign_key="client.id", index=True, ondelete="CASCADE")
    #: the clinic the token is bound to; None = all clinics the client is granted
    clinic_pk: int | None = Field(default=None, foreign_key="clinic.id", ondelete="CASCADE")
    scope: str = Field(default="", max_length=2000)
    #: SMART launch context and user (later issues), kept as JSON
    context: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    issued_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False, index=True))
    revoked: bool = Field(default=False)


class AuthThrottleRow(SQLModel, table=True):
    """Failed /auth/token client authentications in the current window, per client id or client address.

    ``kind`` is ``client`` or ``address``; ``key_hash`` the SHA-256 of the id or address, so the key has a
    fixed length whatever a caller sends. The window starts with its first failure; rows whose window has
    ended mean nothing and are deleted.
    """

    __tablename__ = "auth_throttle"

    kind: str = Field(max_length=16, primary_key=True)
    key_hash: str = Field(max_length=64, primary_key=True)
    failures: int
    window_start: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False, index=True))


class AssertionJtiRow(SQLModel, table=True):
    """``jti`` values of client assertions already used (RFC 7523 §3, SMART Backend Services), per client,
    kept until the assertion expires so a replay is refused in every process. ``jti_hash`` is the SHA-256
    of the jti, so the key has a fixed length whatever a client sends."""

    __tablename__ = "assertion_jti"

    client_pk: int = Field(foreign_key="client.id", primary_key=True, ondelete="CASCADE")
    jti_hash: str = Field(max_length=64, primary_key=True)
    expires_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False, index=True))


class AuditEventRow(SQLModel, table=True):
    """One recorded AuditEvent (IHE BALP shape, stored as FHIR JSON bytes in ``content``), with the columns
    an admin searches by. Never holds a secret (no token, secret or assertion)."""

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_recorded", "recorded"),
        Index("ix_audit_event_client", "client_id", "recorded"),
        Index("ix_audit_event_patient", "patient_id", "recorded"),
        Index("ix_audit_event_action", "action", "recorded"),
    )

    id: int | None = Field(default=None, sa_column=Column(BIGINT_PK, primary_key=True, autoincrement=True))
    event_id: str = Field(max_length=64, unique=True)
    recorded: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    #: token, read, search, authentication-failure ...
    action: str = Field(max_length=32)
    #: FHIR AuditEvent.outcome: 0 success, 4 minor failure, 8 serious failure, 12 major failure
    outcome: str = Field(max_length=2)
    client_id: str | None = Field(default=None, max_length=255)
    clinic_pk: int | None = None
    patient_id: str | None = Field(default=None, max_length=64)
    resource_type: str | None = Field(default=None, max_length=64)
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class RecordRow(SQLModel, table=True):
    """A clinic record as the clinic sent it, addressed by (clinic, kind, external id)."""

    __tablename__ = "record"
    __table_args__ = (
        UniqueConstraint("clinic_pk", "kind", "external_id", name="uq_record_key"),
        Index("ix_record_patient", "clinic_pk", "patient_external_id"),
        Index("ix_record_session", "clinic_pk", "session_external_id"),
        Index("ix_record_practitioner", "clinic_pk", "practitioner_external_id"),
        Index("ix_record_dose", "clinic_pk", "dose_external_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    clinic_pk: int = Field(foreign_key="clinic.id", ondelete="CASCADE")
    kind: str = Field(max_length=32)
    external_id: str = Field(max_length=64)
    patient_external_id: str | None = Field(default=None, max_length=64)
    #: the records this one references, by the referenced kind (the delete check looks them up here, never
    #: in ``data``: JSON text is not queried)
    session_external_id: str | None = Field(default=None, max_length=64)
    practitioner_external_id: str | None = Field(default=None, max_length=64)
    dose_external_id: str | None = Field(default=None, max_length=64)
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    content_hash: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    deleted_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime(), nullable=True))


class ResourceRow(SQLModel, table=True):
    """The current version of a FHIR resource, its canonical JSON stored as bytes (served as is)."""

    __tablename__ = "resource"
    __table_args__ = (
        UniqueConstraint("resource_type", "resource_id", name="uq_resource_key"),
        Index("ix_resource_clinic_type", "clinic_pk", "resource_type", "last_updated"),
        Index("ix_resource_id", "resource_id"),
        #: Bulk Data export walks a clinic's resources of one type in primary-key order (keyset batches)
        Index("ix_resource_export", "clinic_pk", "resource_type", "id"),
    )

    id: int | None = Field(default=None, sa_column=Column(BIGINT_PK, primary_key=True, autoincrement=True))
    clinic_pk: int = Field(foreign_key="clinic.id", ondelete="CASCADE")
    resource_type: str = Field(max_length=64)
    resource_id: str = Field(max_length=64)
    version_id: int
    last_updated: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    content_hash: str = Field(max_length=64)
    #: the record this resource was mapped from (None for imported or server-side resources)
    record_pk: int | None = Field(default=None, foreign_key="record.id", index=True, ondelete="SET NULL")
    deleted: bool = Field(default=False)


class ResourceVersionRow(SQLModel, table=True):
    """Every version of every resource (history, vread); written with the current row."""

    __tablename__ = "resource_version"
    __table_args__ = (UniqueConstraint("resource_pk", "version_id", name="uq_resource_version"),)

    id: int | None = Field(default=None, sa_column=Column(BIGINT_PK, primary_key=True, autoincrement=True))
    resource_pk: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    version_id: int
    last_updated: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False, index=True))
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    deleted: bool = Field(default=False)


# --- search index: one row per indexed value, maintained with each resource version (gateway/store) ---


class SearchTokenRow(SQLModel, table=True):
    """token parameters (code, identifier, status, category ...): system|code."""

    __tablename__ = "search_token"
    __table_args__ = (Index("ix_search_token_lookup", "resource_type", "param", "code", "system"),)

    id: int | None = Field(default=None, sa_column=Column(BIGINT_PK, primary_key=True, autoincrement=True))
    resource_pk: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    resource_type: str = Field(max_length=64)
    param: str = Field(max_length=64)
    system: str | None = Field(default=None, max_length=255)
    code: str = Field(max_length=255)


class SearchReferenceRow(SQLModel, table=True):
    """reference parameters (patient, subject, encounter, target ...): the referenced Type/id."""

    __tablename__ = "search_reference"
    __table_args__ = (
        Index("ix_search_reference_lookup", "resource_type", "param", "target_type", "target_id"),
        #: references searched by a bare id (``subject=123``), which names no target type (migration 0009)
        Index("ix_search_reference_target", "resource_type", "param", "target_id"),
    )

    id: int | None = Field(default=None, sa_column=Column(BIGINT_PK, primary_key=True, autoincrement=True))
    resource_pk: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    resource_type: str = Field(max_length=64)
    param: str = Field(max_length=64)
    target_type: str = Field(max_length=64)
    target_id: str = Field(max_length=64)


class SearchDateRow(SQLModel, table=True):
    """date parameters as a closed UTC range [start, end] (a date or a period)."""

    __tablename__ = "search_date"
    __table_args__ = (Index("ix_search_date_lookup", "resource_type", "param", "start", "end"),)

    id: int | None = Field(default=None, sa_column=Column(BIGINT_PK, primary_key=True, autoincrement=True))
    resource_pk: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    resource_type: str = Field(max_length=64)
    param: str = Field(max_length=64)
    start: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    end: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


class SearchStringRow(SQLModel, table=True):
    """string parameters (name, family, given, address ...), normalized: lower case, accents removed."""

    __tablename__ = "search_string"
    __table_args__ = (Index("ix_search_string_lookup", "resource_type", "param", "value"),)

    id: int | None = Field(default=None, sa_column=Column(BIGINT_PK, primary_key=True, autoincrement=True))
    resource_pk: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    resource_type: str = Field(max_length=64)
    param: str = Field(max_length=64)
    value: str = Field(max_length=255)


class OutboxRow(SQLModel, table=True):
    """One delivery to do: a resource version for one EHR connection (DESIGN §3, §8).

    Written in the same transaction as the version; the sync worker claims rows with a lease.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("resource_pk", "version_id", "connection_pk", name="uq_outbox_delivery"),
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_group", "connection_pk", "patient_key", "status"),
    )

    id: int | None = Field(default=None, sa_column=Column(BIGINT_PK, primary_key=True, autoincrement=True))
    clinic_pk: int = Field(foreign_key="clinic.id", ondelete="CASCADE")
    connection_pk: int
    resource_pk: int = Field(sa_column=Column(BigInteger, nullable=False))
    version_id: int
    patient_key: str | None = Field(default=None, max_length=64)
    status: str = Field(default="pending", max_length=16)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = Field(default=None, sa_column=Column(UtcDateTime(), nullable=True))
    last_status_code: int | None = None
    last_outcome_code: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    #: the EHR's OperationOutcome of the last failed attempt (kept for dead letters), or a transport error
    outcome: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    delivered_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime(), nullable=True))


# --- EHR sync (migration 0007): connections, EHR ids per connection, per-key leases ---


class EhrConnectionRow(SQLModel, table=True):
    """A hospital EHR endpoint a clinic pushes to and imports from (DESIGN §8).

    The private key is never stored: ``private_key_file`` names a PEM file (or ``private_key_env`` an
    environment variable holding one). ``capabilities`` is what the last probe of ``/metadata`` and
    ``.well-known/smart-configuration`` found. ``failures``/``paused_until`` are the circuit breaker.
    """

    __tablename__ = "ehr_connection"
    __table_args__ = (UniqueConstraint("clinic_pk", "name", name="uq_ehr_connection_name"),)

    id: int | None = Field(default=None, primary_key=True)
    clinic_pk: int = Field(foreign_key="clinic.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=64)
    fhir_base: str = Field(max_length=500)
    client_id: str = Field(max_length=255)
    private_key_file: str | None = Field(default=None, max_length=500)
    private_key_env: str | None = Field(default=None, max_length=100)
    kid: str = Field(max_length=255)
    alg: str = Field(max_length=8)
    scope: str = Field(max_length=2000)
    #: comma-separated resource types pushed to the EHR
    push_types: str = Field(max_length=2000)
    token_url: str | None = Field(default=None, max_length=500)
    capabilities: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    probed_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime(), nullable=True))
    disabled: bool = Field(default=False)
    failures: int = Field(default=0)
    paused_until: datetime | None = Field(default=None, sa_column=Column(UtcDateTime(), nullable=True))
    #: backfill passes done (a new connection gets every resource the clinic has, twice checked)
    backfill_passes: int = Field(default=0)
    created_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


class SyncIdMapRow(SQLModel, table=True):
    """Our resource -> its id at the EHR of one connection, and the last of our versions it holds."""

    __tablename__ = "sync_id_map"

    connection_pk: int = Field(foreign_key="ehr_connection.id", primary_key=True, ondelete="CASCADE")
    resource_pk: int = Field(sa_column=Column(BigInteger, primary_key=True))
    ehr_id: str = Field(max_length=64)
    ehr_version: str | None = Field(default=None, max_length=64)
    version_sent: int
    updated_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


class SyncLeaseRow(SQLModel, table=True):
    """A lease on one delivery key of a connection (a patient's resources, or one shared resource).

    Whoever holds it is the only one creating those resources at the EHR, so search-then-create and
    conditional creates never race; a killed worker's lease runs out and another takes over.
    """

    __tablename__ = "sync_lease"

    connection_pk: int = Field(foreign_key="ehr_connection.id", primary_key=True, ondelete="CASCADE")
    key: str = Field(max_length=80, primary_key=True)
    owner: str = Field(max_length=64)
    until: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


# --- SMART App Launch (migration 0006): clinician users, authorization codes, refresh tokens, signing keys ---


class UserRow(SQLModel, table=True):
    """A clinician who signs in at /auth/login to authorize SMART apps; the password is a salted scrypt hash.

    ``fhir_user`` is the relative reference of the user's FHIR resource (``Practitioner/<id>``), the
    ``fhirUser`` claim of id_tokens; None when the user has none.
    """

    __tablename__ = "app_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True)
    password_hash: str = Field(max_length=255)
    display_name: str = Field(max_length=200)
    fhir_user: str | None = Field(default=None, max_length=200)
    disabled: bool = Field(default=False)
    created_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


class UserClinicRow(SQLModel, table=True):
    """The clinics a user belongs to (a user authorizes apps of these clinics only)."""

    __tablename__ = "app_user_clinic"

    user_pk: int = Field(foreign_key="app_user.id", primary_key=True, ondelete="CASCADE")
    clinic_pk: int = Field(foreign_key="clinic.id", primary_key=True, ondelete="CASCADE")


class AuthorizationCodeRow(SQLModel, table=True):
    """An authorization code (stored by hash) and the grant it stands for (RFC 6749 §4.1, PKCE RFC 7636).

    Single use: ``used_at`` is set by the exchange. Tokens issued under the grant are found through
    ``GrantTokenRow`` (access tokens) and ``RefreshTokenRow.code_pk``; ``revoked`` ends the whole grant
    (a reused code, a revoked refresh token).
    """

    __tablename__ = "authorization_code"

    id: int | None = Field(default=None, primary_key=True)
    code_hash: str = Field(max_length=64, unique=True)
    client_pk: int = Field(foreign_key="client.id", index=True, ondelete="CASCADE")
    user_pk: int = Field(foreign_key="app_user.id", index=True, ondelete="CASCADE")
    clinic_pk: int = Field(foreign_key="clinic.id", ondelete="CASCADE")
    redirect_uri: str = Field(max_length=2000)
    scope: str = Field(max_length=2000)
    code_challenge: str = Field(max_length=128)
    nonce: str | None = Field(default=None, max_length=255)
    patient_id: str | None = Field(default=None, max_length=64)
    #: EHR launch context beyond the patient: {"encounter": id, "fhirContext": [...]} (migration 0010)
    launch_context: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False, index=True))
    used_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime(), nullable=True))
    revoked: bool = Field(default=False)


class EhrLaunchRow(SQLModel, table=True):
    """An EHR launch minted by an operator (``kap-gateway launch create``, ``POST /admin/launches``): the
    opaque ``launch`` value (stored by hash) an app brings to /auth/authorize, bound to the app and its
    clinic, with the context it opens. Single use (``used_at``), short-lived."""

    __tablename__ = "ehr_launch"

    id: int | None = Field(default=None, primary_key=True)
    launch_hash: str = Field(max_length=64, unique=True)
    client_pk: int = Field(foreign_key="client.id", index=True, ondelete="CASCADE")
    clinic_pk: int = Field(foreign_key="clinic.id", ondelete="CASCADE")
    patient_id: str = Field(max_length=64)
    encounter_id: str | None = Field(default=None, max_length=64)
    #: further resources of the launch (SMART 2.2 ``fhirContext``): relative references ``Type/id``
    fhir_context: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    #: the clinician the launch is for (only this user may sign in to it); None = any user of the clinic
    user_pk: int | None = Field(default=None, foreign_key="app_user.id", ondelete="CASCADE")
    created_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False, index=True))
    used_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime(), nullable=True))


class GrantTokenRow(SQLModel, table=True):
    """An access token issued under an authorization grant (so the grant's end revokes it)."""

    __tablename__ = "grant_token"

    code_pk: int = Field(foreign_key="authorization_code.id", primary_key=True, ondelete="CASCADE")
    access_token_pk: int = Field(foreign_key="access_token.id", primary_key=True, ondelete="CASCADE")


class RefreshTokenRow(SQLModel, table=True):
    """A refresh token (stored by hash), rotated on use: ``replaced`` marks one that was exchanged."""

    __tablename__ = "refresh_token"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    code_pk: int = Field(foreign_key="authorization_code.id", index=True, ondelete="CASCADE")
    client_pk: int = Field(foreign_key="client.id", ondelete="CASCADE")
    scope: str = Field(max_length=2000)
    issued_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    replaced: bool = Field(default=False)
    revoked: bool = Field(default=False)


class SigningKeyRow(SQLModel, table=True):
    """The gateway's id_token signing keys (RS256). The private key is sealed (AES-GCM, key derived from
    KAPGW_TOKEN_SIGNING_SECRET); the newest unretired key signs, retired keys stay in /auth/jwks for a
    while so id_tokens they signed still verify."""

    __tablename__ = "signing_key"

    id: int | None = Field(default=None, primary_key=True)
    kid: str = Field(max_length=64, unique=True)
    alg: str = Field(max_length=16)
    public_jwk: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    sealed_private_key: str = Field(max_length=8000)
    created_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    retired_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime(), nullable=True))


# --- Bulk Data export (migration 0008): ad-hoc groups, export jobs, their files ---


class BulkGroupRow(SQLModel, table=True):
    """An ad-hoc Group of one clinic's patients (``kap-gateway groups create``), exportable with
    ``Group/{group_id}/$export``. Each clinic's own Group (all its patients, id = the clinic slug) has no row."""

    __tablename__ = "bulk_group"

    id: int | None = Field(default=None, primary_key=True)
    group_id: str = Field(max_length=64, unique=True)
    clinic_pk: int = Field(foreign_key="clinic.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=200)
    created_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))


class BulkGroupMemberRow(SQLModel, table=True):
    """A member of an ad-hoc group: the FHIR id of a Patient of the group's clinic."""

    __tablename__ = "bulk_group_member"

    group_pk: int = Field(foreign_key="bulk_group.id", primary_key=True, ondelete="CASCADE")
    patient_id: str = Field(max_length=64, primary_key=True)


class BulkJobRow(SQLModel, table=True):
    """A Bulk Data ``$export`` job (https://hl7.org/fhir/uv/bulkdata/export.html).

    ``status``: queued -> running -> completed | failed; cancelled by DELETE. ``parameters`` holds what
    the kick-off fixed (types, _since, _typeFilter clauses, the client's clinics and scopes at kick-off, the
    group). A worker owns a running job while ``lease_until`` lies ahead; a lapsed lease lets another
    worker resume it after its last complete file.
    """

    __tablename__ = "bulk_job"
    __table_args__ = (Index("ix_bulk_job_due", "status", "lease_until"),)

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(max_length=64, unique=True)
    client_pk: int = Field(foreign_key="client.id", index=True, ondelete="CASCADE")
    status: str = Field(default="queued", max_length=16)
    level: str = Field(max_length=16)
    request_url: str = Field(max_length=4000)
    parameters: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    transaction_time: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    created_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    finished_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime(), nullable=True))
    expires_at: datetime | None = Field(
        default=None, sa_column=Column(UtcDateTime(), nullable=True, index=True)
    )
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = Field(default=None, sa_column=Column(UtcDateTime(), nullable=True))
    attempts: int = Field(default=0)
    resources_written: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    progress: str = Field(default="", max_length=100)
    failure: str | None = Field(default=None, max_length=500)


class BulkFileRow(SQLModel, table=True):
    """A complete ndjson file of a job (``kind`` output or error), in job order (``seq``).

    ``clinic_pk``, ``phase`` and ``last_pk`` say where the file ended, so a resumed job continues after it.
    """

    __tablename__ = "bulk_file"

    job_pk: int = Field(foreign_key="bulk_job.id", primary_key=True, ondelete="CASCADE")
    seq: int = Field(primary_key=True)
    kind: str = Field(default="output", max_length=8)
    resource_type: str = Field(max_length=64)
    name: str = Field(max_length=128)
    count: int
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    clinic_pk: int = Field(default=0)
    phase: int = Field(default=0)
    last_pk: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
