"""Bulk Data export: groups, jobs (claimed with leases), files, and the keyset walk over the resource store.

The export walk reads ``resource`` rows of one type of the granted clinics in primary-key order, a batch
at a time (``ix_resource_export``); Patient-compartment membership, ``_typeFilter`` clauses and scope
constraints are ``EXISTS`` lookups in the search index, so no JSON is parsed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, false, func, literal, select, true, update
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col
from sqlmodel import select as select_rows

from gateway.db.repositories.fhir_search import access_filter
from gateway.db.repositories.leases import Leased
from gateway.db.tables import (
    BulkFileRow,
    BulkGroupMemberRow,
    BulkGroupRow,
    BulkJobRow,
    ResourceRow,
    ResourceVersionRow,
    SearchReferenceRow,
    SearchTokenRow,
)
from gateway.store.search_query import Conjunction

RESOURCE = ResourceRow.__table__  # type: ignore[attr-defined]
VERSION = ResourceVersionRow.__table__  # type: ignore[attr-defined]
REFERENCE = SearchReferenceRow.__table__  # type: ignore[attr-defined]
TOKEN = SearchTokenRow.__table__  # type: ignore[attr-defined]
GROUP = BulkGroupRow.__table__  # type: ignore[attr-defined]
MEMBER = BulkGroupMemberRow.__table__  # type: ignore[attr-defined]
JOB = BulkJobRow.__table__  # type: ignore[attr-defined]
FILE = BulkFileRow.__table__  # type: ignore[attr-defined]

JOB_LEASE = Leased(JOB)

ACTIVE = ("queued", "running")


# --- groups ---


def get_group(session: Session, *, group_id: str) -> BulkGroupRow | None:
    return session.exec(select_rows(BulkGroupRow).where(BulkGroupRow.group_id == group_id)).first()


def list_groups(session: Session, *, clinic_pk: int | None = None) -> list[BulkGroupRow]:
    query = select_rows(BulkGroupRow).order_by(col(BulkGroupRow.clinic_pk), col(BulkGroupRow.group_id))
    if clinic_pk is not None:
        query = query.where(BulkGroupRow.clinic_pk == clinic_pk)
    return list(session.exec(query))


def add_group(session: Session, *, group: BulkGroupRow, patient_ids: Sequence[str]) -> BulkGroupRow:
    session.add(group)
    session.flush()
    if patient_ids:
        session.connection().execute(
            MEMBER.insert(), [{"group_pk": group.id, "patient_id": pid} for pid in dict.fromkeys(patient_ids)]
        )
    return group


def delete_group(session: Session, *, group_pk: int) -> None:
    session.connection().execute(delete(MEMBER).where(MEMBER.c.group_pk == group_pk))
    session.connection().execute(delete(GROUP).where(GROUP.c.id == group_pk))


def count_members(session: Session, *, group_pk: int) -> int:
    return int(
        session.connection().execute(select(func.count()).where(MEMBER.c.group_pk == group_pk)).scalar_one()
    )


def existing_patient_ids(session: Session, *, clinic_pk: int, patient_ids: Sequence[str]) -> set[str]:
    """Which of ``patient_ids`` are current, non-deleted Patients of the clinic."""
    found: set[str] = set()
    ids = list(dict.fromkeys(patient_ids))
    for start in range(0, len(ids), 500):
        rows = session.connection().execute(
            select(RESOURCE.c.resource_id).where(
                RESOURCE.c.resource_type == "Patient",
                RESOURCE.c.resource_id.in_(ids[start : start + 500]),
                RESOURCE.c.clinic_pk == clinic_pk,
                RESOURCE.c.deleted == false(),
            )
        )
        found.update(r.resource_id for r in rows)
    return found


def count_patients(session: Session, *, clinic_pks: Sequence[int]) -> int:
    return int(
        session.connection()
        .execute(
            select(func.count()).where(
                RESOURCE.c.resource_type == "Patient",
                RESOURCE.c.clinic_pk.in_(list(clinic_pks)),
                RESOURCE.c.deleted == false(),
            )
        )
        .scalar_one()
    )


def patient_ids_page(
    session: Session, *, clinic_pk: int, group_pk: int | None, after: str, limit: int
) -> list[str]:
    """Member Patient ids in id order (an ad-hoc group's members, or the clinic's patients)."""
    if group_pk is not None:
        query = select(MEMBER.c.patient_id.label("pid")).where(MEMBER.c.group_pk == group_pk)
        column = MEMBER.c.patient_id
    else:
        query = select(RESOURCE.c.resource_id.label("pid")).where(
            RESOURCE.c.clinic_pk == clinic_pk,
            RESOURCE.c.resource_type == "Patient",
            RESOURCE.c.deleted == false(),
        )
        column = RESOURCE.c.resource_id
    rows = session.connection().execute(query.where(column > after).order_by(column).limit(limit))
    return [r.pid for r in rows]


# --- jobs ---


def add_job(session: Session, *, job: BulkJobRow) -> BulkJobRow:
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, *, job_id: str) -> BulkJobRow | None:
    return session.exec(select_rows(BulkJobRow).where(BulkJobRow.job_id == job_id)).first()


def get_job_by_pk(session: Session, *, job_pk: int) -> BulkJobRow | None:
    return session.get(BulkJobRow, job_pk)


def count_active_jobs(session: Session, *, client_pk: int) -> int:
    return int(
        session.connection()
        .execute(select(func.count()).where(JOB.c.client_pk == client_pk, JOB.c.status.in_(ACTIVE)))
        .scalar_one()
    )


def claim_job(session: Session, *, owner: str, now: datetime, lease_until: datetime) -> int | None:
    """Takes the oldest job that is queued, or running under a lapsed lease (or this owner's own), and
    leases it to ``owner`` (``leases.Leased.take``: of two workers racing for a job, one wins)."""
    candidates = session.connection().execute(
        select(JOB.c.id, JOB.c.lease_owner)
        .where(JOB.c.status.in_(ACTIVE), JOB_LEASE.free(now=now, owner=owner))
        .order_by(JOB.c.id)
        .limit(5)
    )
    for candidate in list(candidates):
        taken = JOB_LEASE.take(
            session,
            JOB.c.id == candidate.id,
            JOB.c.status.in_(ACTIVE),
            owner=owner,
            until=lease_until,
            now=now,
            values={
                "status": "running",
                "attempts": JOB.c.attempts + (0 if candidate.lease_owner == owner else 1),
            },
        )
        if taken == 1:
            return int(candidate.id)
    return None


def renew_lease(
    session: Session,
    *,
    job_pk: int,
    owner: str,
    lease_until: datetime,
    progress: str | None = None,
    resources_written: int | None = None,
) -> bool:
    """Extends the lease while ``owner`` still holds the running job (False: cancelled or taken over)."""
    values: dict[str, Any] = {}
    if progress is not None:
        values["progress"] = progress[:100]
    if resources_written is not None:
        values["resources_written"] = resources_written
    held = JOB_LEASE.renew(
        session, JOB.c.id == job_pk, JOB.c.status == "running", owner=owner, until=lease_until, values=values
    )
    return held == 1


def finish_job(
    session: Session,
    *,
    job_pk: int,
    owner: str,
    status: str,
    now: datetime,
    expires_at: datetime,
    progress: str,
    failure: str | None = None,
) -> bool:
    result = session.connection().execute(
        update(JOB)
        .where(JOB.c.id == job_pk, JOB.c.lease_owner == owner, JOB.c.status == "running")
        .values(
            status=status,
            finished_at=now,
            expires_at=expires_at,
            lease_owner=None,
            lease_until=None,
            progress=progress[:100],
            failure=failure[:500] if failure else None,
        )
    )
    return bool(result.rowcount == 1)


def cancel_job(session: Session, *, job_pk: int, now: datetime) -> None:
    """Marks the job cancelled; a worker still writing it stops at its next lease renewal."""
    session.connection().execute(
        update(JOB).where(JOB.c.id == job_pk).values(status="cancelled", finished_at=now, expires_at=now)
    )


def release_lease(session: Session, *, job_pk: int, owner: str) -> None:
    JOB_LEASE.release(session, JOB.c.id == job_pk, owner=owner)


def expired_jobs(session: Session, *, now: datetime, limit: int = 50) -> list[tuple[int, str]]:
    """(pk, job id) of finished jobs past their expiry whose lease (if any) has lapsed."""
    rows = session.connection().execute(
        select(JOB.c.id, JOB.c.job_id)
        .where(
            JOB.c.status.not_in(ACTIVE),
            JOB.c.expires_at < now,
            JOB_LEASE.free(now=now),
        )
        .order_by(JOB.c.id)
        .limit(limit)
    )
    return [(r.id, r.job_id) for r in rows]


def delete_job(session: Session, *, job_pk: int) -> None:
    session.connection().execute(delete(FILE).where(FILE.c.job_pk == job_pk))
    session.connection().execute(delete(JOB).where(JOB.c.id == job_pk))


# --- files ---


def files_of(session: Session, *, job_pk: int) -> list[BulkFileRow]:
    query = select_rows(BulkFileRow).where(BulkFileRow.job_pk == job_pk).order_by(col(BulkFileRow.seq))
    return list(session.exec(query))


def get_file(session: Session, *, job_pk: int, name: str) -> BulkFileRow | None:
    query = select_rows(BulkFileRow).where(BulkFileRow.job_pk == job_pk, BulkFileRow.name == name)
    return session.exec(query).first()


def last_file(session: Session, *, job_pk: int) -> BulkFileRow | None:
    query = select_rows(BulkFileRow).where(BulkFileRow.job_pk == job_pk).order_by(col(BulkFileRow.seq).desc())
    return session.exec(query.limit(1)).first()


def add_file(session: Session, *, row: BulkFileRow) -> None:
    session.connection().execute(FILE.insert(), [row.model_dump()])


# --- the export walk ---


@dataclass(frozen=True)
class Compartment:
    """Limits a walk to Patient compartments: of an ad-hoc group's members, or of every patient of the
    walked clinics (``group_pk`` None). A patient-context token's own limit comes with its access rule."""

    params: tuple[str, ...]
    group_pk: int | None = None


@dataclass(frozen=True)
class Walk:
    """What one resource type's walk selects."""

    clinic_pks: tuple[int, ...]
    resource_type: str
    transaction_time: datetime
    since: datetime | None = None
    compartment: Compartment | None = None
    #: the token's access rule for the type (``FhirAccess.rule``): OR of AND-ed clauses, ``[()]`` = all
    access: tuple[Conjunction, ...] = ((),)
    #: ``_typeFilter`` queries of the type, OR-ed; None = no filter
    filters: tuple[Conjunction, ...] | None = None


def export_batch(
    session: Session, *, walk: Walk, phase: int, after_pk: int, limit: int
) -> list[tuple[int, bytes]]:
    """The next ``limit`` resources of the walk after ``after_pk``, as (pk, stored JSON bytes).

    Phase 0: current, non-deleted rows last changed at or before the transaction time. Phase 1: rows
    changed after it, as the version they had at the transaction time (when that version was live), so
    the export is the store as of ``transactionTime``.
    """
    conditions = [
        RESOURCE.c.clinic_pk.in_(list(walk.clinic_pks)),
        RESOURCE.c.resource_type == walk.resource_type,
        RESOURCE.c.id > after_pk,
        *_selection(walk),
    ]
    connection = session.connection()
    if phase == 0:
        conditions += [RESOURCE.c.deleted == false(), RESOURCE.c.last_updated <= walk.transaction_time]
        if walk.since is not None:
            conditions.append(RESOURCE.c.last_updated > walk.since)
        query = select(RESOURCE.c.id, RESOURCE.c.content).where(*conditions)
        rows = connection.execute(query.order_by(RESOURCE.c.id).limit(limit))
        return [(r.id, bytes(r.content)) for r in rows]
    conditions.append(RESOURCE.c.last_updated > walk.transaction_time)
    earlier = VERSION.alias("earlier")
    at_time = (
        select(func.max(earlier.c.version_id))
        .where(earlier.c.resource_pk == RESOURCE.c.id, earlier.c.last_updated <= walk.transaction_time)
        .correlate(RESOURCE)
        .scalar_subquery()
    )
    version_conditions = [VERSION.c.version_id == at_time, VERSION.c.deleted == false()]
    if walk.since is not None:
        version_conditions.append(VERSION.c.last_updated > walk.since)
    query = (
        select(RESOURCE.c.id, VERSION.c.content)
        .join(VERSION, VERSION.c.resource_pk == RESOURCE.c.id)
        .where(*conditions, *version_conditions)
    )
    rows = connection.execute(query.order_by(RESOURCE.c.id).limit(limit))
    return [(r.id, bytes(r.content)) for r in rows]


def _selection(walk: Walk) -> list[ColumnElement[bool]]:
    out = [access_filter(walk.resource_type, walk.access)]
    if walk.filters is not None:
        out.append(access_filter(walk.resource_type, walk.filters))
    if walk.compartment is not None:
        out.append(_in_compartment(walk.resource_type, walk.compartment))
    return out


def _in_compartment(resource_type: str, compartment: Compartment) -> ColumnElement[bool]:
    if resource_type == "Patient":
        if compartment.group_pk is not None:
            return RESOURCE.c.resource_id.in_(
                select(MEMBER.c.patient_id).where(MEMBER.c.group_pk == compartment.group_pk)
            )
        return true()
    if not compartment.params:
        return false()
    match = [
        REFERENCE.c.resource_pk == RESOURCE.c.id,
        REFERENCE.c.resource_type == resource_type,
        REFERENCE.c.param.in_(list(compartment.params)),
        REFERENCE.c.target_type == "Patient",
    ]
    if compartment.group_pk is not None:
        match.append(
            REFERENCE.c.target_id.in_(
                select(MEMBER.c.patient_id).where(MEMBER.c.group_pk == compartment.group_pk)
            )
        )
    return exists(select(literal(1)).where(*match))
