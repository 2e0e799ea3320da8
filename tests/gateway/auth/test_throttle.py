"""Failed /auth/token authentications are limited per client id and per client address, in the database."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlmodel import Session

from gateway.app import create_app
from gateway.auth.clients import create_clinic, create_clinic_client
from gateway.core.config import Settings
from gateway.db.tables import AuthThrottleRow

GRANT = {"grant_type": "client_credentials"}
WINDOW = 300


@pytest.fixture
def throttled_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "token_throttle_client_failures": 3,
            "token_throttle_address_failures": 5,
            "token_throttle_window_seconds": WINDOW,
        }
    )


@pytest.fixture
def app_factory(throttled_settings: Settings) -> Iterator:
    opened: list[TestClient] = []

    def make(address: str = "192.0.2.10") -> TestClient:
        test_client = TestClient(
            create_app(throttled_settings, migrate_sqlite=False), client=(address, 40000)
        )
        test_client.__enter__()
        opened.append(test_client)
        return test_client

    yield make
    for test_client in opened:
        test_client.__exit__(None, None, None)


@pytest.fixture
def clients(engine) -> list[tuple[str, str]]:
    """Two clients of one clinic: (client id, secret) each."""
    with Session(engine, expire_on_commit=False) as session:
        create_clinic(session, slug="clinic-a", name="Clinic A")
        created = [create_clinic_client(session, clinic_slug="clinic-a", name=f"c{i}") for i in range(2)]
    return [(c.client_id, c.client_secret) for c in created]


def token(http: TestClient, auth: tuple[str, str], data: dict | None = None):
    return http.post("/auth/token", data=GRANT if data is None else data, auth=auth)


def assert_throttled(response) -> int:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert response.json()["error"] == "slow_down"
    assert "retry after" in response.json()["error_description"]
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= WINDOW
    return retry_after


def age_windows(engine, seconds: int) -> None:
    """Moves every counter's window start into the past (as if time had passed)."""
    with Session(engine) as session:
        for row in session.execute(select(AuthThrottleRow)).scalars().all():
            row.window_start = row.window_start - timedelta(seconds=seconds)
        session.commit()


def counters(engine) -> dict[str, int]:
    with Session(engine) as session:
        rows = session.execute(select(AuthThrottleRow)).scalars().all()
        return {f"{r.kind}": r.failures for r in rows if r.failures}


def test_the_limit_per_client_id(app_factory, clients) -> None:
    http = app_factory()
    client_id, secret = clients[0]
    for _ in range(3):
        assert token(http, (client_id, "wrong")).status_code == 401
    retry_after = assert_throttled(token(http, (client_id, "wrong")))
    assert retry_after > WINDOW - 30
    # while throttled even the right secret is refused (it is not even checked) ...
    assert_throttled(token(http, (client_id, secret)))
    # ... but the other client from the same address still gets its token
    assert token(http, clients[1]).status_code == 200


def test_unknown_client_ids_are_throttled_like_known_ones(app_factory, clients) -> None:
    http = app_factory()
    for _ in range(3):
        assert token(http, ("no-such-client", "x")).status_code == 401
    assert_throttled(token(http, ("no-such-client", "x")))


def test_refused_attempts_leave_no_trace(app_factory, clients, engine) -> None:
    http = app_factory()
    client_id, _ = clients[0]
    for _ in range(3):
        token(http, (client_id, "wrong"))
    for _ in range(10):
        assert_throttled(token(http, (client_id, "wrong")))
    assert counters(engine) == {"client": 3, "address": 3}


def test_the_limit_per_address(app_factory, clients) -> None:
    attacker = app_factory("198.51.100.7")
    for i in range(5):  # five different client ids, each below its own limit
        assert token(attacker, (f"guess-{i}", "x")).status_code == 401
    assert_throttled(token(attacker, (f"guess-{5}", "x")))
    assert_throttled(token(attacker, clients[0]))  # the address is blocked, whatever it sends
    elsewhere = app_factory("203.0.113.9")
    assert token(elsewhere, clients[0]).status_code == 200


def test_success_resets_the_client_id(app_factory, clients, engine) -> None:
    http = app_factory()
    client_id, secret = clients[0]
    for _ in range(2):
        assert token(http, (client_id, "wrong")).status_code == 401
    assert token(http, (client_id, secret)).status_code == 200
    assert counters(engine) == {"address": 2}  # the address keeps its two failures, the client id starts over
    for _ in range(3):
        assert token(http, (client_id, "wrong")).status_code == 401
    assert_throttled(token(http, (client_id, "wrong")))


def test_errors_after_authentication_are_no_failures(app_factory, clients, engine) -> None:
    http = app_factory()
    for _ in range(5):
        response = token(http, clients[0], {**GRANT, "scope": "system/*.read"})
        assert response.json()["error"] == "invalid_scope"
    assert counters(engine) == {}
    assert token(http, clients[0]).status_code == 200


def test_requests_refused_before_authentication_are_not_counted(app_factory, clients, engine) -> None:
    http = app_factory()
    client_id, _ = clients[0]
    for data in ({"grant_type": "password"}, {}, {**GRANT, "scope": ""}):
        assert token(http, (client_id, "wrong"), data).status_code == 400
    assert counters(engine) == {}


def test_the_window_ends(app_factory, clients, engine) -> None:
    http = app_factory()
    client_id, secret = clients[0]
    for _ in range(3):
        token(http, (client_id, "wrong"))
    assert_throttled(token(http, (client_id, secret)))
    age_windows(engine, WINDOW - 10)
    assert 1 <= assert_throttled(token(http, (client_id, secret))) <= 10
    age_windows(engine, 10)
    assert token(http, (client_id, "wrong")).status_code == 401  # a new window: one failure in it
    assert counters(engine) == {"client": 1, "address": 1}
    assert token(http, (client_id, secret)).status_code == 200


def test_the_limit_holds_across_app_instances(app_factory, clients) -> None:
    """Two gateway instances on one database (two processes behind a load balancer) share the counters."""
    first, second = app_factory(), app_factory()
    client_id, secret = clients[0]
    assert token(first, (client_id, "wrong")).status_code == 401
    assert token(second, (client_id, "wrong")).status_code == 401
    assert token(first, (client_id, "wrong")).status_code == 401
    assert_throttled(token(second, (client_id, "wrong")))
    assert_throttled(token(first, (client_id, secret)))


def test_parallel_guesses_do_not_overshoot_the_limit(app_factory, clients, engine) -> None:
    http = app_factory()
    client_id, _ = clients[0]
    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(lambda _: token(http, (client_id, "wrong")).status_code, range(8)))
    assert statuses == [401] * 3 + [429] * 5
    assert counters(engine) == {"client": 3, "address": 3}


def test_ended_windows_are_deleted(app_factory, clients, engine) -> None:
    http = app_factory()
    for i in range(4):
        token(http, (f"guess-{i}", "x"))
    age_windows(engine, WINDOW + 1)
    token(http, ("one-more", "x"))
    with Session(engine) as session:
        assert len(session.execute(select(AuthThrottleRow)).all()) == 2  # the new client id and address


def test_counters_do_not_store_the_id_or_address(app_factory, engine) -> None:
    http = app_factory("192.0.2.55")
    token(http, ("a-client-id", "x"))
    with Session(engine) as session:
        keys = [row.key_hash for row in session.execute(select(AuthThrottleRow)).scalars()]
    assert len(keys) == 2 and all(len(k) == 64 for k in keys)
    assert not any("a-client-id" in k or "192.0.2.55" in k for k in keys)


def test_disabled_client_failures_count(app_factory, clients, engine) -> None:
    from gateway.db.tables import ClientRow

    with Session(engine) as session:
        session.execute(update(ClientRow).where(ClientRow.client_id == clients[0][0]).values(disabled=True))
        session.commit()
    http = app_factory()
    for _ in range(3):
        assert token(http, clients[0]).status_code == 401
    assert_throttled(token(http, clients[0]))
