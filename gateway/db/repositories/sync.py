"""Queries of the EHR sync engine: connections, the outbox claims, EHR id maps and per-key leases.

Claims work on both databases: a delivery key (a patient's resources, or one shared resource) is leased
with a conditional UPDATE (or an INSERT that a primary key makes unique), so exactly one worker holds it;
the key's due outbox rows are then marked with the lease (PostgreSQL picks them ``FOR UPDATE SKIP LOCKED``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, String, and_, cast, delete, func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col
from sqlmodel import select as orm_select

from gateway.db.repositories.leases import Leased
from gateway.db.tables import (
    EhrConnectionRow,
    OutboxRow,
    RecordRow,
    ResourceRow,
    ResourceVersionRow,
    SyncIdMapRow,
    SyncLeaseRow,
)

OUTBOX = OutboxRow.__table__  # type: ignore[attr-defined]
RESOURCE = ResourceRow.__table__  # type: ignore[attr-defined]
VERSION = ResourceVersionRow.__table__  # type: ignore[attr-defined]
RECORD = RecordRow.__table__  # type: ignore[attr-defined]
ID_MAP = SyncIdMapRow.__table__  # type: ignore[attr-defined]
LEASE = SyncLeaseRow.__table__  # type: ignore[attr-defined]
CONNECTION = EhrConnectionRow.__table__  # type: ignore[attr-defined]

#: outbox rows are leased while a worker delivers them; a delivery key in ``sync_lease`` while one works on it
OUTBOX_LEASE = Leased(OUTBOX)
KEY_LEASE = Leased(LEASE, owner_column="owner", until_column="until")


def _insert(session: Session, table: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


# --- connections ---


def add_connection(session: Session, *, row: EhrConnectionRow) -> EhrConnectionRow:
    session.add(row)
    session.flush()
    return row


def get_connection(session: Session, *, clinic_pk: int, name: str) -> EhrConnectionRow | None:
    return session.exec(
        orm_select(EhrConnectionRow).where(
            EhrConnectionRow.clinic_pk == clinic_pk, EhrConnectionRow.name == name
        )
    ).first()


def get_connection_by_pk(session: Session, *, pk: int) -> EhrConnectionRow | None:
    return session.get(EhrConnectionRow, pk)


def list_connections(session: Session, *, clinic_pk: int | None = None) -> list[EhrConnectionRow]:
    query = orm_select(EhrConnectionRow).order_by(col(EhrConnectionRow.clinic_pk), col(EhrConnectionRow.name))
    if clinic_pk is not None:
        query = query.where(EhrConnectionRow.clinic_pk == clinic_pk)
    return list(session.exec(query))


def update_connection(session: Session, *, pk: int, values: Mapping[str, Any]) -> None:
    session.connection().execute(update(CONNECTION).where(CONNECTION.c.id == pk).values(**values))


def subscribed_connections(session: Session, *, clinic_pk: int) -> list[tuple[int, str]]:
    """(pk, push types) of the clinic's enabled connections."""
    rows = session.connection().execute(
        select(CONNECTION.c.id, CONNECTION.c.push_types).where(
            CONNECTION.c.clinic_pk == clinic_pk, CONNECTION.c.disabled.is_(False)
        )
    )
    return [(r.id, r.push_types) for r in rows]


def backfill(
    session: Session, *, connection_pk: int, clinic_pk: int, resource_types: Sequence[str], now: datetime
) -> int:
    """Outbox rows for every current resource of the clinic the connection has no row for yet."""
    source = (
        select(
            RESOURCE.c.clinic_pk,
            literal(connection_pk).label("connection_pk"),
            RESOURCE.c.id.label("resource_pk"),
            RESOURCE.c.version_id,
            RECORD.c.patient_external_id.label("patient_key"),
            literal("pending").label("status"),
            literal(0).label("attempts"),
            literal(now, type_=OUTBOX.c.next_attempt_at.type).label("next_attempt_at"),
            literal(now, type_=OUTBOX.c.created_at.type).label("created_at"),
        )
        .select_from(RESOURCE.outerjoin(RECORD, RECORD.c.id == RESOURCE.c.record_pk))
        .where(
            RESOURCE.c.clinic_pk == clinic_pk,
            RESOURCE.c.deleted.is_(False),
            RESOURCE.c.resource_type.in_(list(resource_types)),
        )
    )
    columns = [
        "clinic_pk",
        "connection_pk",
        "resource_pk",
        "version_id",
        "patient_key",
        "status",
        "attempts",
        "next_attempt_at",
        "created_at",
    ]
    statement = (
        _insert(session, OUTBOX).from_select(columns, source).on_conflict_do_nothing().returning(OUTBOX.c.id)
    )
    return len(session.connection().execute(statement).fetchall())


# --- claims ---


def due_keys(
    session: Session, *, now: datetime, limit: int, connection_pks: Sequence[int]
) -> list[tuple[int, str]]:
    """(connection, delivery key) pairs with due rows, oldest first; a key is ``p:<patient>`` or
    ``r:<resource pk>`` (rows without a patient: the clinic's Organization, practitioners)."""
    if not connection_pks:
        return []
    first = func.min(OUTBOX.c.next_attempt_at).label("first_due")
    rows = session.connection().execute(
        select(
            OUTBOX.c.connection_pk, OUTBOX.c.patient_key, func.min(OUTBOX.c.resource_pk).label("rpk"), first
        )
        .where(
            OUTBOX.c.status == "pending",
            OUTBOX.c.next_attempt_at <= now,
            OUTBOX.c.connection_pk.in_(list(connection_pks)),
            OUTBOX_LEASE.free(now=now),
        )
        .group_by(
            OUTBOX.c.connection_pk,
            OUTBOX.c.patient_key,
            # rows without a patient are keyed one by one
            func.coalesce(OUTBOX.c.patient_key, cast(OUTBOX.c.resource_pk, String)),
        )
        .order_by(first)
        .limit(limit)
    )
    return [
        (r.connection_pk, f"p:{r.patient_key}" if r.patient_key is not None else f"r:{r.rpk}") for r in rows
    ]


def acquire_lease(
    session: Session, *, connection_pk: int, key: str, owner: str, until: datetime, now: datetime
) -> bool:
    """Takes (or renews, for the same owner) the lease on ``key``; False when someone else holds it."""
    where = (LEASE.c.connection_pk == connection_pk, LEASE.c.key == key)
    if KEY_LEASE.take(session, *where, owner=owner, until=until, now=now):
        return True
    # RETURNING rather than rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT DO NOTHING
    inserted = (
        session.connection()
        .execute(
            _insert(session, LEASE)
            .values(connection_pk=connection_pk, key=key, owner=owner, until=until)
            .on_conflict_do_nothing()
            .returning(LEASE.c.key)
        )
        .first()
    )
    return inserted is not None


def release_lease(session: Session, *, connection_pk: int, key: str, owner: str) -> None:
    """Deletes ``owner``'s lease on the key (a key's lease row exists only while it is held)."""
    session.connection().execute(
        delete(LEASE).where(
            LEASE.c.connection_pk == connection_pk, LEASE.c.key == key, KEY_LEASE.owner == owner
        )
    )


def holds_lease(session: Session, *, connection_pk: int, key: str, owner: str, now: datetime) -> bool:
    row = (
        session.connection()
        .execute(
            select(LEASE.c.owner).where(
                LEASE.c.connection_pk == connection_pk,
                LEASE.c.key == key,
                LEASE.c.owner == owner,
                LEASE.c.until >= now,
            )
        )
        .first()
    )
    return row is not None


def claim_rows(
    session: Session,
    *,
    connection_pk: int,
    key: str,
    owner: str,
    until: datetime,
    now: datetime,
    limit: int,
) -> list[Row[Any]]:
    """Marks the key's due rows as leased by ``owner`` and returns them with their resource's type and id."""
    kind, value = key.split(":", 1)
    where = [
        OUTBOX.c.connection_pk == connection_pk,
        OUTBOX.c.status == "pending",
        OUTBOX.c.next_attempt_at <= now,
        OUTBOX_LEASE.free(now=now),
    ]
    if kind == "p":
        where.append(OUTBOX.c.patient_key == value)
    else:
        where += [OUTBOX.c.patient_key.is_(None), OUTBOX.c.resource_pk == int(value)]
    pick = select(OUTBOX.c.id).where(*where).order_by(OUTBOX.c.id).limit(limit)
    if _is_postgres(session):
        pick = pick.with_for_update(skip_locked=True)
    connection = session.connection()
    ids = [r.id for r in connection.execute(pick)]
    if not ids:
        return []
    OUTBOX_LEASE.take(session, OUTBOX.c.id.in_(ids), owner=owner, until=until, now=now)
    return list(
        connection.execute(
            select(OUTBOX, RESOURCE.c.resource_type, RESOURCE.c.resource_id)
            .join(RESOURCE, RESOURCE.c.id == OUTBOX.c.resource_pk)
            .where(OUTBOX.c.id.in_(ids), OUTBOX.c.lease_owner == owner)
            .order_by(OUTBOX.c.id)
        )
    )


def version_contents(
    session: Session, *, wanted: Iterable[tuple[int, int]]
) -> dict[tuple[int, int], Row[Any]]:
    """(resource pk, version) -> that version's row (content, deleted)."""
    pairs = set(wanted)
    if not pairs:
        return {}
    rows = session.connection().execute(
        select(VERSION.c.resource_pk, VERSION.c.version_id, VERSION.c.content, VERSION.c.deleted).where(
            VERSION.c.resource_pk.in_(sorted({p for p, _ in pairs}))
        )
    )
    return {(r.resource_pk, r.version_id): r for r in rows if (r.resource_pk, r.version_id) in pairs}


def current_by_refs(
    session: Session, *, clinic_pk: int, refs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], Any]:
    """Current resources of the clinic by (type, id), with the patient of their record."""
    wanted = set(refs)
    if not wanted:
        return {}
    rows = session.connection().execute(
        select(
            RESOURCE.c.id,
            RESOURCE.c.resource_type,
            RESOURCE.c.resource_id,
            RESOURCE.c.version_id,
            RESOURCE.c.content,
            RESOURCE.c.deleted,
            RECORD.c.patient_external_id,
        )
        .select_from(RESOURCE.outerjoin(RECORD, RECORD.c.id == RESOURCE.c.record_pk))
        .where(RESOURCE.c.clinic_pk == clinic_pk, RESOURCE.c.resource_id.in_(sorted({i for _, i in wanted})))
    )
    return {(r.resource_type, r.resource_id): r for r in rows if (r.resource_type, r.resource_id) in wanted}


def dead_resources(session: Session, *, connection_pk: int, resource_pks: Iterable[int]) -> set[int]:
    """Those of the resources whose delivery to the connection is a dead letter."""
    pks = sorted(set(resource_pks))
    if not pks:
        return set()
    rows = session.connection().execute(
        select(OUTBOX.c.resource_pk)
        .where(
            OUTBOX.c.connection_pk == connection_pk, OUTBOX.c.status == "dead", OUTBOX.c.resource_pk.in_(pks)
        )
        .distinct()
    )
    return {r.resource_pk for r in rows}


# --- id maps ---


def id_maps(session: Session, *, connection_pk: int, resource_pks: Iterable[int]) -> dict[int, Row[Any]]:
    pks = sorted(set(resource_pks))
    if not pks:
        return {}
    rows = session.connection().execute(
        select(ID_MAP).where(ID_MAP.c.connection_pk == connection_pk, ID_MAP.c.resource_pk.in_(pks))
    )
    return {r.resource_pk: r for r in rows}


def put_id_map(
    session: Session,
    *,
    connection_pk: int,
    resource_pk: int,
    ehr_id: str,
    ehr_version: str | None,
    version_sent: int,
    now: datetime,
) -> None:
    values = {
        "connection_pk": connection_pk,
        "resource_pk": resource_pk,
        "ehr_id": ehr_id,
        "ehr_version": ehr_version,
        "version_sent": version_sent,
        "updated_at": now,
    }
    statement = _insert(session, ID_MAP).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=["connection_pk", "resource_pk"],
        set_={"ehr_id": ehr_id, "ehr_version": ehr_version, "version_sent": version_sent, "updated_at": now},
    )
    session.connection().execute(statement)


def put_id_maps(session: Session, *, rows: Sequence[Mapping[str, Any]]) -> None:
    """Many :func:`put_id_map` in one multi-row upsert (``connection_pk, resource_pk, ehr_id, ehr_version,
    version_sent, updated_at`` per row)."""
    if not rows:
        return
    statement = _insert(session, ID_MAP).values(list(rows))
    statement = statement.on_conflict_do_update(
        index_elements=["connection_pk", "resource_pk"],
        set_={
            "ehr_id": statement.excluded.ehr_id,
            "ehr_version": statement.excluded.ehr_version,
            "version_sent": statement.excluded.version_sent,
            "updated_at": statement.excluded.updated_at,
        },
    )
    session.connection().execute(statement)


# --- outcomes ---


def mark_delivered(session: Session, *, ids: Sequence[int], now: datetime, status_code: int | None) -> None:
    if ids:
        session.connection().execute(
            update(OUTBOX)
            .where(OUTBOX.c.id.in_(list(ids)))
            .values(
                status="delivered",
                delivered_at=now,
                lease_owner=None,
                lease_until=None,
                last_status_code=status_code,
                attempts=OUTBOX.c.attempts + 1,
            )
        )


def mark_failed(
    session: Session,
    *,
    ids: Sequence[int],
    status: str,
    next_attempt_at: datetime,
    status_code: int | None,
    outcome_code: str | None,
    outcome: dict[str, Any] | None,
    count_attempt: bool = True,
) -> None:
    if ids:
        session.connection().execute(
            update(OUTBOX)
            .where(OUTBOX.c.id.in_(list(ids)))
            .values(
                status=status,
                next_attempt_at=next_attempt_at,
                lease_owner=None,
                lease_until=None,
                last_status_code=status_code,
                last_outcome_code=outcome_code,
                outcome=outcome,
                attempts=OUTBOX.c.attempts + (1 if count_attempt else 0),
            )
        )


def release_rows(session: Session, *, ids: Sequence[int], owner: str) -> None:
    if ids:
        OUTBOX_LEASE.release(session, OUTBOX.c.id.in_(list(ids)), owner=owner)


# --- status ---


def status_counts(session: Session, *, connection_pks: Sequence[int]) -> dict[tuple[int, str], int]:
    if not connection_pks:
        return {}
    rows = session.connection().execute(
        select(OUTBOX.c.connection_pk, OUTBOX.c.status, func.count().label("n"))
        .where(OUTBOX.c.connection_pk.in_(list(connection_pks)))
        .group_by(OUTBOX.c.connection_pk, OUTBOX.c.status)
    )
    return {(r.connection_pk, r.status): int(r.n) for r in rows}


def dead_letters(
    session: Session, *, connection_pks: Sequence[int], limit: int, after_id: int = 0
) -> list[Row[Any]]:
    if not connection_pks:
        return []
    return list(
        session.connection().execute(
            select(OUTBOX, RESOURCE.c.resource_type, RESOURCE.c.resource_id)
            .join(RESOURCE, RESOURCE.c.id == OUTBOX.c.resource_pk)
            .where(
                OUTBOX.c.connection_pk.in_(list(connection_pks)),
                OUTBOX.c.status == "dead",
                OUTBOX.c.id > after_id,
            )
            .order_by(OUTBOX.c.id)
            .limit(limit)
        )
    )


def replay(
    session: Session, *, connection_pks: Sequence[int], ids: Sequence[int] | None, now: datetime
) -> int:
    """Dead letters back to pending (all of the connections', or the given ids), due now, attempts reset."""
    if not connection_pks:
        return 0
    where = [OUTBOX.c.connection_pk.in_(list(connection_pks)), OUTBOX.c.status == "dead"]
    if ids is not None:
        where.append(OUTBOX.c.id.in_(list(ids)))
    return int(
        session.connection()
        .execute(
            update(OUTBOX)
            .where(and_(*where))
            .values(status="pending", attempts=0, next_attempt_at=now, created_at=now, outcome=None)
        )
        .rowcount
        or 0
    )


def resource_sync_state(session: Session, *, resource_pks: Sequence[int]) -> list[Row[Any]]:
    """The newest outbox row per (resource, connection), with the EHR id if it has one."""
    if not resource_pks:
        return []
    newest = (
        select(OUTBOX.c.resource_pk, OUTBOX.c.connection_pk, func.max(OUTBOX.c.id).label("oid"))
        .where(OUTBOX.c.resource_pk.in_(list(resource_pks)))
        .group_by(OUTBOX.c.resource_pk, OUTBOX.c.connection_pk)
        .subquery()
    )
    return list(
        session.connection().execute(
            select(
                OUTBOX,
                RESOURCE.c.resource_type,
                RESOURCE.c.resource_id,
                CONNECTION.c.name.label("connection_name"),
                ID_MAP.c.ehr_id,
                ID_MAP.c.version_sent,
            )
            .join(newest, newest.c.oid == OUTBOX.c.id)
            .join(RESOURCE, RESOURCE.c.id == OUTBOX.c.resource_pk)
            .join(CONNECTION, CONNECTION.c.id == OUTBOX.c.connection_pk)
            .outerjoin(
                ID_MAP,
                and_(
                    ID_MAP.c.connection_pk == OUTBOX.c.connection_pk,
                    ID_MAP.c.resource_pk == OUTBOX.c.resource_pk,
                ),
            )
            .order_by(RESOURCE.c.resource_type, RESOURCE.c.resource_id, CONNECTION.c.name)
        )
    )
