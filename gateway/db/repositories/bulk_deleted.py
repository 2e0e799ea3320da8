"""Bulk Data export: the resources deleted since ``_since`` (the manifest's ``deleted`` files).

Kept apart from ``bulk.py`` (the export walk over live resources): a deleted resource has left the search
index, so this walk selects by clinic, type and time alone and returns the last content the resource had,
for the caller to judge access, filters and compartments in memory (``gateway.store.matching``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, true
from sqlmodel import Session

from gateway.db.repositories.resources import RESOURCE, VERSION


@dataclass(frozen=True)
class DeletedResource:
    pk: int
    resource_type: str
    resource_id: str
    deleted_at: datetime
    #: the content the resource had when it was deleted
    content: bytes


def deleted_batch(
    session: Session,
    *,
    clinic_pks: Sequence[int],
    resource_types: Sequence[str],
    since: datetime,
    transaction_time: datetime,
    after_pk: int,
    limit: int,
) -> list[DeletedResource]:
    """The next ``limit`` resources after ``after_pk`` (primary-key order) that were deleted as of the
    transaction time by a deletion after ``since``: their version at the transaction time is a deletion
    newer than ``since`` (a resource deleted and then written again before it is not deleted)."""
    at_time = (
        select(func.max(VERSION.c.version_id))
        .where(VERSION.c.resource_pk == RESOURCE.c.id, VERSION.c.last_updated <= transaction_time)
        .correlate(RESOURCE)
        .scalar_subquery()
    )
    query = (
        select(
            RESOURCE.c.id,
            RESOURCE.c.resource_type,
            RESOURCE.c.resource_id,
            VERSION.c.last_updated,
            VERSION.c.content,
        )
        .join(VERSION, VERSION.c.resource_pk == RESOURCE.c.id)
        .where(
            RESOURCE.c.clinic_pk.in_(list(clinic_pks)),
            RESOURCE.c.resource_type.in_(list(resource_types)),
            RESOURCE.c.id > after_pk,
            RESOURCE.c.last_updated > since,  # a deletion since then changed the row since then
            VERSION.c.version_id == at_time,
            VERSION.c.deleted == true(),
            VERSION.c.last_updated > since,
        )
        .order_by(RESOURCE.c.id)
        .limit(limit)
    )
    return [
        DeletedResource(r.id, r.resource_type, r.resource_id, r.last_updated, bytes(r.content))
        for r in session.connection().execute(query)
    ]
