"""The outbox worker (DESIGN §3, §8): claims due deliveries and sends them to the connection's EHR.

A claim is one *delivery key* of one connection: all of a patient's due resources, or one resource that
belongs to no patient (the clinic's Organization, a Practitioner). The key is leased in the database
(``sync_lease``), so whatever number of worker processes run, one of them at a time creates a key's
resources at the EHR -- conditional creates and search-then-create never race -- and a killed worker's
lease runs out and another takes over.

Within a claim: only the newest claimed version of each resource is sent (older ones are covered by it);
resources go in dependency order (Patient, then Encounter, then the rest, and anything a resource references
before it); references are rewritten to the EHR's ids, which are kept per connection (``sync_id_map``);
a reference to a resource of another key that the EHR does not have yet delivers that resource first, under
its own lease. The delivery mode comes from the EHR's capabilities (``gateway.sync.capabilities``):
transaction Bundles of ``sync_transaction_size`` entries with ``ifNoneExist``, else conditional creates, else
search-then-create. Updates are ``PUT``s of the EHR's id (a new version there); a retired resource is sent as
its ``entered-in-error`` version; a deleted one as ``DELETE``. Every send is safe to repeat, so a retry after a
connection dropped once the EHR had committed duplicates nothing.

Failures follow ``gateway.sync.retry``; retryable ones count towards the connection's circuit breaker
(``sync_breaker_failures`` in a row pause the connection, doubling while it keeps failing).
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

import orjson

from gateway.background import register
from gateway.core.config import Settings
from gateway.db.engine import Engine, session_scope
from gateway.db.repositories import sync as sync_repo
from gateway.db.tables import EhrConnectionRow, utcnow
from gateway.sync import connections, retry, shaping
from gateway.sync.errors import ConnectionConfigError, EhrError, EhrStatusError
from gateway.sync.smart_client import EhrResponse, SmartClient, parse_location

log = logging.getLogger(__name__)

#: how long a key another worker holds is left alone
DEFER_SECONDS = 0.5
#: keys looked at per claim attempt
CANDIDATE_KEYS = 16
#: what the EHR accepted is written to the database (EHR ids, delivered marks) in one transaction per this
#: many resources or seconds, and when the claim ends, not per send: a commit per resource cost more than
#: the send. A worker killed in between re-sends at most that much, which every send is safe to repeat.
RECORD_EVERY_RESOURCES = 200
RECORD_EVERY_SECONDS = 2.0


class DeferredError(Exception):
    """A dependency is leased by another worker: the claim is given back and retried shortly."""


@dataclass
class Item:
    rows: list[Any]
    resource_pk: int
    resource_type: str
    resource_id: str
    version_id: int
    resource: dict[str, Any] | None
    deleted: bool
    ehr_id: str | None

    @property
    def ref(self) -> tuple[str, str]:
        return (self.resource_type, self.resource_id)

    @property
    def top(self) -> Any:
        return max(self.rows, key=lambda r: r.version_id)

    @cached_property
    def references(self) -> set[tuple[str, str]]:
        """What the resource references (planning, blocking and ordering all ask, so it is walked once)."""
        return shaping.references(self.resource) if self.resource is not None else set()


@dataclass
class Sent:
    """What the EHR answered for one item."""

    ehr_id: str | None
    ehr_version: str | None
    status_code: int


@dataclass
class Claim:
    connection: EhrConnectionRow
    key: str
    client: SmartClient
    mode: str
    #: (type, our id) -> EHR id, for this claim's resources and what they reference
    ehr_ids: dict[tuple[str, str], str] = field(default_factory=dict)
    #: (type, our id) -> the target's first identifier, for references the EHR does not receive
    logical: dict[tuple[str, str], dict[str, Any] | None] = field(default_factory=dict)
    #: leases of other keys taken for dependencies
    extra_keys: list[str] = field(default_factory=list)
    #: resources of this claim that failed: what references them waits (it would reach the EHR without them)
    failed: set[tuple[str, str]] = field(default_factory=set)
    #: when the key's lease was last renewed (it was taken, for ``sync_lease_seconds``, just before the claim)
    renewed_at: datetime | None = field(default_factory=utcnow)
    #: what the EHR accepted and the database does not know yet (written by ``Deliverer._checkpoint``)
    unrecorded: list[tuple[Item, Sent]] = field(default_factory=list)
    recorded_at: float = field(default_factory=time.monotonic)

    @property
    def pk(self) -> int:
        assert self.connection.id is not None
        return self.connection.id


class Deliverer:
    """Delivers outbox rows; one per worker loop (the owner name is unique per process and loop)."""

    def __init__(self, engine: Engine, settings: Settings, *, owner: str | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.owner = owner or f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    # -- claiming ---------------------------------------------------------------------------------

    def run_once(self) -> bool:
        """Claims one delivery key and delivers it; False when nothing was due."""
        now = utcnow()
        with session_scope(self.engine, read_only=True) as session:
            active = {
                row.id: row
                for row in sync_repo.list_connections(session)
                if not row.disabled
                and row.token_url
                and row.capabilities
                and (row.paused_until is None or row.paused_until <= now)
            }
            keys = sync_repo.due_keys(
                session, now=now, limit=CANDIDATE_KEYS, connection_pks=[pk for pk in active if pk is not None]
            )
        for connection_pk, key in keys:
            if not self._lease(connection_pk, key):
                continue
            try:
                self.deliver_key(active[connection_pk], key)
            finally:
                with session_scope(self.engine) as session:
                    sync_repo.release_lease(session, connection_pk=connection_pk, key=key, owner=self.owner)
                    session.commit()
            return True
        return False

    def _lease(self, connection_pk: int, key: str) -> bool:
        now = utcnow()
        with session_scope(self.engine) as session:
            taken = sync_repo.acquire_lease(
                session,
                connection_pk=connection_pk,
                key=key,
                owner=self.owner,
                until=now + timedelta(seconds=self.settings.sync_lease_seconds),
                now=now,
            )
            session.commit()
            return taken

    def deliver_key(self, connection: EhrConnectionRow, key: str) -> None:
        assert connection.id is not None
        now = utcnow()
        with session_scope(self.engine) as session:
            rows = sync_repo.claim_rows(
                session,
                connection_pk=connection.id,
                key=key,
                owner=self.owner,
                until=now + timedelta(seconds=self.settings.sync_lease_seconds),
                now=now,
                limit=self.settings.sync_claim_size,
            )
            session.commit()
        if not rows:
            return
        try:
            client = connections.client_for(connection, self.settings)
        except ConnectionConfigError as error:
            log.warning("connection unusable", extra={"connection": connection.id, "error": str(error)})
            self._give_back(rows, delay=self.settings.sync_breaker_pause_seconds)
            return
        mode = (connection.capabilities or {}).get("mode", "search")
        claim = Claim(connection, key, client, mode)
        try:
            try:
                items = self._plan(claim, rows)
                self._send_all(claim, items)
            finally:  # what reached the EHR is recorded before anything is given back
                self._checkpoint(claim)
        except DeferredError:
            self._give_back(rows, delay=DEFER_SECONDS)
        except BaseException:
            self._give_back(rows, delay=DEFER_SECONDS)
            raise
        finally:
            for extra in claim.extra_keys:
                with session_scope(self.engine) as session:
                    sync_repo.release_lease(session, connection_pk=claim.pk, key=extra, owner=self.owner)
                    session.commit()

    def _give_back(self, rows: Sequence[Any], *, delay: float) -> None:
        """Unclaims rows still leased by us (delivered or failed ones were already released)."""
        with session_scope(self.engine) as session:
            ids = [r.id for r in rows]
            sync_repo.release_rows(session, ids=ids, owner=self.owner)
            session.commit()

    # -- planning ---------------------------------------------------------------------------------

    def _plan(self, claim: Claim, rows: Sequence[Any]) -> list[Item]:
        by_resource: dict[int, list[Any]] = {}
        for row in rows:
            by_resource.setdefault(row.resource_pk, []).append(row)
        now = utcnow()
        with session_scope(self.engine, read_only=True) as session:
            maps = sync_repo.id_maps(session, connection_pk=claim.pk, resource_pks=by_resource)
            tops = {pk: max(rs, key=lambda r: r.version_id) for pk, rs in by_resource.items()}
            contents = sync_repo.version_contents(
                session, wanted=[(pk, r.version_id) for pk, r in tops.items()]
            )
        items: list[Item] = []
        already: list[int] = []
        for pk, group in by_resource.items():
            top = tops[pk]
            mapped = maps.get(pk)
            if mapped is not None:
                claim.ehr_ids[(top.resource_type, top.resource_id)] = mapped.ehr_id
            if mapped is not None and mapped.version_sent >= top.version_id:
                already += [r.id for r in group]  # the EHR has this version (or a newer one) already
                continue
            version = contents.get((pk, top.version_id))
            if version is None:  # the version row is gone (cannot happen while versions are kept)
                already += [r.id for r in group]
                continue
            deleted = bool(version.deleted)
            if deleted and mapped is None:
                already += [r.id for r in group]  # deleted before it ever reached the EHR
                continue
            items.append(
                Item(
                    rows=group,
                    resource_pk=pk,
                    resource_type=top.resource_type,
                    resource_id=top.resource_id,
                    version_id=top.version_id,
                    resource=None if deleted else orjson.loads(version.content),
                    deleted=deleted,
                    ehr_id=mapped.ehr_id if mapped is not None else None,
                )
            )
        if already:
            with session_scope(self.engine) as session:
                sync_repo.mark_delivered(session, ids=already, now=now, status_code=None)
                session.commit()
        return _dependency_order(items)

    def _resolve_dependencies(self, claim: Claim, items: Sequence[Item], depth: int = 0) -> None:
        """EHR ids for everything the items reference outside the claim (delivering what is missing)."""
        inside = {item.ref for item in items}
        wanted: set[tuple[str, str]] = set()
        for item in items:
            wanted |= item.references
        wanted -= inside
        wanted -= set(claim.ehr_ids)
        wanted -= set(claim.logical)
        if not wanted:
            return
        pushed = set(connections.push_types(claim.connection))
        with session_scope(self.engine, read_only=True) as session:
            targets = sync_repo.current_by_refs(session, clinic_pk=claim.connection.clinic_pk, refs=wanted)
            maps = sync_repo.id_maps(
                session, connection_pk=claim.pk, resource_pks=[t.id for t in targets.values()]
            )
            dead = sync_repo.dead_resources(
                session, connection_pk=claim.pk, resource_pks=[t.id for t in targets.values()]
            )
        for ref in sorted(wanted):
            target = targets.get(ref)
            if target is None:
                claim.logical[ref] = None
                continue
            if target.id in maps:
                claim.ehr_ids[ref] = maps[target.id].ehr_id
                continue
            if target.id in dead:  # a dead letter is not sent again as a dependency: what needs it waits
                claim.failed.add(ref)
                continue
            content = orjson.loads(target.content)
            if ref[0] not in pushed or target.deleted or depth >= 3:
                claim.logical[ref] = shaping.first_identifier(content)
                continue
            self._deliver_dependency(claim, target, content, depth)

    def _deliver_dependency(self, claim: Claim, target: Any, content: dict[str, Any], depth: int) -> None:
        key = f"p:{target.patient_external_id}" if target.patient_external_id else f"r:{target.id}"
        if key != claim.key and key not in claim.extra_keys:
            if not self._lease(claim.pk, key):
                raise DeferredError(key)
            claim.extra_keys.append(key)
        # read again under the lease: the worker that held it may have delivered the target since we looked
        with session_scope(self.engine, read_only=True) as session:
            mapped = sync_repo.id_maps(session, connection_pk=claim.pk, resource_pks=[target.id]).get(
                target.id
            )
        if mapped is not None:
            claim.ehr_ids[(target.resource_type, target.resource_id)] = mapped.ehr_id
            return
        item = Item(
            [], target.id, target.resource_type, target.resource_id, target.version_id, content, False, None
        )
        self._resolve_dependencies(claim, [item], depth + 1)
        if item.references & claim.failed:  # it needs what failed: it waits, like its dependents
            claim.failed.add(item.ref)
            return
        sent = self._send_one(claim, item)  # an error here fails the claim's rows (retried later)
        self._record(claim, [(item, sent)])

    # -- sending ----------------------------------------------------------------------------------

    def _send_all(self, claim: Claim, items: list[Item]) -> None:
        if not items:
            return
        try:
            self._resolve_dependencies(claim, items)
        except EhrError as error:  # a dependency failed: nothing that may need it goes out now
            self._fail(claim, items, error if error.retryable else _as_retryable(error), trip=error.retryable)
            return
        size = self.settings.sync_transaction_size if claim.mode == "transaction" else 1
        chunks = [items[i : i + size] for i in range(0, len(items), size)]
        for index, chunk in enumerate(chunks):
            if not self._still_leased(claim):
                return  # our lease ran out: another worker owns the key now; give the rest back
            chunk = self._without_blocked(claim, chunk)
            if not chunk:
                continue
            try:
                if claim.mode == "transaction" and len(chunk) > 1:
                    results = self._send_transaction(claim, chunk)
                else:
                    results = [(item, self._send_one(claim, item)) for item in chunk]
            except EhrError as error:
                if claim.mode == "transaction" and len(chunk) > 1 and not error.retryable:
                    # one bad resource fails a whole transaction: send them one by one to find it
                    if not self._send_singly(claim, chunk):
                        self._fail(claim, [i for c in chunks[index + 1 :] for i in c], None)
                        return
                    continue
                self._fail(claim, chunk, error)
                if error.retryable:
                    self._fail(claim, [i for c in chunks[index + 1 :] for i in c], None)
                    return
                continue
            self._record(claim, results)

    def _send_singly(self, claim: Claim, chunk: list[Item]) -> bool:
        """Per-resource sends; False when a retryable error stopped them (the rest was failed too)."""
        for position, item in enumerate(chunk):
            if not self._without_blocked(claim, [item]):
                continue
            try:
                sent = self._send_one(claim, item)
            except EhrError as error:
                self._fail(claim, [item], error)
                if error.retryable:
                    self._fail(claim, chunk[position + 1 :], None)
                    return False
                continue
            self._record(claim, [(item, sent)])
        return True

    def _without_blocked(self, claim: Claim, chunk: list[Item]) -> list[Item]:
        """The chunk minus items that reference a resource of this claim that failed; those wait for it (a
        Provenance would lose its target, an Observation its patient) and are retried with backoff."""
        blocked = [i for i in chunk if i.references & claim.failed]
        if blocked:
            waiting = EhrStatusError(503, "waiting for a referenced resource that could not be delivered")
            self._fail(claim, blocked, waiting, trip=False)
        return [i for i in chunk if i not in blocked]

    def _still_leased(self, claim: Claim) -> bool:
        """Renews the lease once a third of it has passed (a write per chunk would cost more than the chunk),
        in the transaction that records what was delivered so far."""
        now = utcnow()
        if (
            claim.renewed_at is not None
            and (now - claim.renewed_at).total_seconds() < self.settings.sync_lease_seconds / 3
        ):
            return True
        return self._checkpoint(claim, renew=True)

    def _checkpoint(self, claim: Claim, *, renew: bool = False) -> bool:
        """One transaction: the buffered outcomes written and, with ``renew``, the key's lease extended.
        False when the lease ran out and another worker took the key."""
        if not claim.unrecorded and not renew:
            return True
        now = utcnow()
        held = True
        with session_scope(self.engine) as session:
            self._write_outcomes(session, claim, now)
            if renew:
                claim.renewed_at = now
                held = sync_repo.acquire_lease(  # renews our own lease; fails only if it was taken
                    session,
                    connection_pk=claim.pk,
                    key=claim.key,
                    owner=self.owner,
                    until=now + timedelta(seconds=self.settings.sync_lease_seconds),
                    now=now,
                )
            session.commit()
        return held

    def _shape(
        self, claim: Claim, item: Item, in_flight: dict[tuple[str, str], str]
    ) -> dict[str, Any] | None:
        assert item.resource is not None

        def resolve(resource_type: str, resource_id: str) -> str | None:
            ref = (resource_type, resource_id)
            if ref in in_flight:
                return in_flight[ref]
            ehr_id = claim.ehr_ids.get(ref)
            return f"{resource_type}/{ehr_id}" if ehr_id is not None else None

        def logical(resource_type: str, resource_id: str) -> dict[str, Any] | None:
            return claim.logical.get((resource_type, resource_id))

        return shaping.for_ehr(item.resource, resolve=resolve, logical=logical, ehr_id=item.ehr_id)

    def _send_transaction(self, claim: Claim, chunk: list[Item]) -> list[tuple[Item, Sent]]:
        # fullUrls are fresh uuids, never our ids: an EHR rewrites every string in the Bundle that equals
        # a fullUrl (Medplum does), and our identifier values are urn:uuid:<our id>
        in_flight = {item.ref: f"urn:uuid:{uuid.uuid4()}" for item in chunk if item.ehr_id is None}
        entries: list[dict[str, Any]] = []
        sent_items: list[Item] = []
        skipped: list[tuple[Item, Sent]] = []
        for item in chunk:
            if item.deleted:
                entries.append(
                    {"request": {"method": "DELETE", "url": f"{item.resource_type}/{item.ehr_id}"}}
                )
                sent_items.append(item)
                continue
            shaped = self._shape(claim, item, in_flight)
            if shaped is None:
                skipped.append((item, Sent(None, None, 0)))
                continue
            if item.ehr_id is not None:
                url = f"{item.resource_type}/{item.ehr_id}"
                entries.append(
                    {
                        "fullUrl": claim.client.url(url),
                        "resource": shaped,
                        "request": {"method": "PUT", "url": url},
                    }
                )
            else:
                entries.append(
                    {
                        "fullUrl": in_flight[item.ref],
                        "resource": shaped,
                        "request": {
                            "method": "POST",
                            "url": item.resource_type,
                            "ifNoneExist": shaping.identity_query(item.resource_type, item.resource_id),
                        },
                    }
                )
            sent_items.append(item)
        if not entries:
            return skipped
        response = claim.client.request(
            "POST", "", json={"resourceType": "Bundle", "type": "transaction", "entry": entries}
        )
        answers = (response.body or {}).get("entry") or [] if isinstance(response.body, dict) else []
        if len(answers) != len(entries):
            raise EhrStatusError(502, "transaction-response has the wrong number of entries")
        results = list(skipped)
        for item, answer in zip(sent_items, answers, strict=True):
            reply = answer.get("response") or {}
            status = int(str(reply.get("status", "0")).split(" ", 1)[0] or 0)
            if item.deleted:
                results.append((item, Sent(item.ehr_id, None, status)))
                continue
            location = parse_location(reply.get("location") or "")
            ehr_id = location[1] if location else (answer.get("resource") or {}).get("id") or item.ehr_id
            version = location[2] if location else None
            if not ehr_id:
                raise EhrStatusError(502, "transaction-response entry names no resource")
            results.append((item, Sent(ehr_id, version, status)))
        return results

    def _send_one(self, claim: Claim, item: Item) -> Sent:
        if item.deleted:
            try:
                response = claim.client.request("DELETE", f"{item.resource_type}/{item.ehr_id}")
            except EhrStatusError as error:
                if error.status_code in (404, 410):  # already gone
                    return Sent(item.ehr_id, None, error.status_code)
                raise
            return Sent(item.ehr_id, None, response.status_code)
        shaped = self._shape(claim, item, {})
        if shaped is None:
            return Sent(None, None, 0)
        identity = shaping.identity_query(item.resource_type, item.resource_id)
        ehr_id = item.ehr_id
        if ehr_id is None and claim.mode == "search":
            found = claim.client.request("GET", item.resource_type, params=dict([identity.split("=", 1)]))
            matches = [
                e["resource"]["id"]
                for e in (found.body or {}).get("entry") or []
                if isinstance(e.get("resource"), dict)
                and e["resource"].get("resourceType") == item.resource_type
            ]
            if len(matches) > 1:
                raise EhrStatusError(412, "the EHR holds this resource more than once")
            if matches:
                ehr_id = matches[0]
                shaped["id"] = ehr_id
        if ehr_id is not None:
            response = claim.client.request("PUT", f"{item.resource_type}/{ehr_id}", json=shaped)
            return _sent(response, fallback_id=ehr_id)
        headers = {"if-none-exist": identity} if claim.mode != "search" else {}
        response = claim.client.request("POST", item.resource_type, json=shaped, headers=headers)
        return _sent(response, fallback_id=None)

    # -- outcomes ---------------------------------------------------------------------------------

    def _record(self, claim: Claim, results: Sequence[tuple[Item, Sent]]) -> None:
        """Keeps the EHR ids for what follows in the claim; the database learns them at the next checkpoint."""
        for item, sent in results:
            if sent.ehr_id is not None:
                claim.ehr_ids[item.ref] = sent.ehr_id
        claim.unrecorded.extend(results)
        log.info("delivered", extra={"connection": claim.pk, "resources": len(results), "mode": claim.mode})
        if (
            len(claim.unrecorded) >= RECORD_EVERY_RESOURCES
            or time.monotonic() - claim.recorded_at >= RECORD_EVERY_SECONDS
        ):
            self._checkpoint(claim)

    def _write_outcomes(self, session: Any, claim: Claim, now: datetime) -> None:
        """The buffered outcomes: one id-map upsert, one delivered update per status code, the breaker reset."""
        results, claim.unrecorded = claim.unrecorded, []
        claim.recorded_at = time.monotonic()
        if not results:
            return
        maps: dict[int, dict[str, Any]] = {}
        delivered: dict[int | None, list[int]] = {}
        for item, sent in results:
            if sent.ehr_id is not None:
                maps[item.resource_pk] = {
                    "connection_pk": claim.pk,
                    "resource_pk": item.resource_pk,
                    "ehr_id": sent.ehr_id,
                    "ehr_version": sent.ehr_version,
                    "version_sent": item.version_id,
                    "updated_at": now,
                }
            delivered.setdefault(sent.status_code or None, []).extend(r.id for r in item.rows)
        sync_repo.put_id_maps(session, rows=list(maps.values()))
        for status_code, ids in delivered.items():
            sync_repo.mark_delivered(session, ids=ids, now=now, status_code=status_code)
        if claim.connection.failures:
            sync_repo.update_connection(session, pk=claim.pk, values={"failures": 0, "paused_until": None})
            claim.connection.failures = 0

    def _fail(
        self, claim: Claim, items: Sequence[Item], error: EhrError | None, *, trip: bool = True
    ) -> None:
        """Marks the items' rows failed by ``error`` (None: not tried because an earlier one failed); a
        retryable error counts towards the circuit breaker (``trip``)."""
        if not items:
            return
        claim.failed |= {item.ref for item in items}
        now = utcnow()
        with session_scope(self.engine) as session:
            self._write_outcomes(session, claim, now)  # a success before this failure closes the breaker
            for item in items:
                ids = [r.id for r in item.rows]
                if not ids:
                    continue
                if error is None:
                    sync_repo.release_rows(session, ids=ids, owner=self.owner)
                    continue
                top = item.top
                decision = retry.decide(
                    error, attempts=top.attempts, created_at=top.created_at, now=now, settings=self.settings
                )
                sync_repo.mark_failed(
                    session,
                    ids=ids,
                    status=decision.status,
                    next_attempt_at=decision.next_attempt_at,
                    status_code=decision.status_code,
                    outcome_code=decision.outcome_code,
                    outcome=decision.outcome,
                )
                log.warning(
                    "delivery failed",
                    extra={
                        "connection": claim.pk,
                        "resource_type": item.resource_type,
                        "status_code": decision.status_code,
                        "outcome_code": decision.outcome_code,
                        "dead": decision.status == "dead",
                    },
                )
            if error is not None and error.retryable and trip:
                self._trip(session, claim, now, error)
            session.commit()

    def _trip(self, session: Any, claim: Claim, now: datetime, error: EhrError) -> None:
        """Circuit breaker: counts a retryable failure; enough in a row pause the connection."""
        failures = claim.connection.failures + 1
        claim.connection.failures = failures
        values: dict[str, Any] = {"failures": failures}
        over = failures - self.settings.sync_breaker_failures
        pause = 0.0
        if over >= 0:  # doubling while it keeps failing, up to the backoff cap (never below one pause)
            base = self.settings.sync_breaker_pause_seconds
            pause = min(max(self.settings.sync_backoff_cap_seconds, base), base * 2 ** min(over, 20))
        if error.retry_after is not None:  # the EHR said when to come back: nothing goes before that
            pause = max(pause, min(error.retry_after, self.settings.sync_backoff_cap_seconds))
        if pause:
            values["paused_until"] = now + timedelta(seconds=pause)
        sync_repo.update_connection(session, pk=claim.pk, values=values)


def _as_retryable(error: EhrError) -> EhrError:
    """A dependency's permanent failure is not the dependent's: it waits (and ages) instead of dying."""
    wrapped = EhrStatusError(503, f"a referenced resource could not be delivered ({error.status_code})")
    wrapped.outcome = error.outcome
    return wrapped


def _sent(response: EhrResponse, *, fallback_id: str | None) -> Sent:
    body = response.body if isinstance(response.body, dict) else {}
    location = response.location
    ehr_id = (location[1] if location else None) or body.get("id") or fallback_id
    version = (location[2] if location else None) or (body.get("meta") or {}).get("versionId")
    if not ehr_id:
        raise EhrStatusError(502, "the EHR's answer names no resource id (no body, no Location)")
    return Sent(str(ehr_id), version, response.status_code)


def _dependency_order(items: list[Item]) -> list[Item]:
    """Patient, Encounter, then the rest; anything an item references inside the claim goes before it."""
    ordered = sorted(
        items, key=lambda i: (shaping.order_key(i.resource_type), i.resource_type, i.resource_id)
    )
    by_ref = {item.ref: item for item in ordered}
    placed: set[tuple[str, str]] = set()
    visiting: set[tuple[str, str]] = set()
    out: list[Item] = []

    def place(item: Item) -> None:
        if item.ref in placed or item.ref in visiting:
            return
        visiting.add(item.ref)
        for ref in sorted(item.references):
            target = by_ref.get(ref)
            if target is not None:
                place(target)
        visiting.discard(item.ref)
        placed.add(item.ref)
        out.append(item)

    for item in ordered:
        place(item)
    return out


# --- background tasks ---

_deliverers: dict[int, Deliverer] = {}


@register("sync.deliver")
def deliver(engine: Engine, settings: Settings) -> bool:
    deliverer = _deliverers.get(id(engine))
    if deliverer is None or deliverer.engine is not engine:
        deliverer = _deliverers[id(engine)] = Deliverer(engine, settings)
    return deliverer.run_once()


@register("sync.upkeep")
def upkeep(engine: Engine, settings: Settings) -> bool:
    """Backfills new connections and refreshes capabilities (cheap: one query when there is nothing to do)."""
    return connections.upkeep(engine, settings, now=utcnow())
