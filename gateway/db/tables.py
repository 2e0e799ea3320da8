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
        if value is None:
            return None
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


class RecordRow(SQLModel, table=True):
    """A clinic record as the clinic sent it, addressed by (clinic, kind, external id)."""

    __tablename__ = "record"
    __table_args__ = (
        UniqueConstraint("clinic_pk", "kind", "external_id", name="uq_record_key"),
        Index("ix_record_patient", "clinic_pk", "patient_external_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    clinic_pk: int = Field(foreign_key="clinic.id", ondelete="CASCADE")
    kind: str = Field(max_length=32)
    external_id: str = Field(max_length=64)
    patient_external_id: str | None = Field(default=None, max_length=64)
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
