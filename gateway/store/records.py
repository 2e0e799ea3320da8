"""Writes the FHIR resources a clinic record maps to, in the record's own transaction (DESIGN §3).

For each write: map the record (``mappings.outbound``), store a new version of each resource whose
JSON changed, retire resources the record no longer maps to, add a Provenance for what changed,
and enqueue outbox rows. The clinic's Organization is kept current the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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


def write_record_resources(
    session: Session,
    *,
    clinic: ClinicIdentity,
    row: RecordRow,
    model: RecordModel,
    now: datetime,
    activity: Activity,
    lookup: RecordLookup,
) -> list[versions.VersionWrite]:
    assert row.id is not None
    related = {}
    for key in related_keys(row.kind, model):
        found = lookup(*key)
        if found is not None:
            related[key] = record_model(found)
    ctx = clinic.context(now, related)
    resources = [to_json(r) for r in map_record(row.kind, row.external_id, model, ctx)]
    organization = _write_organization(session, clinic, ctx, now)
    writes = versions.put_resources(
        session, clinic_pk=clinic.pk, resources=resources, now=now, record_pk=row.id
    )
    produced = {(r["resourceType"], r["id"]) for r in resources}
    if activity != "CREATE":  # a new record has no resources it could have stopped mapping to
        for stale in versions.current_for_record(session, record_pk=row.id):
            key = (stale.resource_type, stale.resource_id)
            if key not in produced and not stale.deleted and stale.resource_type != "Provenance":
                writes.append(_retire(session, clinic_pk=clinic.pk, row=stale, now=now))
    writes += _provenance(session, clinic, row, ctx, writes, activity, now)
    outbox.enqueue(
        session,
        clinic_pk=clinic.pk,
        writes=[*organization, *writes],
        patient_key=row.patient_external_id,
        now=now,
    )
    return writes


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
    session: Session,
    clinic: ClinicIdentity,
    row: RecordRow,
    ctx: MappingContext,
    writes: list[versions.VersionWrite],
    activity: Activity,
    now: datetime,
) -> list[versions.VersionWrite]:
    changed = [w for w in writes if w.changed]
    if not changed:
        return []
    targets = [f"{w.resource_type}/{w.resource_id}" for w in changed]
    provenance = to_fhir_provenance(
        targets, kind=row.kind, external_id=row.external_id, ctx=ctx, activity=activity
    )
    return versions.put_resources(
        session, clinic_pk=clinic.pk, resources=[to_json(provenance)], now=now, record_pk=row.id
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
    writes = [
        _retire(session, clinic_pk=clinic.pk, row=stale, now=now)
        for stale in versions.current_for_record(session, record_pk=row.id)
        if not stale.deleted and stale.resource_type != "Provenance"
    ]
    writes += _provenance(session, clinic, row, clinic.context(now), writes, "DELETE", now)
    outbox.enqueue(session, clinic_pk=clinic.pk, writes=writes, patient_key=row.patient_external_id, now=now)
    return writes
