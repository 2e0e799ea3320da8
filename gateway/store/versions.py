"""The canonical FHIR resource store: current rows, version history and the search index, in one place.

A resource gets a new version only when its JSON changed (ignoring ``meta.versionId`` and
``meta.lastUpdated``, which the store sets); an unchanged write costs one lookup and writes
nothing. Stored bytes are what the FHIR API serves, without re-validation or re-mapping.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from gateway.db.engine import Session
from gateway.db.repositories import resources as resource_repo
from gateway.db.tables import ResourceRow, ResourceVersionRow
from gateway.store import search_index


@dataclass(frozen=True)
class VersionWrite:
    resource_pk: int
    resource_type: str
    resource_id: str
    version_id: int
    changed: bool
    deleted: bool = False


def content_hash(resource: dict[str, Any]) -> str:
    meta = {k: v for k, v in resource.get("meta", {}).items() if k not in ("versionId", "lastUpdated")}
    body = {k: v for k, v in resource.items() if k != "meta"}
    if meta:
        body["meta"] = meta
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _stamp(resource: dict[str, Any], version_id: int, now: datetime) -> bytes:
    meta = {
        **resource.get("meta", {}),
        "versionId": str(version_id),
        "lastUpdated": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    stamped = {"resourceType": resource["resourceType"], "id": resource["id"], "meta": meta}
    stamped.update({k: v for k, v in resource.items() if k not in stamped})
    return orjson.dumps(stamped)


get_current = resource_repo.get_current
current_for_record = resource_repo.current_for_record


def put_resource(
    session: Session, *, clinic_pk: int, resource: dict[str, Any], now: datetime, record_pk: int | None = None
) -> VersionWrite:
    """Writes ``resource`` as a new version if its content changed; returns what happened."""
    digest = content_hash(resource)
    row = get_current(session, resource_type=resource["resourceType"], resource_id=resource["id"])
    if row is not None and not row.deleted and row.content_hash == digest:
        assert row.id is not None
        return VersionWrite(row.id, row.resource_type, row.resource_id, row.version_id, changed=False)
    version_id = 1 if row is None else row.version_id + 1
    content = _stamp(resource, version_id, now)
    if row is None:
        row = ResourceRow(
            clinic_pk=clinic_pk,
            resource_type=resource["resourceType"],
            resource_id=resource["id"],
            version_id=version_id,
            last_updated=now,
            content=content,
            content_hash=digest,
            record_pk=record_pk,
        )
    else:
        row.version_id, row.last_updated, row.content, row.content_hash = version_id, now, content, digest
        row.deleted = False
        if record_pk is not None:
            row.record_pk = record_pk
    resource_pk = resource_repo.save_current(session, row=row)
    resource_repo.add_version(
        session,
        version=ResourceVersionRow(
            resource_pk=resource_pk, version_id=version_id, last_updated=now, content=content
        ),
    )
    resource_repo.replace_index_rows(
        session, resource_pk=resource_pk, rows=search_index.index_rows(resource_pk, resource)
    )
    return VersionWrite(resource_pk, row.resource_type, row.resource_id, version_id, changed=True)


def delete_resource(session: Session, *, row: ResourceRow, now: datetime) -> VersionWrite:
    """A deletion is a version too (history keeps it); the resource leaves the search index."""
    assert row.id is not None
    if row.deleted:
        return VersionWrite(
            row.id, row.resource_type, row.resource_id, row.version_id, changed=False, deleted=True
        )
    row.version_id += 1
    row.last_updated, row.deleted = now, True
    resource_repo.save_current(session, row=row)
    resource_repo.add_version(
        session,
        version=ResourceVersionRow(
            resource_pk=row.id, version_id=row.version_id, last_updated=now, content=row.content, deleted=True
        ),
    )
    resource_repo.replace_index_rows(session, resource_pk=row.id, rows={})
    return VersionWrite(
        row.id, row.resource_type, row.resource_id, row.version_id, changed=True, deleted=True
    )


def history(session: Session, *, resource_pk: int) -> list[ResourceVersionRow]:
    return resource_repo.versions_of(session, resource_pk=resource_pk)
