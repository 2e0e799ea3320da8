"""Clinic records use cases: upsert, read, list, delete and all-or-nothing batches (DESIGN §3, §4).

Each use case runs in one transaction and commits once: the record row and (through
``gateway.store``) its FHIR resources are written together, or nothing is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

import orjson
from pydantic import ValidationError

from gateway.core.config import Settings
from gateway.core.errors import (
    ConflictError,
    NotFoundError,
    RecordValidationError,
    field_error,
    pydantic_errors,
)
from gateway.db.engine import Session, WriteConflictError
from gateway.db.repositories import records as record_repo
from gateway.db.tables import RecordRow, utcnow
from gateway.store import records as record_store
from gateway.store import versions
from mappings.records import ALL_KINDS, RECORD_KINDS, DoseRecord, RecordModel, SessionKind

_T = TypeVar("_T")


class Outcome(StrEnum):
    created = "created"
    updated = "updated"
    unchanged = "unchanged"


@dataclass(frozen=True)
class ClinicScope:
    """The clinic a call acts for (from the bearer token)."""

    pk: int
    slug: str
    name: str


@dataclass(frozen=True)
class WriteResult:
    outcome: Outcome
    row: RecordRow


def canonical_json(model: RecordModel) -> tuple[dict[str, Any], str]:
    """The record as stored (no nulls, sorted keys) and its SHA-256, for no-op detection."""
    data = model.model_dump(mode="json", exclude_none=True)
    digest = hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return data, digest


def parse_record(
    kind: str, body: Any, *, now: datetime, loc: tuple[str | int, ...] = ("body",)
) -> RecordModel:
    try:
        model = RECORD_KINDS[kind].model_validate(body)
    except ValidationError as error:
        raise RecordValidationError(pydantic_errors(error.errors(), prefix=loc)) from None
    check_clock(model, now=now, loc=loc)
    return model


def check_clock(model: RecordModel, *, now: datetime, loc: tuple[str | int, ...] = ("body",)) -> None:
    """The record's rules that need the current time (``mappings`` has no clock, so they are applied here,
    with the gateway's clock, before any transaction): no timestamp more than 5 years ahead, no birth date in
    the future."""
    errors = [field_error([*loc, e.field], e.message, e.type) for e in model.clock_errors(now)]
    if errors:
        raise RecordValidationError(errors)


@dataclass
class _References:
    """Looks up referenced records once per use case (a batch may reference its own earlier entries)."""

    session: Session
    clinic: ClinicScope
    cache: dict[tuple[str, str], RecordRow | None] = field(default_factory=dict)

    def get(self, kind: str, external_id: str) -> RecordRow | None:
        key = (kind, external_id)
        if key not in self.cache:
            found = record_repo.live_records(
                self.session, clinic_pk=self.clinic.pk, kind=kind, external_ids=[external_id]
            )
            self.cache[key] = found.get(external_id)
        return self.cache[key]

    def remember(self, row: RecordRow) -> None:
        self.cache[(row.kind, row.external_id)] = None if row.deleted_at else row


def _check_references(
    model: RecordModel, refs: _References, settings: Settings, loc: tuple[str | int, ...]
) -> tuple[str | None, list[dict[str, Any]]]:
    """Checks what needs the database or settings; returns the record's patient and the errors."""
    errors: list[dict[str, Any]] = []
    found: dict[str, RecordRow] = {}
    for name, target_kind in model.references.items():
        value = getattr(model, name)
        if value is None:
            continue
        row = refs.get(target_kind, value)
        if row is None:
            errors.append(
                field_error([*loc, name], f"no {target_kind} record with id {value!r}", "reference_missing")
            )
        else:
            found[name] = row
    patient = getattr(model, model.patient_field) if model.patient_field else None
    if isinstance(model, DoseRecord):
        if model.dose_mg > settings.max_dose_mg:
            errors.append(
                field_error(
                    [*loc, "dose_mg"],
                    f"dose_mg exceeds the configured ceiling of {settings.max_dose_mg:g} mg",
                    "dose_ceiling",
                )
            )
        if "session_id" in found:
            session_row = found["session_id"]
            patient = session_row.patient_external_id
            if session_row.data.get("kind") != SessionKind.dosing:
                errors.append(
                    field_error([*loc, "session_id"], "doses belong to dosing sessions", "session_kind")
                )
    for name, row in found.items():  # everything a record links to belongs to the same patient
        if patient is not None and row.kind != "practitioners" and row.patient_external_id != patient:
            errors.append(field_error([*loc, name], f"{name} belongs to another patient", "patient_mismatch"))
    return patient, errors


def _write(
    session: Session,
    settings: Settings,
    refs: _References,
    *,
    kind: str,
    external_id: str,
    model: RecordModel,
    loc: tuple[str | int, ...],
    now: datetime,
    resources_later: list[record_store.RecordWrite] | None = None,
) -> tuple[WriteResult | None, list[dict]]:
    """Checks and upserts one record row; its FHIR resources are written now, or appended to
    ``resources_later`` for the caller to write with others in one go (batches)."""
    patient, errors = _check_references(model, refs, settings, loc)
    if errors:
        return None, errors
    if kind == "patients":
        patient = external_id
    references = _reference_columns(model)
    data, digest = canonical_json(model)
    row = record_repo.get_record(
        session, clinic_pk=refs.clinic.pk, kind=kind, external_id=external_id, for_update=True
    )
    if row is not None and row.deleted_at is None and row.content_hash == digest:
        return WriteResult(Outcome.unchanged, row), []
    if row is None:
        row = RecordRow(
            clinic_pk=refs.clinic.pk,
            kind=kind,
            external_id=external_id,
            data=data,
            content_hash=digest,
            created_at=now,
            updated_at=now,
        )
        outcome = Outcome.created
    else:
        row.data, row.content_hash, row.updated_at, row.deleted_at = data, digest, now, None
        outcome = Outcome.updated
    row.patient_external_id = patient
    for column, value in references.items():
        setattr(row, column, value)
    if outcome is Outcome.created:
        record_repo.add_record(session, row=row)
    else:
        session.add(row)
    session.flush()
    refs.remember(row)
    pending = record_store.RecordWrite(row, model, "CREATE" if outcome is Outcome.created else "UPDATE")
    if resources_later is not None:
        resources_later.append(pending)
    else:
        record_store.write_records_resources(
            session, clinic=_identity(refs.clinic, settings), records=[pending], now=now, lookup=refs.get
        )
    return WriteResult(outcome, row), []


def _reference_columns(model: RecordModel) -> dict[str, str | None]:
    """The record's references by RecordRow column (the patient column is the record's patient, set apart)."""
    columns: dict[str, str | None] = {
        column: None for kind, column in record_repo.REFERENCE_COLUMNS.items() if kind != "patients"
    }
    for name, target_kind in model.references.items():
        if target_kind != "patients":
            columns[record_repo.REFERENCE_COLUMNS[target_kind]] = getattr(model, name)
    return columns


def _identity(clinic: ClinicScope, settings: Settings) -> record_store.ClinicIdentity:
    return record_store.ClinicIdentity(clinic.pk, clinic.slug, clinic.name, settings.identifier_base)


def put_record(
    session: Session,
    settings: Settings,
    *,
    clinic: ClinicScope,
    kind: str,
    external_id: str,
    model: RecordModel,
) -> WriteResult:
    check_clock(model, now=utcnow())

    def attempt() -> WriteResult:
        refs = _References(session, clinic)
        result, errors = _write(
            session,
            settings,
            refs,
            kind=kind,
            external_id=external_id,
            model=model,
            loc=("body",),
            now=utcnow(),
        )
        if errors:
            session.rollback()
            raise RecordValidationError(errors)
        assert result is not None
        # commit even when unchanged: the use case ends its transaction (and SQLite's write lock or
        # PostgreSQL's row lock) here, not when the session closes after the response is serialized
        session.commit()
        return result

    return _once_more_on_conflict(session, attempt)


def _once_more_on_conflict(session: Session, attempt: Callable[[], _T]) -> _T:
    """Runs a write use case; if a concurrent writer created the same record first (unique key conflict),
    rolls back and runs it once more, when it finds the record and updates it or sees it unchanged."""
    try:
        return attempt()
    except WriteConflictError:
        session.rollback()
        return attempt()


def get_record(session: Session, *, clinic: ClinicScope, kind: str, external_id: str) -> RecordRow:
    row = record_repo.get_record(session, clinic_pk=clinic.pk, kind=kind, external_id=external_id)
    if row is None or row.deleted_at is not None:
        raise NotFoundError(f"no {kind} record with id {external_id!r}")
    return row


def record_resources(
    session: Session, *, clinic: ClinicScope, kind: str, external_id: str
) -> list[versions.CurrentRow]:
    row = get_record(session, clinic=clinic, kind=kind, external_id=external_id)
    assert row.id is not None
    return [r for r in versions.current_for_record(session, record_pk=row.id) if not r.deleted]


def list_records(
    session: Session, *, clinic: ClinicScope, kind: str, after: str | None, limit: int, patient_id: str | None
) -> list[RecordRow]:
    return record_repo.list_records(
        session, clinic_pk=clinic.pk, kind=kind, after=after, limit=limit, patient_id=patient_id
    )


def _dependents(kind: str) -> list[str]:
    """The record kinds that may reference a ``kind`` record."""
    return [other for other, model in ALL_KINDS.items() if kind in model.references.values()]


def delete_record(
    session: Session, settings: Settings, *, clinic: ClinicScope, kind: str, external_id: str
) -> None:
    row = get_record(session, clinic=clinic, kind=kind, external_id=external_id)
    kinds = _dependents(kind)
    if kinds:
        blocking = record_repo.referencing_records(
            session, clinic_pk=clinic.pk, target_kind=kind, external_id=external_id, kinds=kinds
        )
        if blocking:
            names = ", ".join(f"{r.kind}/{r.external_id}" for r in blocking)
            raise ConflictError(f"{kind}/{external_id} is referenced by {names}; delete those first")
    now = utcnow()
    row.deleted_at = row.updated_at = now
    session.add(row)
    session.flush()
    record_store.delete_record_resources(session, clinic=_identity(clinic, settings), row=row, now=now)
    session.commit()


@dataclass(frozen=True)
class BatchEntry:
    kind: str
    id: str
    record: Mapping[str, Any]


def run_batch(
    session: Session, settings: Settings, *, clinic: ClinicScope, entries: Iterable[BatchEntry]
) -> list[WriteResult]:
    """All-or-nothing: every entry is checked; any error rolls the whole batch back (422 lists them all).

    Records are validated before the transaction begins; the transaction only checks references and writes."""
    parsed, errors = _parse_batch(list(entries))
    return _once_more_on_conflict(
        session, lambda: _run_batch(session, settings, clinic=clinic, parsed=parsed, errors=errors)
    )


def _parse_batch(
    entries: list[BatchEntry],
) -> tuple[list[tuple[int, BatchEntry, RecordModel]], list[dict[str, Any]]]:
    parsed: list[tuple[int, BatchEntry, RecordModel]] = []
    errors: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    now = utcnow()
    for index, entry in enumerate(entries):
        if (entry.kind, entry.id) in seen:
            errors.append(
                field_error(["body", index, "id"], "the same record appears twice in the batch", "duplicate")
            )
            continue
        seen.add((entry.kind, entry.id))
        try:
            parsed.append(
                (index, entry, parse_record(entry.kind, entry.record, now=now, loc=("body", index, "record")))
            )
        except RecordValidationError as error:
            errors.extend(error.detail)
    return parsed, errors


def _run_batch(
    session: Session,
    settings: Settings,
    *,
    clinic: ClinicScope,
    parsed: list[tuple[int, BatchEntry, RecordModel]],
    errors: list[dict[str, Any]],
) -> list[WriteResult]:
    refs = _References(session, clinic)
    results: list[WriteResult] = []
    errors = list(errors)
    now = utcnow()
    pending: list[record_store.RecordWrite] = []
    for index, entry, model in parsed:
        result, entry_errors = _write(
            session,
            settings,
            refs,
            kind=entry.kind,
            external_id=entry.id,
            model=model,
            loc=("body", index, "record"),
            now=now,
            resources_later=pending,
        )
        errors.extend(entry_errors)
        if result is not None:
            results.append(result)
    if errors:
        session.rollback()
        raise RecordValidationError(sorted(errors, key=lambda e: e["loc"][1]))  # in entry order
    record_store.write_records_resources(
        session, clinic=_identity(clinic, settings), records=pending, now=now, lookup=refs.get
    )
    session.commit()
    return results
