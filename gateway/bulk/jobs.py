"""Bulk Data export jobs as the API sees them: kick-off, status (manifest), cancel, file lookup.

https://hl7.org/fhir/uv/bulkdata/export.html. The kick-off only records the job (the client's clinics
and scopes at that moment, the parameters, the transaction time); the background worker
(``gateway.bulk.runner``) writes the files. Only the client that started a job sees it: to any other
client its status and files do not exist (404).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.auth.service import Principal
from gateway.bulk.compartment import COMPARTMENT_TYPES, EXPORTABLE_TYPES
from gateway.bulk.kickoff import KickoffRequest
from gateway.core.config import Settings
from gateway.core.errors import FhirError, bad_request, forbidden, not_found, too_many_requests
from gateway.db.engine import Session
from gateway.db.repositories import bulk as repo
from gateway.db.repositories import clinics as clinic_repo
from gateway.db.tables import BulkJobRow
from gateway.fhir_api.access import FhirAccess

#: seconds a client should wait between status polls (Bulk Data: integer Retry-After)
RETRY_AFTER_SECONDS = 2


def status_url(settings: Settings, job_id: str) -> str:
    return f"{settings.fhir_base_url}/bulk-status/{job_id}"


def file_url(settings: Settings, job_id: str, name: str) -> str:
    return f"{settings.fhir_base_url}/bulk-files/{job_id}/{name}"


def job_dir(settings: Settings, job_id: str) -> Path:
    return settings.export_dir / job_id


def kickoff(
    session: Session, settings: Settings, *, principal: Principal, request: KickoffRequest, request_url: str
) -> str:
    """Records the export job; returns its absolute status URL (the kick-off's ``Content-Location``)."""
    access = FhirAccess.from_principal(principal)
    clinic_pks, group = _target(session, access, request)
    ignored = list(request.ignored)
    types = _types(access, request, ignored)
    patients = _patients(session, request, clinic_pks, group, ignored)
    if repo.count_active_jobs(session, client_pk=principal.client_pk) >= settings.export_max_active_jobs:
        raise too_many_requests(RETRY_AFTER_SECONDS * 5)
    now = datetime.now(UTC)
    job = repo.add_job(
        session,
        job=BulkJobRow(
            job_id=uuid.uuid4().hex,
            client_pk=principal.client_pk,
            level=request.level,
            request_url=request_url,
            parameters={
                "types": types,
                "since": request.since.isoformat() if request.since else None,
                "type_filters": list(request.type_filters),
                "clinic_pks": list(clinic_pks),
                "scopes": sorted(principal.scopes),
                "patient_id": access.patient_id,
                "compartment": request.level != "system",
                "group_pk": group,
                "ignored": ignored,
                "patients": patients,
            },
            transaction_time=now,
            created_at=now,
        ),
    )
    session.commit()
    return status_url(settings, job.job_id)


def _target(
    session: Session, access: FhirAccess, request: KickoffRequest
) -> tuple[tuple[int, ...], int | None]:
    """The clinics the export reads and the ad-hoc group (None: all patients of those clinics)."""
    if not access.clinic_pks:
        raise forbidden("this token is granted no clinic")
    if request.level != "group":
        return access.clinic_pks, None
    assert request.group_id is not None
    group = repo.get_group(session, group_id=request.group_id)
    if group is not None and group.clinic_pk in access.clinic_pks:
        return (group.clinic_pk,), group.id
    clinic = clinic_repo.get_clinic(session, slug=request.group_id)
    if group is None and clinic is not None and clinic.id in access.clinic_pks:
        return (clinic.id,), None
    raise not_found("Group", request.group_id)


def _types(access: FhirAccess, request: KickoffRequest, ignored: list[str]) -> list[str]:
    """The types to write, in order: those asked for (or the level's default) that the scopes allow."""
    default = EXPORTABLE_TYPES if request.level == "system" else COMPARTMENT_TYPES
    wanted = request.types if request.types is not None else default
    types: list[str] = []
    for resource_type in wanted:
        if access.allows(resource_type, "r"):
            types.append(resource_type)
        elif request.types is not None:
            message = f"the token's scopes do not allow reading {resource_type}"
            if not request.lenient:
                raise forbidden(message)
            ignored.append(message)
    if not types:
        raise forbidden("the token's scopes allow none of the resource types to export")
    return types


def _patients(
    session: Session,
    request: KickoffRequest,
    clinic_pks: tuple[int, ...],
    group_pk: int | None,
    ignored: list[str],
) -> list[str] | None:
    """The ``patient`` ids, each a Patient of the exported clinics (and a member of the ad-hoc group);
    one that is not is a 400 (lenient: left out and reported)."""
    if request.patients is None:
        return None
    wanted = list(request.patients)
    known: set[str] = set()
    for clinic_pk in clinic_pks:
        known |= repo.existing_patient_ids(session, clinic_pk=clinic_pk, patient_ids=wanted)
    if group_pk is not None:
        known &= group_members(session, group_pk=group_pk)
    unknown = [pid for pid in wanted if pid not in known]
    if unknown:
        where = "members of the group" if request.level == "group" else "patients this token may export"
        message = f"patient: {', '.join('Patient/' + pid for pid in unknown[:10])} are not {where}"
        if not request.lenient:
            raise bad_request(message, expression=["patient"])
        ignored.append(message)
    return [pid for pid in wanted if pid in known]


def group_members(session: Session, *, group_pk: int) -> set[str]:
    """The Patient ids of an ad-hoc group."""
    members: list[str] = []
    while page := repo.patient_ids_page(
        session, clinic_pk=0, group_pk=group_pk, after=members[-1] if members else "", limit=1000
    ):
        members += page
    return set(members)


# --- status, cancel, files ---


@dataclass(frozen=True)
class InProgress:
    progress: str
    retry_after: int = RETRY_AFTER_SECONDS


@dataclass(frozen=True)
class Completed:
    manifest: dict[str, Any]
    expires: datetime


def _visible_job(session: Session, *, principal: Principal, job_id: str) -> BulkJobRow:
    """The job if this client started it and it is neither cancelled nor expired; else 404."""
    job = repo.get_job(session, job_id=job_id)
    now = datetime.now(UTC)
    if (
        job is None
        or job.client_pk != principal.client_pk
        or job.status == "cancelled"
        or (job.expires_at is not None and job.expires_at <= now)
    ):
        raise FhirError(
            404, "not-found", f"export job {job_id} is not known (cancelled, expired or never started)"
        )
    return job


def job_status(
    session: Session, settings: Settings, *, principal: Principal, job_id: str
) -> InProgress | Completed:
    job = _visible_job(session, principal=principal, job_id=job_id)
    if job.status in ("queued", "running"):
        return InProgress(job.progress or "queued")
    if job.status == "failed":
        raise FhirError(500, "exception", f"the export failed: {job.failure or 'internal error'}")
    assert job.id is not None and job.expires_at is not None
    files = repo.files_of(session, job_pk=job.id)

    def entry(file: Any) -> dict[str, Any]:
        return {
            "type": file.resource_type,
            "url": file_url(settings, job.job_id, file.name),
            "count": file.count,
        }

    manifest = {
        "transactionTime": _instant(job.transaction_time),
        "request": job.request_url,
        "requiresAccessToken": True,
        "output": [entry(f) for f in files if f.kind == "output"],
        "error": [entry(f) for f in files if f.kind == "error"],
    }
    if job.parameters.get("since"):  # resources deleted since then (Bulk Data 2.0: Bundles of DELETEs)
        manifest["deleted"] = [entry(f) for f in files if f.kind == "deleted"]
    return Completed(manifest, job.expires_at)


def cancel(session: Session, *, principal: Principal, job_id: str) -> None:
    """DELETE on the status URL: the job stops (a worker writing it stops at its next lease renewal) and
    its files are deleted by the clean-up task."""
    job = _visible_job(session, principal=principal, job_id=job_id)
    assert job.id is not None
    repo.cancel_job(session, job_pk=job.id, now=datetime.now(UTC))
    session.commit()


def file_path(session: Session, settings: Settings, *, principal: Principal, job_id: str, name: str) -> Path:
    job = _visible_job(session, principal=principal, job_id=job_id)
    assert job.id is not None
    row = repo.get_file(session, job_pk=job.id, name=name) if job.status == "completed" else None
    path = job_dir(settings, job.job_id) / name
    if row is None or not path.is_file():
        raise FhirError(404, "not-found", f"export file {name} is not known")
    return path


def _instant(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def retention(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.export_retention_seconds)
