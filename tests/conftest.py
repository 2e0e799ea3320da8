"""Test fixtures: every database test runs on SQLite and, when KAPGW_TEST_POSTGRES_URL is set, on PostgreSQL.

Each test session creates its own uniquely named PostgreSQL database (dropped at the end) and each
test starts from empty tables: SQLite tests get a fresh copy of a migrated database file,
PostgreSQL tests truncate every table first. When KAPGW_TEST_POSTGRES_URL is set but PostgreSQL
cannot be reached, the PostgreSQL tests fail; they are never skipped.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, SQLModel

from gateway.app import create_app
from gateway.auth.clients import create_clinic, create_clinic_client
from gateway.core.config import Settings
from gateway.db.engine import make_engine, normalize_url
from gateway.db.migrate import upgrade

pytest_plugins = ["support.fhir_validator"]  # the independent FHIR validator fixture

POSTGRES_URL = os.environ.get("KAPGW_TEST_POSTGRES_URL", "")
BACKENDS = ["sqlite", *(["postgresql"] if POSTGRES_URL else [])]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(Settings(database_url=f"sqlite:///{path}"))
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A uniquely named PostgreSQL database for this test session (worker), migrated, dropped at the end."""
    admin_url = make_url(normalize_url(POSTGRES_URL))
    name = f"kapgw_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:
        pytest.fail(
            f"KAPGW_TEST_POSTGRES_URL is set but PostgreSQL is unreachable: {type(error).__name__}: {error}"
        )
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(Settings(database_url=url))
    upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "gateway.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_database")
    engine = create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        env="test",
        database_url=database_url,
        base_url="http://testserver",
        identifier_base="https://gateway.test/id",
        log_json=False,
        in_process_worker=False,  # tests run background tasks explicitly (or start a loop themselves)
    )


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, migrate_sqlite=False)
    with TestClient(app) as test_client:
        yield test_client


@dataclass
class ClinicClient:
    """A clinic with a client and a bearer token; ``http`` carries the token."""

    slug: str
    client_id: str
    client_secret: str
    token: str
    http: TestClient

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def put(self, kind: str, external_id: str, record: dict, **kwargs):
        return self.http.put(f"/api/v1/{kind}/{external_id}", json=record, headers=self.headers, **kwargs)

    def get(self, path: str, **kwargs):
        return self.http.get(path, headers=self.headers, **kwargs)


@pytest.fixture
def make_clinic(client: TestClient, engine: Engine):
    def make(slug: str) -> ClinicClient:
        with Session(engine, expire_on_commit=False) as session:
            create_clinic(session, slug=slug, name=f"Clinic {slug}")
            created = create_clinic_client(session, clinic_slug=slug, name="test")
        response = client.post(
            "/auth/token",
            data={"grant_type": "client_credentials"},
            auth=(created.client_id, created.client_secret),
        )
        assert response.status_code == 200, response.text
        return ClinicClient(
            slug, created.client_id, created.client_secret, response.json()["access_token"], client
        )

    return make


@pytest.fixture
def clinic(make_clinic) -> ClinicClient:
    return make_clinic("clinic-a")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``@pytest.mark.backends("postgresql")`` keeps a database test to those backends: its other
    parametrizations are deselected (not skipped, so a run reports no skip for a test that cannot apply).
    In CI with KAPGW_TEST_POSTGRES_URL set, a run that would test nothing on PostgreSQL is an error."""
    kept, dropped = [], []
    for item in items:
        marker = item.get_closest_marker("backends")
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("database_url") if callspec is not None else None
        if marker is not None and backend is None:
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.backends needs a database test")
        (dropped if marker is not None and backend not in marker.args else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
    if (
        os.environ.get("CI") == "true"
        and POSTGRES_URL
        and not any("[postgresql" in item.nodeid for item in items)
    ):
        raise pytest.UsageError("KAPGW_TEST_POSTGRES_URL is set but no PostgreSQL test was collected")
