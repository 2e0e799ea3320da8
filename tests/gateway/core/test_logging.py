"""Logs carry request ids and no PHI; a 500 says 'internal error' with the request id only."""

from __future__ import annotations

import io
import json
import logging

from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.clinic_api.examples import RECORD_EXAMPLES
from gateway.core.logging import JsonFormatter


def test_request_logs_have_no_phi(clinic) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    try:
        record = RECORD_EXAMPLES["patients"][1]
        clinic.put("patients", "pat-001", record)
        clinic.put("patients", "pat-002", {**record, "sex": "bogus"})
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    text = stream.getvalue()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "gateway.access"]
    assert {line["status"] for line in access} >= {201, 422}
    assert all(line["request_id"] != "-" for line in access)
    for secret in ("Avery", "Testpatient", "1984-03-12", "MRN-000123", "avery@example.org"):
        assert secret not in text


def test_internal_error_hides_details(settings) -> None:
    app = create_app(settings, migrate_sqlite=False)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("patient Avery Testpatient exploded")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert "Avery" not in response.text
    assert response.json()["detail"].startswith("internal error (request id ")
    assert response.headers["x-request-id"] in response.json()["detail"]
