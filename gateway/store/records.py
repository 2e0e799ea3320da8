"""Writes the FHIR resources a clinic record maps to, in the record's own transaction (DESIGN §3).

For each write: map the record (``mappings.outbound``), store a new version of each resource whose
JSON changed, retire resources the record no longer maps to, add a Provenance for what changed,
and enqueue outbox rows. The clinic's Organization is kept current the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from gateway.core.ids import resource_id
from gateway.db.engine import Session
from gateway.db.repositories import records as record_repo
from gateway.db.tables import RecordRow
from gateway.store import outbox, versions
from mappings.context import MappingContext
from mappings.fhir import FHIRResourceModel
from mappings.lifecycle import entered_in_error
from mappings.organization import to_fhir_organization
from mappings.outbound import map_record, related_keys
from mappings.provenance import Activity, to_fhir_provenance
from mappings.records import IMPORTED_KINDS, RECORD_KINDS, RecordModel


@dataclass(frozen=True)
class ClinicIdentity:
    pk: int
    slug: str
    name: str
    identifier_base: str


def to_json(resource: FHIRResourceModel) -> dict[str, Any]:
    return json.loads(resource.model_dump_json())


def mapping_context(
    session: Session, clinic: ClinicIdentity, *, kind: str, model: RecordModel, now: datetime
) -> MappingContext:
    related: dict[tuple[str, str], RecordModel] = {}
    for related_kind, external_id in related_keys(kind, model):
        row = record_repo.get_record(session, clinic_pk=clinic.pk, kind=related_kind, external_id=external_id)
        if row is not None:
            related[(related_kind, external_id)] = record_model(row)
    return MappingContext(
        clinic_slug=clinic.slug,
        clinic_name=clinic.name,
        identifier_base=clinic.identifier_base,
        resource_id=partial(resource_id, clinic.slug),
        recorded=now,
        related=related,
    )


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
) -> list[versions.VersionWrite]:
    assert row.id is not None
    ctx = mapping_context(session, clinic, kind=row.kind, model=model, now=now)
    resources = [to_json(r) for r in map_record(row.kind, row.external_id, model, ctx)]
    organization = versions.put_resource(
        session, clinic_pk=clinic.pk, resource=to_json(to_fhir_organization(ctx)), now=now
    )
    writes = [
        versions.put_resource(session, clinic_pk=clinic.pk, resource=r, now=now, record_pk=row.id)
        for r in resources
    ]
    produced = {(r["resourceType"], r["id"]) for r in resources}
    provenance_id = ctx.id_of(row.kind, row.external_id, "provenance")
    for stale in versions.current_for_record(session, record_pk=row.id):
        key = (stale.resource_type, stale.resource_id)
        if key not in produced and not stale.deleted and stale.resource_type != "Provenance":
            writes.append(_retire(session, clinic_pk=clinic.pk, row=stale, now=now))
    changed = [w for w in writes if w.changed]
    if changed:
        targets = [f"{w.resource_type}/{w.resource_id}" for w in changed]
        provenance = to_fhir_provenance(
            targets, kind=row.kind, external_id=row.external_id, ctx=ctx, activity=activity
        )
        provenance_json = to_json(provenance)
        assert provenance_json["id"] == provenance_id
        writes.append(
            versions.put_resource(
                session, clinic_pk=clinic.pk, resource=provenance_json, now=now, record_pk=row.id
            )
        )
    outbox.enqueue(
        session,
        clinic_pk=clinic.pk,
        writes=[organization, *writes],
        patient_key=row.patient_external_id,
        now=now,
    )
    return writes


def _retire(session: Session, *, clinic_pk: int, row: Any, now: datetime) -> versions.VersionWrite:
    """A resource its record no longer maps to (or whose record was deleted)."""
    replacement = entered_in_error(json.loads(row.content))
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
    changed = [w for w in writes if w.changed]
    if changed:
        ctx = MappingContext(
            clinic_slug=clinic.slug,
            clinic_name=clinic.name,
            identifier_base=clinic.identifier_base,
            resource_id=partial(resource_id, clinic.slug),
            recorded=now,
        )
        targets = [f"{w.resource_type}/{w.resource_id}" for w in changed]
        provenance = to_fhir_provenance(
            targets, kind=row.kind, external_id=row.external_id, ctx=ctx, activity="DELETE"
        )
        writes.append(
            versions.put_resource(
                session, clinic_pk=clinic.pk, resource=to_json(provenance), now=now, record_pk=row.id
            )
        )
    outbox.enqueue(session, clinic_pk=clinic.pk, writes=writes, patient_key=row.patient_external_id, now=now)
    return writes
