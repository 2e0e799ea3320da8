"""In-memory clause matching (``gateway.store.matching``) agrees with the SQL search over the index, for
each kind of clause and prefix, on the demo clinic's resources (both databases)."""

from __future__ import annotations

from datetime import date, datetime
from urllib.parse import parse_qsl

import orjson
import pytest
from sqlalchemy import select
from sqlmodel import Session

from gateway.db.repositories.fhir_search import access_filter
from gateway.db.repositories.resources import RESOURCE
from gateway.demo import load_demo
from gateway.store.matching import rule_matches
from gateway.store.search_index import index_rows
from gateway.store.search_query import parse_search

QUERIES = [
    ("Observation", "category=vital-signs"),
    ("Observation", "category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs"),
    ("Observation", "code=http://loinc.org|"),
    ("Observation", "code=|8867-4"),
    ("Observation", "status=final,amended&category=survey"),
    ("Observation", "date=ge2026-01-20"),
    ("Observation", "date=lt2026-01-20"),
    ("Observation", "date=2026-01"),
    ("Observation", "date=ne2026-01"),
    ("Observation", "date=sa2026-01-10&date=eb2026-02-01"),
    ("Observation", "_lastUpdated=gt2000-01-01"),
    ("Encounter", "status=finished"),
    ("Encounter", "class=AMB"),
    ("Patient", "gender=female"),
    ("Patient", "name=a"),
    ("Patient", "family:exact=Testperson"),
    ("Patient", "given:contains=e"),
    ("Patient", "birthdate=le1990"),
]


@pytest.fixture
def store(engine, settings) -> Session:
    with Session(engine, expire_on_commit=False) as session:
        load_demo(session, settings, slug="demo", patients=2, seed=4, start=date(2026, 1, 5))
    return engine


@pytest.mark.parametrize(("resource_type", "query"), QUERIES, ids=[f"{t}?{q}" for t, q in QUERIES])
def test_memory_matches_what_sql_matches(store, resource_type, query) -> None:
    clauses = parse_search(resource_type, parse_qsl(query), strict=True).clauses
    with Session(store) as session:
        connection = session.connection()
        rows = list(
            connection.execute(
                select(
                    RESOURCE.c.id, RESOURCE.c.resource_id, RESOURCE.c.last_updated, RESOURCE.c.content
                ).where(RESOURCE.c.resource_type == resource_type)
            )
        )
        by_sql = {
            r.resource_id
            for r in connection.execute(
                select(RESOURCE.c.resource_id).where(
                    RESOURCE.c.resource_type == resource_type, access_filter(resource_type, [clauses])
                )
            )
        }
    assert rows
    in_memory = {
        r.resource_id
        for r in rows
        if rule_matches(
            [clauses],
            index_rows(r.id, orjson.loads(r.content)),
            resource_id=r.resource_id,
            last_updated=r.last_updated,
        )
    }
    assert in_memory == by_sql


def test_empty_and_unconstrained_rules() -> None:
    rows = index_rows(1, {"resourceType": "Patient", "id": "x", "gender": "male"})
    now = datetime.now().astimezone()
    assert not rule_matches([], rows, resource_id="x", last_updated=now)
    assert rule_matches([()], rows, resource_id="x", last_updated=now)
    gender = parse_search("Patient", [("gender", "female")]).clauses
    assert not rule_matches([gender], rows, resource_id="x", last_updated=now)
    assert rule_matches([gender, ()], rows, resource_id="x", last_updated=now)
