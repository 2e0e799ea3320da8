"""Clinic records: one table for every kind, keyed by (clinic, kind, external id)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session, col, select

from gateway.db.tables import RecordRow


def get_record(
    session: Session, *, clinic_pk: int, kind: str, external_id: str, for_update: bool = False
) -> RecordRow | None:
    """The record by its key; ``for_update`` locks the row until commit (PostgreSQL; SQLite's writers are
    serialized by BEGIN IMMEDIATE already), so concurrent writes of one record queue instead of racing."""
    query = select(RecordRow).where(
        RecordRow.clinic_pk == clinic_pk, RecordRow.kind == kind, RecordRow.external_id == external_id
    )
    return session.exec(query.with_for_update() if for_update else query).first()


def live_records(
    session: Session, *, clinic_pk: int, kind: str, external_ids: Iterable[str]
) -> dict[str, RecordRow]:
    """The records of ``kind`` that exist and are not deleted, by external id."""
    ids = sorted(set(external_ids))
    if not ids:
        return {}
    rows = session.exec(
        select(RecordRow).where(
            RecordRow.clinic_pk == clinic_pk,
            RecordRow.kind == kind,
            col(RecordRow.external_id).in_(ids),
            col(RecordRow.deleted_at).is_(None),
        )
    )
    return {row.external_id: row for row in rows}


def add_record(session: Session, *, row: RecordRow) -> RecordRow:
    session.add(row)
    session.flush()
    return row


#: referenced record kind -> the RecordRow column naming the referenced record (a record references at most
#: one record of each kind; tests/gateway/clinic_api/test_bad_input.py checks every model against this)
REFERENCE_COLUMNS = {
    "patients": "patient_external_id",
    "sessions": "session_external_id",
    "practitioners": "practitioner_external_id",
    "doses": "dose_external_id",
}


def referencing_records(
    session: Session,
    *,
    clinic_pk: int,
    target_kind: str,
    external_id: str,
    kinds: Iterable[str],
    limit: int = 5,
) -> list[RecordRow]:
    """Live records of ``kinds`` that reference the ``target_kind`` record ``external_id`` (for delete
    checks): an index lookup on the reference column, never a look into the records' JSON."""
    column = getattr(RecordRow, REFERENCE_COLUMNS[target_kind])
    rows = session.exec(
        select(RecordRow)
        .where(
            RecordRow.clinic_pk == clinic_pk,
            column == external_id,
            col(RecordRow.kind).in_(list(kinds)),
            col(RecordRow.deleted_at).is_(None),
        )
        .order_by(col(RecordRow.kind), col(RecordRow.external_id))
        .limit(limit)
    )
    return list(rows)


def list_records(
    session: Session,
    *,
    clinic_pk: int,
    kind: str,
    after: str | None,
    limit: int,
    patient_id: str | None = None,
) -> list[RecordRow]:
    query = select(RecordRow).where(
        RecordRow.clinic_pk == clinic_pk, RecordRow.kind == kind, col(RecordRow.deleted_at).is_(None)
    )
    if patient_id is not None:
        query = query.where(RecordRow.patient_external_id == patient_id)
    if after is not None:
        query = query.where(RecordRow.external_id > after)
    return list(session.exec(query.order_by(col(RecordRow.external_id)).limit(limit)))
