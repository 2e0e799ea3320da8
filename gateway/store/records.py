"""Writes the FHIR resources a clinic record maps to, in the record's own transaction (DESIGN §3).

For each write: map the record (``mappings.outbound``), store a new version of each resource whose
JSON changed, retire resources the record no longer maps to, add a Provenance for what changed,
and enqueue outbox rows. The clinic's Organization is kept current the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import orjson

from gateway.core.ids import resource_id
from gateway.db.engine import Session
from gateway.db.tables import RecordRow
from gateway.store import outbox, versions
from mappings.context import MappingContext
from mappings.fhir import FHIRResourceModel, resource_json
from mappings.lifecycle import entered_in_error
from mappings.organization import to_fhir_organization
from mappings.outbound import map_record, related_keys
from mappings.provenance import Activity, to_fhir_provenance
from mappings.records import IMPORTED_KINDS, RECORD_KINDS, RecordModel

#: (kind, external id) -> the live record row, or None; the caller's cache of referenced records
RecordLookup = Callable[[str, str], RecordRow | None]


@dataclass(frozen=True)
class ClinicIdentity:
    pk: int
    slug: str
    name: str
    identifier_base: str

    def context(
        self, now: datetime, related: Mapping[tuple[str, str], RecordModel] | None = None
    ) -> MappingContext:
        return MappingContext(
            clinic_slug=self.slug,
            clinic_name=self.name,
            identifier_base=self.identifier_base,
            resource_id=partial(resource_id, self.slug),
            recorded=now,
            related=related or {},
        )


def to_json(resource: FHIRResourceModel) -> dict[str, Any]:
    """The validated resource as plain JSON (see ``mappings.fhir.resource_json``)."""
    return resource_json(resource)


def record_model(row: RecordRow) -> RecordModel:
    model_type = RECORD_KINDS.get(row.kind) or IMPORTED_KINDS[row.kind]
    return model_type.model_validate(row.data)


@dataclass(frozen=True)
class RecordWrite:
    """A record just written (row flushed) whose FHIR resources are to be stored."""

    row: RecordRow
    model: RecordModel
    activity: Activity


def write_records_resources(
    session: Session,
    *,
    clinic: ClinicIdentity,
    records: Sequence[RecordWrite],
    now: datetime,
    lookup: RecordLookup,
) -> list[versions.VersionWrite]:
    """Stores the resources of several records at once (a batch): one lookup and one multi-row insert per
    table for all of them, then one more round for their Provenances."""
    contexts: list[MappingContext] = []
    items: list[tuple[dict[str, Any], int | None]] = []
    spans: list[tuple[int, int]] = []  # each record's slice of ``items``
    for record in records:
        assert record.row.id is not None
        related = {}
        for key in related_keys(record.row.kind, record.model):
            found = lookup(*key)
            if found is not None:
                related[key] = record_model(found)
        ctx = clinic.context(now, related)
        contexts.append(ctx)
        resources = [
            to_json(r) for r in map_record(record.row.kind, record.row.external_id, record.model, ctx)
        ]
        spans.append((len(items), len(items) + len(resources)))
        items += [(resource, record.row.id) for resource in resources]
    if not records:
        return []
    organization = _write_organization(session, clinic, contexts[0], now)
    written = versions.put_owned_resources(session, clinic_pk=clinic.pk, items=items, now=now)
    per_record: list[list[versions.VersionWrite]] = []
    provenances: list[tuple[dict[str, Any], int | None]] = []
    for record, ctx, (first, last) in zip(records, contexts, spans, strict=True):
        writes = written[first:last]
        if record.activity != "CREATE":  # a new record has no resources it could have stopped mapping to
            produced = {(r["resourceType"], r["id"]) for r, _ in items[first:last]}
            writes += _retire_stale(session, clinic, record.row, produced, now)
        per_record.append(writes)
        provenance = _provenance(record.row, ctx, writes, record.activity)
        if provenance is not None:
            provenances.append((provenance, record.row.id))
    written_provenances = iter(
        versions.put_owned_resources(session, clinic_pk=clinic.pk, items=provenances, now=now)
    )
    out: list[versions.VersionWrite] = list(organization)
    for record, writes in zip(records, per_record, strict=True):
        if any(w.changed for w in writes):
            writes = [*writes, next(written_provenances)]
        outbox.enqueue(
            session, clinic_pk=clinic.pk, writes=writes, patient_key=record.row.patient_external_id, now=now
        )
        out += writes
    outbox.enqueue(session, clinic_pk=clinic.pk, writes=organization, patient_key=None, now=now)
    return out


def _retire_stale(
    session: Session, clinic: ClinicIdentity, row: RecordRow, produced: set[tuple[str, str]], now: datetime
) -> list[versions.VersionWrite]:
    """Resources the record mapped to before and no longer does."""
    assert row.id is not None
    return [
        _retire(session, clinic_pk=clinic.pk, row=stale, now=now)
        for stale in versions.current_for_record(session, record_pk=row.id)
        if (stale.resource_type, stale.resource_id) not in produced
        and not stale.deleted
        and stale.resource_type != "Provenance"
    ]


def _write_organization(
    session: Session, clinic: ClinicIdentity, ctx: MappingContext, now: datetime
) -> list[versions.VersionWrite]:
    """The clinic's Organization, checked once per transaction (a batch writes it at most once)."""
    transaction = session.get_transaction()
    marker: tuple[object, set[int]] | None = session.info.get("organization_written")
    if marker is None or marker[0] is not transaction:
        marker = session.info["organization_written"] = (transaction, set())
    if clinic.pk in marker[1]:
        return []
    marker[1].add(clinic.pk)
    return versions.put_resources(
        session, clinic_pk=clinic.pk, resources=[to_json(to_fhir_organization(ctx))], now=now
    )


def _provenance(
    row: RecordRow, ctx: MappingContext, writes: list[versions.VersionWrite], activity: Activity
) -> dict[str, Any] | None:
    """The Provenance of a write that changed something (None when nothing changed)."""
    changed = [w for w in writes if w.changed]
    if not changed:
        return None
    targets = [f"{w.resource_type}/{w.resource_id}" for w in changed]
    return to_json(
        to_fhir_provenance(targets, kind=row.kind, external_id=row.external_id, ctx=ctx, activity=activity)
    )


def _retire(session: Session, *, clinic_pk: int, row: Any, now: datetime) -> versions.VersionWrite:
    """A resource its record no longer maps to (or whose record was deleted)."""
    replacement = entered_in_error(orjson.loads(row.content))
    if replacement is None:
        return versions.delete_resource(session, row=row, now=now)
    return versions.put_resource(
        session, clinic_pk=clinic_pk, resource=replacement, now=now, record_pk=row.record_pk
    )


def delete_record_resources(
    session: Session, *, clinic: ClinicIdentity, row: RecordRow, now: datetime
) -> list[versions.VersionWrite]:
    assert row.id is not None
    writes = _retire_stale(session, clinic, row, set(), now)
    provenance = _provenance(row, clinic.context(now), writes, "DELETE")
    if provenance is not None:
        writes.append(
            versions.put_resource(
                session, clinic_pk=clinic.pk, resource=provenance, now=now, record_pk=row.id
            )
        )
    outbox.enqueue(session, clinic_pk=clinic.pk, writes=writes, patient_key=row.patient_external_id, now=now)
    return writes
