"""The background side of ``$export``: claims a job with a lease and streams stored JSON into ndjson files.

* One job at a time per worker turn, leased (``bulk_job.lease_owner``/``lease_until``, a compare-and-set),
  so any number of worker processes never run one job twice. The lease is renewed while the job runs; a
  worker that dies leaves a lease that lapses after ``export_lease_seconds``, and the next worker resumes
  the job after its last complete file (a file is written as ``name.part`` and renamed when complete;
  its end position, ``clinic_pk``, ``phase`` and ``last_pk``, is committed with its row).
* Memory stays flat whatever the size: rows come in keyset batches of ``export_batch_size`` and go to the
  file line by line as the stored bytes (canonical JSON, one line each); nothing is parsed or re-serialized.
* A turn works at most ``export_slice_seconds`` and then closes its file, so the other background tasks
  (the sync outbox) keep running; the next turn continues where the last one stopped.
* With ``_since``, the resources deleted since then follow the outputs (the manifest's ``deleted``: one
  transaction Bundle with a DELETE entry per line). They have left the search index, so the token's rule,
  the ``_typeFilter`` and ``patient`` filters and the compartment are judged on their last content in
  memory (``gateway.store.matching``): the list names only resources the client could have been sent.
* ``bulk.cleanup`` deletes the directories and rows of expired and cancelled jobs.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, Any

import orjson

from gateway.auth.scopes import ScopeSet
from gateway.background import register
from gateway.bulk.compartment import PATIENT_COMPARTMENT
from gateway.bulk.jobs import group_members, job_dir, retention
from gateway.bulk.kickoff import type_filter
from gateway.core.config import Settings
from gateway.db.engine import Engine, session_scope
from gateway.db.repositories import bulk as repo
from gateway.db.repositories.bulk_deleted import DeletedResource, deleted_batch
from gateway.db.tables import BulkFileRow, BulkJobRow
from gateway.fhir_api.access import FhirAccess
from gateway.store.matching import IndexRows, rule_matches
from gateway.store.search_index import index_rows
from gateway.store.search_query import Clause, Conjunction, ReferenceValue

log = logging.getLogger(__name__)

#: this process's name on the leases it takes
OWNER = f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
#: a job that failed this many times (worker crashes or errors) is marked failed
MAX_ATTEMPTS = 5


class LeaseLostError(Exception):
    """The job was cancelled, or another worker took it over after this one's lease lapsed."""


@register("bulk.export")
def run_exports(engine: Engine, settings: Settings) -> bool:
    return run_export_turn(engine, settings, owner=OWNER)


@register("bulk.cleanup")
def clean_up(engine: Engine, settings: Settings) -> bool:
    """Deletes expired and cancelled jobs: their directory, then their rows."""
    now = datetime.now(UTC)
    with session_scope(engine, read_only=True) as session:
        due = repo.expired_jobs(session, now=now)
    for job_pk, job_id in due:
        shutil.rmtree(job_dir(settings, job_id), ignore_errors=True)
        with session_scope(engine) as session:
            repo.delete_job(session, job_pk=job_pk)
            session.commit()
    return bool(due)


def run_export_turn(engine: Engine, settings: Settings, *, owner: str, max_files: int | None = None) -> bool:
    """Claims a job and works on it for one slice; False when there was no job to work on.

    ``max_files`` stops the turn after that many files without releasing the lease (tests: a worker
    that dies mid-job)."""
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        job_pk = repo.claim_job(session, owner=owner, now=now, lease_until=now + _lease(settings))
        session.commit()
    if job_pk is None:
        return False
    try:
        ExportRun(engine, settings, owner, job_pk).run(max_files=max_files)
    except LeaseLostError:
        log.info("export stopped: cancelled or taken over", extra={"job_pk": job_pk})
        with session_scope(engine) as session:
            repo.release_lease(session, job_pk=job_pk, owner=owner)  # cancelled: clean-up may delete it now
            session.commit()
    except Exception:
        log.exception("export turn failed", extra={"job_pk": job_pk})
        with session_scope(engine) as session:
            repo.release_lease(session, job_pk=job_pk, owner=owner)  # any worker may retry it at once
            session.commit()
    return True


def _lease(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.export_lease_seconds)


@dataclass
class Position:
    """Where the job stands: the type being written, the clinic (types are walked clinic by clinic, each
    an index range), the phase (0 current, 1 changed after the transaction time) and the last primary key
    written; ``seq`` of the next file."""

    type_index: int = 0
    clinic_index: int = 0
    phase: int = 0
    last_pk: int = 0
    seq: int = 0
    written: int = 0


class ExportRun:
    def __init__(self, engine: Engine, settings: Settings, owner: str, job_pk: int):
        self.engine = engine
        self.settings = settings
        self.owner = owner
        self.job_pk = job_pk
        with session_scope(engine, read_only=True) as session:
            job = repo.get_job_by_pk(session, job_pk=job_pk)
            assert job is not None
            session.expunge(job)
            files = repo.files_of(session, job_pk=job_pk)
        self.job: BulkJobRow = job
        self.params: dict[str, Any] = job.parameters
        self.types: list[str] = list(self.params["types"])
        self.clinics: list[int] = sorted(self.params["clinic_pks"])
        self.dir = job_dir(settings, job.job_id)
        self.position = Position(written=sum(f.count for f in files if f.kind == "output"))
        outputs = [f for f in files if f.kind == "output"]
        deleted = [f for f in files if f.kind == "deleted"]
        #: the last primary key the deleted files cover (they follow the outputs, in pk order)
        self.deleted_after = deleted[-1].last_pk if deleted else 0
        self.has_errors = any(f.kind == "error" for f in files)
        if files:
            self.position.seq = files[-1].seq + 1
        if outputs:
            last = outputs[-1]
            self.position.type_index = self.types.index(last.resource_type)
            self.position.clinic_index = self.clinics.index(last.clinic_pk)
            self.position.phase = last.phase
            self.position.last_pk = last.last_pk

    def run(self, *, max_files: int | None = None) -> None:
        if self.job.attempts > MAX_ATTEMPTS:
            self._finish("failed", failure="the export failed repeatedly")
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        for stale in self.dir.glob("*.part"):  # half-written by a worker that died; this one holds the lease
            stale.unlink(missing_ok=True)
        deadline = time.monotonic() + self.settings.export_slice_seconds
        renew_every = self.settings.export_lease_seconds / 3
        renewed = time.monotonic()
        files = 0
        position = self.position
        while position.type_index < len(self.types):
            resource_type = self.types[position.type_index]
            walk = self._walk(resource_type, self.clinics[position.clinic_index])
            writer = NdjsonWriter(self.dir, self._name(position.seq, resource_type))
            try:
                exhausted = False
                while writer.count < self.settings.export_file_max_resources:
                    if time.monotonic() > deadline and writer.count:
                        break
                    limit = min(
                        self.settings.export_batch_size,
                        self.settings.export_file_max_resources - writer.count,
                    )
                    with session_scope(self.engine, read_only=True) as session:
                        batch = repo.export_batch(
                            session, walk=walk, phase=position.phase, after_pk=position.last_pk, limit=limit
                        )
                    for pk, content in batch:
                        writer.write(content)
                        position.last_pk = pk
                    if len(batch) < limit:
                        if position.phase == 0:
                            position.phase, position.last_pk = 1, 0
                        elif position.clinic_index + 1 < len(self.clinics):
                            position.clinic_index, position.phase, position.last_pk = (
                                position.clinic_index + 1,
                                0,
                                0,
                            )
                            walk = self._walk(resource_type, self.clinics[position.clinic_index])
                        else:
                            exhausted = True
                            break
                    if time.monotonic() - renewed > renew_every:
                        self._renew(progress=self._progress(resource_type, position.written + writer.count))
                        renewed = time.monotonic()
                self._commit_file(writer, resource_type)
            except BaseException:
                writer.discard()
                raise
            files += 1 if writer.count else 0
            if exhausted:
                position.type_index, position.clinic_index, position.phase, position.last_pk = (
                    position.type_index + 1,
                    0,
                    0,
                    0,
                )
            if time.monotonic() > deadline or (max_files is not None and files >= max_files):
                if max_files is None:
                    self._renew(progress=self._progress(resource_type, position.written))
                return
        if self.params.get("since") and not self._write_deleted(deadline):
            return
        self._write_errors()
        self._finish("completed")

    def _walk(self, resource_type: str, clinic_pk: int) -> repo.Walk:
        params = self.params
        access = FhirAccess(
            clinic_pks=tuple(params["clinic_pks"]),
            scopes=ScopeSet.of(params["scopes"]),
            patient_id=params.get("patient_id"),
        )
        type_filters = tuple(c for t, c in map(type_filter, params["type_filters"]) if t == resource_type)
        filters: tuple[Conjunction, ...] | None = type_filters or None
        compartment = None
        if params["compartment"] and (resource_type == "Patient" or resource_type in PATIENT_COMPARTMENT):
            compartment = repo.Compartment(
                PATIENT_COMPARTMENT.get(resource_type, ()), group_pk=params["group_pk"]
            )
            if params.get("patients") is not None:  # AND "in one of these patients' compartments"
                clauses = _patient_clauses(resource_type, params["patients"])
                filters = tuple((*f, c) for f in (type_filters or ((),)) for c in clauses)  # () = none
        since = params.get("since")
        return repo.Walk(
            clinic_pks=(clinic_pk,),
            resource_type=resource_type,
            transaction_time=self.job.transaction_time,
            since=datetime.fromisoformat(since) if since else None,
            compartment=compartment,
            access=tuple(access.rule(resource_type, "r")),
            filters=filters,
        )

    def _name(self, seq: int, resource_type: str) -> str:
        return f"{seq:05d}.{resource_type}.ndjson"

    def _progress(self, resource_type: str, written: int) -> str:
        index = self.types.index(resource_type) + 1
        return f"{written} resources written; {resource_type} ({index} of {len(self.types)} types)"

    def _renew(self, *, progress: str | None = None) -> None:
        now = datetime.now(UTC)
        with session_scope(self.engine) as session:
            ok = repo.renew_lease(
                session,
                job_pk=self.job_pk,
                owner=self.owner,
                lease_until=now + _lease(self.settings),
                progress=progress,
                resources_written=self.position.written,
            )
            session.commit()
        if not ok:
            raise LeaseLostError()

    def _commit_file(
        self, writer: NdjsonWriter, resource_type: str, *, kind: str = "output", last_pk: int | None = None
    ) -> None:
        """Completes the file (or drops it when empty) and records it with the position after it, in the
        transaction that renews the lease: a job that lost its lease records nothing."""
        if not writer.count:
            writer.discard()
            return
        writer.close()
        position = self.position
        now = datetime.now(UTC)
        with session_scope(self.engine) as session:
            if not repo.renew_lease(
                session,
                job_pk=self.job_pk,
                owner=self.owner,
                lease_until=now + _lease(self.settings),
                progress=self._progress(resource_type, position.written + writer.count)
                if kind == "output"
                else None,
                resources_written=position.written + (writer.count if kind == "output" else 0),
            ):
                session.rollback()
                writer.remove()
                raise LeaseLostError()
            repo.add_file(
                session,
                row=BulkFileRow(
                    job_pk=self.job_pk,
                    seq=position.seq,
                    kind=kind,
                    resource_type=resource_type,
                    name=writer.name,
                    count=writer.count,
                    size=writer.size,
                    clinic_pk=self.clinics[position.clinic_index] if kind == "output" else 0,
                    phase=position.phase,
                    last_pk=position.last_pk if last_pk is None else last_pk,
                ),
            )
            session.commit()
        position.seq += 1
        if kind == "output":
            position.written += writer.count

    def _write_deleted(self, deadline: float) -> bool:
        """The deleted files, from where the last one stopped; False when the slice ended first."""
        assert self.params.get("since")
        since = datetime.fromisoformat(self.params["since"])
        admits = DeletedSelection(self)
        limit = self.settings.export_batch_size
        while True:
            writer = NdjsonWriter(self.dir, f"{self.position.seq:05d}.deleted.ndjson")
            try:
                while writer.count < self.settings.export_file_max_resources:
                    with session_scope(self.engine, read_only=True) as session:
                        batch = deleted_batch(
                            session,
                            clinic_pks=self.clinics,
                            resource_types=self.types,
                            since=since,
                            transaction_time=self.job.transaction_time,
                            after_pk=self.deleted_after,
                            limit=limit,
                        )
                    for resource in batch:
                        if admits(resource):
                            writer.write(orjson.dumps(_deletion_bundle(resource)))
                    self.deleted_after = batch[-1].pk if batch else self.deleted_after
                    if len(batch) < limit or time.monotonic() > deadline:
                        break
                self._commit_file(writer, "Bundle", kind="deleted", last_pk=self.deleted_after)
            except BaseException:
                writer.discard()
                raise
            if len(batch) < limit:
                return True
            if time.monotonic() > deadline:
                self._renew(progress=f"{self.position.written} resources written; listing deleted resources")
                return False

    def _write_errors(self) -> None:
        """The lenient kick-off's ignored parameters, as OperationOutcomes (the manifest's ``error``)."""
        ignored = self.params.get("ignored") or []
        if not ignored or self.has_errors:  # a resumed job that wrote them already
            return
        writer = NdjsonWriter(self.dir, self._name(self.position.seq, "OperationOutcome"))
        for message in ignored:
            outcome = {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "warning", "code": "not-supported", "diagnostics": message}],
            }
            writer.write(orjson.dumps(outcome))
        self._commit_file(writer, "OperationOutcome", kind="error")

    def _finish(self, status: str, *, failure: str | None = None) -> None:
        now = datetime.now(UTC)
        total = self.position.written
        progress = f"{total} resources written" if status == "completed" else "failed"
        with session_scope(self.engine) as session:
            done = repo.finish_job(
                session,
                job_pk=self.job_pk,
                owner=self.owner,
                status=status,
                now=now,
                expires_at=now + retention(self.settings),
                progress=progress,
                failure=failure,
            )
            session.commit()
        if not done:
            raise LeaseLostError()
        log.info("export finished", extra={"job_pk": self.job_pk, "status": status, "resources": total})


def _patient_clauses(resource_type: str, patients: list[str]) -> list[Clause]:
    """The clauses of which one keeps ``resource_type`` to the compartments of ``patients`` (``[]``:
    nothing can be in them)."""
    if not patients:
        return []
    if resource_type == "Patient":
        return [Clause("_id", "id", tuple(patients))]
    references = tuple(ReferenceValue("Patient", pid) for pid in patients)
    return [Clause(param, "reference", references) for param in PATIENT_COMPARTMENT.get(resource_type, ())]


def _deletion_bundle(resource: DeletedResource) -> dict[str, Any]:
    deleted_at = resource.deleted_at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "meta": {"lastUpdated": deleted_at},
        "entry": [
            {"request": {"method": "DELETE", "url": f"{resource.resource_type}/{resource.resource_id}"}}
        ],
    }


class DeletedSelection:
    """Whether the export's client could have been sent a deleted resource: the walk's token rule,
    filters and compartment (``bulk.export_batch``'s conditions), judged on its last content."""

    def __init__(self, run: ExportRun):
        self.walks = {t: run._walk(t, run.clinics[0]) for t in run.types}
        group_pk = run.params["group_pk"]
        self.members: set[str] | None = None
        if group_pk is not None:
            with session_scope(run.engine, read_only=True) as session:
                self.members = group_members(session, group_pk=group_pk)

    def __call__(self, resource: DeletedResource) -> bool:
        walk = self.walks[resource.resource_type]
        content = orjson.loads(resource.content)
        rows = index_rows(resource.pk, content)
        updated = content.get("meta", {}).get("lastUpdated")
        last_updated = (
            datetime.fromisoformat(updated.replace("Z", "+00:00")) if updated else resource.deleted_at
        )
        for rule in (walk.access, walk.filters):
            if rule is not None and not rule_matches(
                rule, rows, resource_id=resource.resource_id, last_updated=last_updated
            ):
                return False
        return walk.compartment is None or self._in_compartment(resource, walk.compartment, rows)

    def _in_compartment(
        self, resource: DeletedResource, compartment: repo.Compartment, rows: IndexRows
    ) -> bool:
        if resource.resource_type == "Patient":
            return self.members is None or resource.resource_id in self.members
        return any(
            row["param"] in compartment.params
            and row["target_type"] == "Patient"
            and (self.members is None or row["target_id"] in self.members)
            for row in rows["reference"]
        )


class NdjsonWriter:
    """One ndjson file, written as ``name.part`` and renamed to ``name`` when complete."""

    def __init__(self, directory: Any, name: str):
        self.name = name
        self.path = directory / name
        self.part = directory / (name + ".part")
        self.file: IO[bytes] | None = None
        self.count = 0
        self.size = 0

    def write(self, content: bytes) -> None:
        if self.file is None:
            self.file = open(self.part, "wb", buffering=1 << 20)  # noqa: SIM115 (closed by close/discard)
        if b"\n" in content:  # stored JSON is one line; a pretty-printed import would not be
            content = orjson.dumps(orjson.loads(content))
        self.file.write(content)
        self.file.write(b"\n")
        self.count += 1
        self.size += len(content) + 1

    def close(self) -> None:
        assert self.file is not None
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        self.file = None
        os.replace(self.part, self.path)

    def discard(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
        self.part.unlink(missing_ok=True)

    def remove(self) -> None:
        self.discard()
        self.path.unlink(missing_ok=True)
