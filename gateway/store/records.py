"""Writes the FHIR resources a clinic record maps to, in the record's transaction (filled in by issue 3)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from gateway.db.tables import RecordRow
from mappings.records import RecordModel


def write_record_resources(
    session: Session, *, clinic_pk: int, clinic_slug: str, row: RecordRow, model: RecordModel, now: datetime
) -> None:
    return None


def delete_record_resources(session: Session, *, clinic_pk: int, row: RecordRow, now: datetime) -> None:
    return None
