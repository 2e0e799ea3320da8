"""The OpenAPI document: security schemes and requirements, and examples that are what the server answers.

Every response example in the document is realized: the test sends the request the example stands for and
compares the answer with the example (literally, except for token values and timestamps, which are
compared by form). An example nobody knows how to realize fails the test, so none goes unchecked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session

from gateway.auth.clients import create_clinic_client
from gateway.clinic_api.examples import RECORD_EXAMPLES
from gateway.core.config import Settings
from gateway.db.tables import AccessTokenRow
from gateway.openapi import BATCH_EXAMPLE_KINDS, BEARER, OAUTH2, UNKNOWN_ID
from mappings.records import ALL_KINDS

#: operations outside /fhir that need a token: 7 per record kind with examples x 5, 3 x 3 other kinds,
#: the batch; EHR sync: GET /api/v1/<kind>/{id}/sync per kind, the referral import, /admin/sync x 3
PROTECTED_OPERATIONS = 7 * 5 + 3 * 3 + 1 + len(ALL_KINDS) + 1 + 3
KIND_ORDER = list(RECORD_EXAMPLES)  # patients, practitioners, sessions, doses, vitals, ... (dependency order)
GRANT = {"grant_type": "client_credentials"}


@pytest.fixture
def spec(client: TestClient) -> dict[str, Any]:
    return client.app.openapi()


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            yield path, method.upper(), operation


def test_security_schemes(spec) -> None:
    schemes = spec["components"]["securitySchemes"]
    assert schemes[BEARER] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes[BEARER]["description"],
    }
    flow = schemes[OAUTH2]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "/auth/token"
    assert set(flow["scopes"]) == {"clinic/records.write"}


def test_every_protected_operation_says_so(spec, client, clinic) -> None:
    """Every operation that answers 401 without a token declares a security requirement, and no other does."""
    checked = 0
    for path, method, operation in operations(spec):
        url = path.replace("{external_id}", "pat-001")
        response = client.request(method, url)
        if response.status_code == 401 and path != "/auth/token":
            # /fhir takes any bearer token (its SMART scopes are judged per resource type)
            # (/admin takes an admin client's token, which has no clinic records scope)
            scopes = [] if path.startswith(("/fhir", "/admin")) else ["clinic/records.write"]
            assert operation.get("security") == [{BEARER: []}, {OAUTH2: scopes}], (method, path)
            checked += not path.startswith("/fhir")
        else:
            assert "security" not in operation, (method, path)
    assert checked == PROTECTED_OPERATIONS


def test_no_413_without_a_body(spec) -> None:
    for path, method, operation in operations(spec):
        if method in {"GET", "DELETE"}:
            assert "413" not in operation["responses"], (method, path)
        elif path.startswith("/api/v1/"):
            assert "413" in operation["responses"], (method, path)


def test_the_token_endpoint_documents_oauth_errors_not_422(spec) -> None:
    responses = spec["paths"]["/auth/token"]["post"]["responses"]
    assert set(responses) == {"200", "400", "401", "429"}
    assert "Retry-After" in responses["429"]["headers"]


# --- realizing the examples --------------------------------------------------------------------------------

TOKEN_VALUE = re.compile(r"^[A-Za-z0-9_-]{43}$")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]00:00)$")


def comparable(value: Any) -> Any:
    """Token values and timestamps by form; the throttle's seconds as a number."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "access_token" and isinstance(item, str) and TOKEN_VALUE.match(item):
                item = "<token>"
            elif key in {"created_at", "updated_at"} and isinstance(item, str) and TIMESTAMP.match(item):
                item = "<timestamp>"
            elif key == "error_description" and isinstance(item, str):
                item = re.sub(r"retry after \d+ s", "retry after <n> s", item)
            out[key] = comparable(item)
        return out
    if isinstance(value, list):
        return [comparable(item) for item in value]
    return value


class Realizer:
    """Sends, for a documented example, the request it stands for (fresh clinics where state matters)."""

    def __init__(self, client: TestClient, make_clinic, engine, settings: Settings) -> None:
        self.client = client
        self.make_clinic = make_clinic
        self.engine = engine
        self.settings = settings
        self.clinic = make_clinic("docs")
        self.count = 0
        self.by_name: dict[str, Callable[[str, str], httpx.Response]] = {
            "missing-token": lambda path, method: client.request(method, self.url(path), **self.body(method)),
            "invalid-token": lambda path, method: client.request(
                method, self.url(path), headers={"Authorization": "Bearer nope"}, **self.body(method)
            ),
            "not-a-clinic-token": self.not_a_clinic_token,
            "unknown-record": lambda path, method: self.send(method, self.url(path, UNKNOWN_ID)),
            "bad-id": lambda path, method: self.send(method, self.url(path, "bad id!"), **self.body(method)),
            "bad-limit": lambda path, method: self.send(method, self.url(path) + "?limit=0"),
            "missing-fields": lambda path, method: self.send(method, self.url(path), json={}),
            "item-answer": self.item_answer,
            "body-too-large": lambda path, method: self.send(
                method,
                self.url(path),
                content=b"[" + b" " * self.settings.max_body_bytes + b"]",
                headers={**self.clinic.headers, "Content-Type": "application/json"},
            ),
            "not-an-array": lambda path, method: self.send(method, self.url(path), json={}),
            "wrong-media-type": lambda path, method: self.send(
                method,
                self.url(path),
                content=b"{}",
                headers={**self.clinic.headers, "Content-Type": "text/plain"},
            ),
            "invalid-json": lambda path, method: self.send(
                method,
                self.url(path),
                content=b"{bad",
                headers={**self.clinic.headers, "Content-Type": "application/json"},
            ),
            "duplicate-key": lambda path, method: self.send(
                method,
                self.url(path),
                content=b'{"id": 1, "id": 2}',
                headers={**self.clinic.headers, "Content-Type": "application/json"},
            ),
            "created": lambda path, method: self.fresh_kind(path, "created"),
            "unchanged": lambda path, method: self.fresh_kind(path, "unchanged"),
            "record": lambda path, method: self.fresh_kind(path, "record"),
            "page": lambda path, method: self.fresh_kind(path, "page"),
            "referenced": self.referenced,
            "batch": self.batch,
            "token": lambda path, method: client.post(path, data=GRANT, auth=self.credentials()),
            "repeated-parameter": lambda path, method: client.post(
                path,
                content="grant_type=client_credentials&grant_type=client_credentials",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                auth=self.credentials(),
            ),
            "empty-scope": lambda path, method: client.post(
                path, data={**GRANT, "scope": ""}, auth=self.credentials()
            ),
            "unsupported-grant-type": lambda path, method: client.post(
                path, data={"grant_type": "password"}, auth=self.credentials()
            ),
            "scope-not-allowed": lambda path, method: client.post(
                path, data={**GRANT, "scope": "system/*.read"}, auth=self.credentials()
            ),
            "invalid-client": lambda path, method: client.post(
                path, data=GRANT, auth=(self.credentials()[0], "wrong")
            ),
            "throttled": self.throttled,
            "unknown-connection": lambda path, method: self.send(
                method, self.url(path), json={"connection": UNKNOWN_ID, "identifier": {"value": "MRN-0001"}}
            ),
            "not-an-admin-token": lambda path, method: self.send(method, path, **self.body(method)),
        }

    # helpers

    def url(self, path: str, external_id: str = "pat-001") -> str:
        return path.replace("{external_id}", external_id)

    def body(self, method: str) -> dict[str, Any]:
        return {"json": {}} if method in {"PUT", "POST"} else {}

    def send(self, method: str, url: str, clinic=None, **kwargs) -> httpx.Response:
        kwargs.setdefault("headers", (clinic or self.clinic).headers)
        return self.client.request(method, url, **kwargs)

    def fresh(self):
        self.count += 1
        return self.make_clinic(f"docs-{self.count}")

    def credentials(self) -> tuple[str, str]:
        return self.clinic.client_id, self.clinic.client_secret

    # state-dependent cases

    def not_a_clinic_token(self, path: str, method: str) -> httpx.Response:
        other = self.fresh()
        with Session(self.engine) as session:  # a token whose scope is not the clinic records scope
            session.execute(
                update(AccessTokenRow)
                .where(AccessTokenRow.clinic_pk == session.execute(_clinic_pk(other.slug)).scalar_one())
                .values(scope="system/Patient.rs")
            )
            session.commit()
        return self.send(method, self.url(path), clinic=other, **self.body(method))

    def item_answer(self, path: str, method: str) -> httpx.Response:
        _, record = RECORD_EXAMPLES["assessments"]
        items = {**record["items"], "9": 4}
        bad = {k: v for k, v in record.items() if k != "total"} | {"items": items}
        return self.send(method, self.url(path, "asm-001"), json=bad)

    def fresh_kind(self, path: str, case: str) -> httpx.Response:
        kind = path.split("/")[3]
        clinic = self.fresh()
        for before in KIND_ORDER[: KIND_ORDER.index(kind)]:
            assert clinic.put(before, *RECORD_EXAMPLES[before]).status_code == 201
        external_id, record = RECORD_EXAMPLES[kind]
        created = clinic.put(kind, external_id, record)
        if case == "created":
            return created
        if case == "unchanged":
            return clinic.put(kind, external_id, record)
        if case == "record":
            return clinic.get(f"/api/v1/{kind}/{external_id}")
        return clinic.get(f"/api/v1/{kind}")

    def referenced(self, path: str, method: str) -> httpx.Response:
        clinic = self.fresh()
        for kind in ("patients", "practitioners", "sessions"):
            assert clinic.put(kind, *RECORD_EXAMPLES[kind]).status_code == 201
        return self.send(method, self.url(path, RECORD_EXAMPLES["patients"][0]), clinic=clinic)

    def batch(self, path: str, method: str) -> httpx.Response:
        from gateway.clinic_api.routes import BATCH_EXAMPLE

        assert [entry["kind"] for entry in BATCH_EXAMPLE] == list(BATCH_EXAMPLE_KINDS)
        return self.send(method, path, clinic=self.fresh(), json=BATCH_EXAMPLE)

    def throttled(self, path: str, method: str) -> httpx.Response:
        with Session(self.engine, expire_on_commit=False) as session:
            created = create_clinic_client(session, clinic_slug=self.clinic.slug, name="throttled")
        for _ in range(self.settings.token_throttle_client_failures):
            assert self.client.post(path, data=GRANT, auth=(created.client_id, "wrong")).status_code == 401
        return self.client.post(path, data=GRANT, auth=(created.client_id, created.client_secret))


def _clinic_pk(slug: str):
    from sqlalchemy import select

    from gateway.db.tables import ClinicRow

    return select(ClinicRow.id).where(ClinicRow.slug == slug)


def documented_examples(spec: dict[str, Any]) -> Iterator[tuple[str, str, str, str, Any]]:
    for path, method, operation in operations(spec):
        for status, response in operation["responses"].items():
            for media in response.get("content", {}).values():
                if "example" in media:
                    yield path, method, status, "example", media["example"]
                for name, example in media.get("examples", {}).items():
                    yield path, method, status, name, example["value"]


def test_every_documented_example_is_what_the_server_answers(
    spec, client, make_clinic, engine, settings
) -> None:
    realizer = Realizer(client, make_clinic, engine, settings)
    checked: dict[str, int] = {}
    for path, method, status, name, example in documented_examples(spec):
        assert name in realizer.by_name, f"no way to check example {name!r} of {method} {path} {status}"
        response = realizer.by_name[name](path, method)
        where = f"{method} {path} {status} {name}"
        assert response.status_code == int(status), f"{where}: {response.status_code} {response.text}"
        assert response.headers["content-type"].startswith("application/json"), where
        assert comparable(response.json()) == comparable(example), where
        for header in operation_headers(spec, path, method, status):
            assert header.lower() in response.headers, f"{where}: no {header} header"
        checked[name] = checked.get(name, 0) + 1
    assert set(checked) == set(realizer.by_name)  # every kind of example occurs and was checked
    assert checked["missing-token"] == PROTECTED_OPERATIONS


def operation_headers(spec: dict[str, Any], path: str, method: str, status: str) -> list[str]:
    return list(spec["paths"][path][method.lower()]["responses"][status].get("headers", {}))
