"""/fhir read and search answered from the read cache (gateway/fhir_api/cached_answers.py, read_cache.py,
service.read_cached / search_cached) through the app, on PostgreSQL, where the cache and its change
listener run: hits give the database's answer (body, ETag, Last-Modified, 304), every write is seen (this
process's at once, another process's within a bounded wait), token grants are checked on every hit, and
every answer is audited. SQLite, and ``fhir_cache_mb=0``, never cache."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import Engine
from sqlmodel import Session
from support.changes import wait_until
from support.smart import backend_token, register_ehr_client

from gateway.app import create_app
from gateway.core.config import Settings
from gateway.db.engine import normalize_url
from gateway.db.tables import AuditEventRow
from gateway.fhir_api.access import AccessCache
from gateway.fhir_api.read_cache import ReadCache
from gateway.store.changes import ChangeListener
from tests.gateway.fhir_api.fhir_data import FHIR_JSON, PATIENTS, fhir_id

P1 = fhir_id("clinic-a", "patients", "p1")
P2 = fhir_id("clinic-a", "patients", "p2")
P3 = fhir_id("clinic-a", "patients", "p3")
WAIT = 5.0  # seconds another process's commit may take to reach the cache
VITALS = {"patient": P1, "category": "vital-signs"}


@dataclass
class Cached:
    """The app's read cache and change listener, an engine standing for another process, an EHR's token."""

    http: TestClient
    cache: ReadCache
    listener: ChangeListener
    other_process: Engine
    ehr_client: str
    token: str

    def get(self, path: str, token: str | None = None, **kwargs):
        headers = {"Authorization": f"Bearer {token or self.token}", **kwargs.pop("headers", {})}
        return self.http.get(f"/fhir/{path}", headers=headers, **kwargs)

    def settle(self) -> None:
        """Waits until the listener has told the cache of every commit so far, so that no late notification
        drops an entry a test is about to count on. Notifications arrive in commit order: once a marker
        notified now has dropped a probe entry that depends on the marker's type, all earlier ones arrived.
        """
        marker = f"Marker{uuid.uuid4().hex}"
        probe = ("probe", marker)
        wait_until(
            lambda: self.cache.put(probe, b"", 0, (marker,), self.cache.snapshot()),
            WAIT,
            "a probe entry kept",
        )
        with self.other_process.begin() as connection:
            connection.execute(text(f"NOTIFY kapgw_resource, '{marker}/1'"))
        wait_until(lambda: self.cache.get(probe) is None, WAIT, "the marker notification")

    @property
    def hits(self) -> int:
        return self.cache.stats.hits


@pytest.fixture
def cached(client: TestClient, small_clinic, engine: Engine, database_url: str) -> Iterator[Cached]:
    state = client.app.state
    cache, listener = state.fhir_read_cache, state.change_listener
    assert isinstance(cache, ReadCache) and isinstance(listener, ChangeListener)
    assert listener.listening.wait(WAIT), "the change listener never listened"
    # the middleware answers only tokens the AccessCache resolved within its ttl: a long one, so that a slow
    # machine does not turn an expected hit into a route answer
    state.fhir_access_cache = AccessCache(ttl=300)
    ehr = register_ehr_client(engine, clinics=("clinic-a",), scope="system/*.read system/*.rs")
    other_process = create_engine(normalize_url(database_url))
    try:
        yield Cached(
            client, cache, listener, other_process, ehr, backend_token(client, ehr, scope="system/*.rs")
        )
    finally:
        other_process.dispose()


def assert_outcome(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == code, body


def ids(bundle: dict, resource_type: str | None = None) -> set[str]:
    return {
        e["resource"]["id"]
        for e in bundle.get("entry", [])
        if resource_type is None or e["resource"]["resourceType"] == resource_type
    }


def read_twice(cached: Cached, path: str):
    """The first read fills the cache (from the database), the second is a hit."""
    cached.settle()
    stored = cached.cache.stats.stored
    first = cached.get(path)
    assert first.status_code == 200, first.text
    assert cached.cache.stats.stored == stored + 1, "the first read was not kept"
    hits = cached.hits
    second = cached.get(path)
    assert cached.hits == hits + 1, "the second read was not answered from the cache"
    return first, second


@pytest.mark.backends("postgresql")
def test_a_second_read_is_a_hit_with_the_same_answer(cached: Cached) -> None:
    first, second = read_twice(cached, f"Patient/{P1}")
    assert second.status_code == 200
    assert second.content == first.content
    assert second.headers["content-type"] == first.headers["content-type"]
    assert second.headers["content-type"].startswith(FHIR_JSON)
    assert second.headers["etag"] == first.headers["etag"] == 'W/"1"'
    assert second.headers["last-modified"] == first.headers["last-modified"]
    assert second.json()["id"] == P1


@pytest.mark.backends("postgresql")
def test_if_none_match_answers_304_from_the_cache(cached: Cached) -> None:
    first, _ = read_twice(cached, f"Patient/{P1}")
    hits = cached.hits
    response = cached.get(f"Patient/{P1}", headers={"If-None-Match": first.headers["etag"]})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == first.headers["etag"]
    assert response.headers["last-modified"] == first.headers["last-modified"]
    assert cached.hits == hits + 1
    assert cached.get(f"Patient/{P1}", headers={"If-None-Match": 'W/"7"'}).content == first.content


@pytest.mark.backends("postgresql")
def test_an_update_through_the_clinic_api_is_seen_by_the_next_read(cached: Cached, small_clinic) -> None:
    read_twice(cached, f"Patient/{P1}")
    changed = {**PATIENTS["p1"], "family_name": "King"}
    assert small_clinic.put("patients", "p1", changed).status_code == 200
    response = cached.get(f"Patient/{P1}")  # no wait: this process's commit told the cache before returning
    assert response.status_code == 200
    assert response.json()["meta"]["versionId"] == "2"
    assert response.json()["name"][0]["family"] == "King"
    assert response.headers["etag"] == 'W/"2"'
    old = cached.get(f"Patient/{P1}", headers={"If-None-Match": 'W/"1"'})
    assert old.status_code == 200 and old.json()["name"][0]["family"] == "King"


@pytest.mark.backends("postgresql")
def test_this_process_s_commit_tells_the_cache_before_it_returns(
    settings: Settings, small_clinic, ehr_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no change listener (so no NOTIFY can tell it), the cache is still told of this process's write
    by the commit itself: the next read never gets the old version."""
    app = create_app(settings, migrate_sqlite=False)
    cache = app.state.fhir_read_cache
    monkeypatch.setattr(app.state.change_listener, "start", lambda: None)
    monkeypatch.setattr(app.state.change_listener, "stop", lambda: None)
    headers = {"Authorization": f"Bearer {ehr_token}"}
    with TestClient(app) as http:
        app.state.fhir_access_cache = AccessCache(ttl=300)
        cache.enable()  # what the listener does once it listens
        assert http.get(f"/fhir/Patient/{P1}", headers=headers).status_code == 200
        hits = cache.stats.hits
        assert http.get(f"/fhir/Patient/{P1}", headers=headers).headers["etag"] == 'W/"1"'
        assert cache.stats.hits == hits + 1
        changed = {**PATIENTS["p1"], "family_name": "King"}
        response = http.put("/api/v1/patients/p1", json=changed, headers=small_clinic.headers)
        assert response.status_code == 200
        fresh = http.get(f"/fhir/Patient/{P1}", headers=headers)
        assert fresh.headers["etag"] == 'W/"2"' and fresh.json()["name"][0]["family"] == "King"


@pytest.mark.backends("postgresql")
def test_a_change_by_another_process_is_seen_within_a_bounded_wait(cached: Cached) -> None:
    first, _ = read_twice(cached, f"Patient/{P1}")
    patient = first.json()
    patient["name"][0]["family"] = "Byron"
    patient["meta"]["versionId"] = "2"
    with cached.other_process.begin() as connection:
        updated = connection.execute(
            text(
                "UPDATE resource SET content = :content, version_id = 2"
                " WHERE resource_type = 'Patient' AND resource_id = :id"
            ),
            {"content": orjson.dumps(patient), "id": P1},
        ).rowcount
    assert updated == 1

    def fresh():
        response = cached.get(f"Patient/{P1}")
        return response if response.headers["etag"] == 'W/"2"' else None

    response = wait_until(fresh, WAIT, "another process's update in the read")
    assert response.json()["name"][0]["family"] == "Byron"
    cached.settle()
    assert cached.get(f"Patient/{P1}").json()["name"][0]["family"] == "Byron"  # and never the old one again


@pytest.mark.backends("postgresql")
def test_a_search_is_cached_and_a_new_vital_sign_shows_up_next(cached: Cached, small_clinic) -> None:
    cached.settle()
    stored = cached.cache.stats.stored
    first = cached.get("Observation", params=VITALS)
    assert first.status_code == 200 and cached.cache.stats.stored == stored + 1
    hits = cached.hits
    second = cached.get("Observation", params=VITALS)
    assert cached.hits == hits + 1
    assert second.content == first.content
    assert second.headers["content-type"].startswith(FHIR_JSON)
    before = ids(first.json(), "Observation")
    assert before
    vital = {"patient_id": "p1", "taken_at": "2026-11-03T09:00:00Z", "heart_rate": 77}
    assert small_clinic.put("vitals", "v9", vital).status_code == 201
    after = cached.get("Observation", params=VITALS).json()
    assert ids(after, "Observation") > before
    for entry in after["entry"]:
        if entry["resource"]["resourceType"] == "Observation":
            assert entry["resource"]["subject"]["reference"] == f"Patient/{P1}"


@pytest.mark.backends("postgresql")
def test_a_search_with_an_include_sees_a_change_of_the_included_type(cached: Cached, small_clinic) -> None:
    params = {**VITALS, "_include": "Observation:patient"}
    cached.settle()
    cached.get("Observation", params=params)
    hits = cached.hits
    first = cached.get("Observation", params=params)
    assert cached.hits == hits + 1
    assert P1 in ids(first.json(), "Patient")
    assert small_clinic.put("patients", "p1", {**PATIENTS["p1"], "family_name": "King"}).status_code == 200
    after = cached.get("Observation", params=params).json()
    patient = next(e["resource"] for e in after["entry"] if e["resource"]["resourceType"] == "Patient")
    assert patient["name"][0]["family"] == "King"


@pytest.mark.backends("postgresql")
def test_a_token_of_another_clinic_gets_404_for_a_cached_resource(
    cached: Cached, engine: Engine, make_clinic
) -> None:
    make_clinic("clinic-b")
    other = backend_token(cached.http, register_ehr_client(engine, clinics=("clinic-b",), name="B"))
    read_twice(cached, f"Patient/{P1}")
    for _ in range(2):  # the token's first request resolves it, the second meets the cached row
        assert_outcome(cached.get(f"Patient/{P1}", token=other), 404, "not-found")
    cached.get("Patient", params={"_count": "100"})
    for _ in range(2):
        response = cached.get("Patient", token=other, params={"_count": "100"})
        assert response.status_code == 200
        assert not ids(response.json()) & {P1, P2, P3}
    assert cached.get(f"Patient/{P1}").status_code == 200  # the granted token still reads it


@pytest.mark.backends("postgresql")
def test_a_token_without_the_type_gets_403_for_a_cached_resource(cached: Cached) -> None:
    narrow = backend_token(cached.http, cached.ehr_client, scope="system/Observation.rs")
    read_twice(cached, f"Patient/{P1}")
    cached.get("Patient")
    cached.get("Patient")
    for _ in range(2):
        assert_outcome(cached.get(f"Patient/{P1}", token=narrow), 403, "forbidden")
        assert_outcome(cached.get("Patient", token=narrow), 403, "forbidden")


@pytest.mark.backends("postgresql")
def test_a_patient_context_token_sees_only_its_patient_though_others_are_cached(
    cached: Cached, fhir_token
) -> None:
    """A patient/ scope constrains the type, which only the search index can check: a cached row is never
    handed to such a token without that check (P2's row is cached, and still 404 for P1's token)."""
    first, _ = read_twice(cached, f"Patient/{P1}")
    read_twice(cached, f"Patient/{P2}")
    cached.get("Observation", params={"category": "vital-signs"})
    cached.get("Observation", params={"category": "vital-signs"})  # the whole clinic's vitals, cached
    token = fhir_token("patient/*.rs", kind="app", patient=P1)
    for _ in range(2):  # the token's first request resolves it, the second meets the middleware
        response = cached.get(f"Patient/{P1}", token=token)
        assert response.status_code == 200 and response.content == first.content
        assert_outcome(cached.get(f"Patient/{P2}", token=token), 404, "not-found")
        bundle = cached.get("Observation", token=token, params={"category": "vital-signs"}).json()
        subjects = {e["resource"]["subject"]["reference"] for e in bundle["entry"]}
        assert subjects == {f"Patient/{P1}"}
    other = fhir_token("patient/*.rs", kind="app", patient=P2)
    bundle = cached.get("Observation", token=other, params={"category": "vital-signs"}).json()
    assert {e["resource"]["subject"]["reference"] for e in bundle["entry"]} == {f"Patient/{P2}"}


@pytest.mark.backends("postgresql")
def test_each_read_counts_once_in_the_stats(cached: Cached, fhir_token) -> None:
    """``stats`` says how many reads the cache answered: one request is one hit or one miss, whether the
    middleware or the route consulted the cache."""
    read_twice(cached, f"Patient/{P1}")  # the ehr token is now resolved: the middleware sees its reads
    stats = cached.cache.stats
    before = (stats.hits, stats.misses)
    assert cached.get(f"Patient/{P2}").status_code == 200  # not cached yet
    assert (stats.hits, stats.misses) == (before[0], before[1] + 1), "one miss counted twice"
    token = fhir_token("patient/*.rs", kind="app", patient=P1)
    assert cached.get(f"Patient/{P1}", token=token).status_code == 200  # resolves the token
    before = (stats.hits, stats.misses)
    assert cached.get(f"Patient/{P1}", token=token).status_code == 200
    assert (stats.hits, stats.misses) == (before[0] + 1, before[1]), "one hit counted twice"


@pytest.mark.backends("postgresql")
def test_cached_answers_are_audited(cached: Cached, engine: Engine) -> None:
    audit = cached.http.app.state.audit

    def fhir_events() -> list[tuple[str, str | None, str | None, str | None]]:
        audit.flush()
        with Session(engine) as session:
            rows = session.execute(
                select(AuditEventRow.action, AuditEventRow.resource_type, AuditEventRow.patient_id)
                .where(AuditEventRow.client_id == cached.ehr_client)
                .order_by(AuditEventRow.id)
            ).all()
        return [tuple(row) for row in rows]

    before = len(fhir_events())
    read_twice(cached, f"Patient/{P1}")
    hits = cached.hits
    assert cached.get(f"Patient/{P1}").status_code == 200
    cached.get("Observation", params=VITALS)
    cached.get("Observation", params=VITALS)
    assert cached.hits == hits + 2
    assert fhir_events()[before:] == [
        ("read", "Patient", P1),
        ("read", "Patient", P1),
        ("read", "Patient", P1),
        ("search", "Observation", P1),
        ("search", "Observation", P1),
    ]


@pytest.mark.backends("postgresql")
def test_a_deleted_resource_answers_410_even_when_it_was_cached(cached: Cached, small_clinic) -> None:
    read_twice(cached, f"Patient/{P3}")
    response = small_clinic.http.delete("/api/v1/patients/p3", headers=small_clinic.headers)
    assert response.status_code in (200, 204)
    for _ in range(2):
        assert_outcome(cached.get(f"Patient/{P3}"), 410, "deleted")
    cached.settle()
    assert_outcome(cached.get(f"Patient/{P3}"), 410, "deleted")
    assert P3 not in ids(cached.get("Patient", params={"_count": "100"}).json())


@pytest.mark.backends("postgresql")
def test_a_change_while_the_channel_is_lost_is_never_served_stale(cached: Cached) -> None:
    """A notification sent while the listener is reconnecting never reaches it: the cache is off while the
    channel is down and starts empty when it is back, so the change is seen all the same."""
    first, _ = read_twice(cached, f"Patient/{P1}")
    old_pid = cached.listener.backend_pid
    with cached.other_process.begin() as connection:  # waits (up to 5 s) until the backend is gone
        terminated = connection.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": old_pid})
        assert terminated.scalar() is True
    patient = first.json()
    patient["meta"]["versionId"] = "5"
    with cached.other_process.begin() as connection:  # told to nobody in this process
        connection.execute(
            text("UPDATE resource SET content = :content, version_id = 5 WHERE resource_id = :id"),
            {"content": orjson.dumps(patient), "id": P1},
        )
    during = cached.get(f"Patient/{P1}")
    assert during.status_code == 200 and during.headers["etag"] == 'W/"5"'
    listener = cached.listener
    wait_until(
        lambda: listener.listening.is_set() and listener.backend_pid not in (None, old_pid),
        WAIT + listener.retry_seconds,
        "the listener listening again",
    )
    assert cached.cache.enabled
    after = cached.get(f"Patient/{P1}")
    assert after.headers["etag"] == 'W/"5"' and after.content == orjson.dumps(patient)


@pytest.mark.parametrize("fhir_cache_mb", [0, 64])
def test_the_cache_runs_only_on_postgresql_with_memory_for_it(settings: Settings, fhir_cache_mb) -> None:
    app = create_app(settings.model_copy(update={"fhir_cache_mb": fhir_cache_mb}), migrate_sqlite=False)
    app.state.engine.dispose()
    if settings.is_sqlite or fhir_cache_mb == 0:
        assert app.state.fhir_read_cache is None and app.state.change_listener is None
    else:
        assert isinstance(app.state.fhir_read_cache, ReadCache)
        assert app.state.fhir_read_cache.max_bytes == fhir_cache_mb * 1024 * 1024
        assert app.state.fhir_read_cache.ttl == settings.fhir_cache_ttl_seconds
        assert isinstance(app.state.change_listener, ChangeListener)
        assert not app.state.fhir_read_cache.enabled  # serves nothing before the listener listens


def test_without_a_cache_every_read_is_the_databases(settings: Settings, small_clinic, fhir_token) -> None:
    """SQLite, and PostgreSQL with ``fhir_cache_mb=0``: reads go to the routes and see each write."""
    app = create_app(settings.model_copy(update={"fhir_cache_mb": 0}), migrate_sqlite=False)
    headers = {"Authorization": f"Bearer {fhir_token('system/*.read')}"}
    with TestClient(app) as off:
        assert app.state.fhir_read_cache is None and app.state.change_listener is None
        first = off.get(f"/fhir/Patient/{P1}", headers=headers)
        assert first.status_code == 200 and first.headers["etag"] == 'W/"1"'
        assert off.get(f"/fhir/Patient/{P1}", headers=headers).content == first.content
        changed = {**PATIENTS["p1"], "family_name": "King"}
        assert small_clinic.put("patients", "p1", changed).status_code == 200  # through the other app
        second = off.get(f"/fhir/Patient/{P1}", headers=headers)
        assert second.headers["etag"] == 'W/"2"' and second.json()["name"][0]["family"] == "King"
