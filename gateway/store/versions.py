"""The canonical FHIR resource store: current rows, version history and the search index, in one place.

A resource gets a new version only when its JSON changed (ignoring ``meta.versionId`` and
``meta.lastUpdated``, which the store sets); an unchanged write costs part of one lookup and writes
nothing. Stored bytes are what the FHIR API serves, without re-validation or re-mapping.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from gateway.db.engine import Session
from gateway.db.repositories import resources as resource_repo
from gateway.store import changes, search_index

CurrentRow = resource_repo.CurrentRow


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


current_for_record = resource_repo.current_for_record


def put_resources(
    session: Session,
    *,
    clinic_pk: int,
    resources: Sequence[dict[str, Any]],
    now: datetime,
    record_pk: int | None = None,
) -> list[VersionWrite]:
    """Writes each resource as a new version where its content changed; returns what happened to each."""
    return put_owned_resources(
        session, clinic_pk=clinic_pk, items=[(r, record_pk) for r in resources], now=now
    )


def put_owned_resources(
    session: Session,
    *,
    clinic_pk: int,
    items: Sequence[tuple[dict[str, Any], int | None]],
    now: datetime,
) -> list[VersionWrite]:
    """Like :func:`put_resources` for resources of several records: (resource, record pk) pairs.

    One lookup for all of them, one multi-row insert per table for the writes, so a batch of records
    costs a handful of statements rather than a dozen per record.
    """
    current = resource_repo.current_by_keys(session, keys=[(r["resourceType"], r["id"]) for r, _ in items])
    results: list[VersionWrite | None] = []
    new_rows: list[dict[str, Any]] = []
    new_resources: list[tuple[int, dict[str, Any]]] = []  # (position in results, resource)
    changed: list[tuple[int, int, dict[str, Any], bytes]] = []  # (pk, version, resource, content)
    stale_pks: list[int] = []
    for resource, record_pk in items:
        digest = content_hash(resource)
        row = current.get((resource["resourceType"], resource["id"]))
        if row is not None and not row.deleted and row.content_hash == digest:
            results.append(
                VersionWrite(row.id, row.resource_type, row.resource_id, row.version_id, changed=False)
            )
            continue
        if row is None:
            content = _stamp(resource, 1, now)
            new_rows.append(
                {
                    "clinic_pk": clinic_pk,
                    "resource_type": resource["resourceType"],
                    "resource_id": resource["id"],
                    "version_id": 1,
                    "last_updated": now,
                    "content": content,
                    "content_hash": digest,
                    "record_pk": record_pk,
                    "deleted": False,
                }
            )
            new_resources.append((len(results), resource))
            results.append(None)
            continue
        version_id = row.version_id + 1
        content = _stamp(resource, version_id, now)
        values = {
            "version_id": version_id,
            "last_updated": now,
            "content": content,
            "content_hash": digest,
            "deleted": False,
        }
        if record_pk is not None:
            values["record_pk"] = record_pk
        resource_repo.update_current(session, resource_pk=row.id, values=values)
        stale_pks.append(row.id)
        changed.append((row.id, version_id, resource, content))
        results.append(VersionWrite(row.id, row.resource_type, row.resource_id, version_id, changed=True))
    new_pks = resource_repo.insert_current(session, rows=new_rows)
    for pk, row_values, (position, resource) in zip(new_pks, new_rows, new_resources, strict=True):
        changed.append((pk, 1, resource, row_values["content"]))
        results[position] = VersionWrite(pk, resource["resourceType"], resource["id"], 1, changed=True)
    resource_repo.insert_versions(
        session,
        rows=[
            {
                "resource_pk": pk,
                "version_id": version,
                "last_updated": now,
                "content": content,
                "deleted": False,
            }
            for pk, version, _, content in changed
        ],
    )
    index: dict[str, list[dict[str, Any]]] = {"token": [], "reference": [], "date": [], "string": []}
    for pk, _, resource, _ in changed:
        for kind, rows in search_index.index_rows(pk, resource).items():
            index[kind].extend(rows)
    resource_repo.replace_index_rows(session, stale_pks=stale_pks, rows=index)
    written = [r for r in results if r is not None]
    changes.record(session, ((w.resource_type, w.resource_id) for w in written if w.changed))
    return written


def put_resource(
    session: Session, *, clinic_pk: int, resource: dict[str, Any], now: datetime, record_pk: int | None = None
) -> VersionWrite:
    return put_resources(session, clinic_pk=clinic_pk, resources=[resource], now=now, record_pk=record_pk)[0]


def delete_resource(session: Session, *, row: CurrentRow, now: datetime) -> VersionWrite:
    """A deletion is a version too (history keeps it); the resource leaves the search index."""
    if row.deleted:
        return VersionWrite(
            row.id, row.resource_type, row.resource_id, row.version_id, changed=False, deleted=True
        )
    version_id = row.version_id + 1
    resource_repo.update_current(
        session, resource_pk=row.id, values={"version_id": version_id, "last_updated": now, "deleted": True}
    )
    resource_repo.insert_versions(
        session,
        rows=[
            {
                "resource_pk": row.id,
                "version_id": version_id,
                "last_updated": now,
                "content": row.content,
                "deleted": True,
            }
        ],
    )
    resource_repo.replace_index_rows(session, stale_pks=[row.id], rows={})
    changes.record(session, [(row.resource_type, row.resource_id)])
    return VersionWrite(row.id, row.resource_type, row.resource_id, version_id, changed=True, deleted=True)
