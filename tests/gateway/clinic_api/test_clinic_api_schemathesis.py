"""Property-based tests of the clinic API from its own OpenAPI document (schemathesis).

Every /api/v1 operation is called with generated inputs (valid and invalid), authenticated as a
clinic that has a few records to reference; no response may be a 5xx or break the documented
schema, and a body the schema rejects must get 4xx. Runs on each database backend. (schemathesis' pytest plugin does not work with pytest 9's
fixtures here, so the operations are driven through hypothesis directly.)
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from sqlmodel import Session

from gateway.app import create_app
from gateway.auth.clients import create_admin_client
from gateway.clinic_api.examples import RECORD_EXAMPLES
from gateway.core.config import Settings
from mappings.records import ALL_KINDS


def test_clinic_api_never_5xx_and_matches_schema(make_clinic, client) -> None:
    clinic = make_clinic("fuzz")
    for kind in ("patients", "practitioners", "sessions", "doses"):  # give references something to hit
        external_id, record = RECORD_EXAMPLES[kind]
        assert clinic.put(kind, external_id, record).status_code == 201
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app).include(
        path_regex="^/(api/v1|admin/sync)/"
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    # writable kinds, read-only imported kinds, batch; EHR sync state per kind, referral import, admin x 3
    assert len(operations) == 7 * 5 + 3 * 3 + 1 + len(ALL_KINDS) + 1 + 3
    admin = _admin_token(client)
    for operation in operations:
        token = admin if operation.path.startswith("/admin/") else clinic.token

        @given(case=operation.as_strategy())
        @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def call(case) -> None:
            case.call_and_validate(
                headers={"Authorization": f"Bearer {token}"},  # noqa: B023 (call() runs at once)
                # the records' cross-field rules (a total equal to the computed one, birth year >= 1900 ...)
                # are stricter than JSON Schema can say, so a schema-valid body may rightly get 422
                excluded_checks=[checks.positive_data_acceptance],
            )

        call()


def _admin_token(client) -> str:
    with Session(client.app.state.engine, expire_on_commit=False) as session:
        created = create_admin_client(session, name="fuzz admin")
    answer = client.post(
        "/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(created.client_id, created.client_secret),
    )
    return str(answer.json()["access_token"])


def test_openapi_documents_every_clinic_endpoint() -> None:
    app = create_app(Settings(database_url="sqlite:///:memory:"), migrate_sqlite=False)
    spec = app.openapi()
    for path, operations in spec["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            assert operation.get("summary"), f"{method} {path} has no summary"
            assert "401" in operation["responses"], f"{method} {path}"
            assert "422" in operation["responses"], f"{method} {path}"
            if method == "put":
                content = operation["requestBody"]["content"]["application/json"]
                assert content.get("examples") or content.get("example"), f"{method} {path} has no example"
