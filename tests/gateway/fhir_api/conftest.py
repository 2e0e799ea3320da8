"""FHIR API fixtures: a clinic with records pushed through the records API, and /fhir bearer tokens.

``ehr_token`` is an ``ehr`` client's token with ``system/*.read`` for the clinic; ``fhir_token(...)``
makes tokens with other scopes, clinics or a patient context (rows written through the token table, as
the authorization server writes them).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from support.tokens import write_token

from gateway.core.config import Settings
from tests.gateway.fhir_api.fhir_data import PATIENTS, put_records


@pytest.fixture
def fhir_token(engine: Engine, settings: Settings) -> Callable[..., str]:
    def make(
        scope: str = "system/*.read",
        *,
        clinics: tuple[str, ...] = ("clinic-a",),
        kind: str = "ehr",
        patient: str | None = None,
    ) -> str:
        return write_token(engine, settings, scope=scope, clinics=clinics, kind=kind, patient=patient)

    return make


@pytest.fixture
def ehr_token(clinic, client: TestClient, engine: Engine) -> str:
    """A real SMART Backend Services token: an ehr client registered with the synthetic keys of
    fixtures/keys, granted the clinic, and a private_key_jwt client_credentials request for system/*.read."""
    from support.smart import backend_token, register_ehr_client

    ehr = register_ehr_client(engine, clinics=(clinic.slug,), scope="system/*.read")
    return backend_token(client, ehr, scope="system/*.read")


@pytest.fixture
def fhir(client: TestClient, ehr_token: str) -> Callable[..., object]:
    """GET a /fhir path with the ehr token."""

    def get(path: str, **kwargs):
        headers = {"Authorization": f"Bearer {ehr_token}", **kwargs.pop("headers", {})}
        return client.get(f"/fhir/{path}", headers=headers, **kwargs)

    return get


@pytest.fixture
def small_clinic(clinic) -> object:
    """Three patients with sessions, vitals, an assessment and an adverse event."""
    records: list[tuple[str, str, dict]] = [("patients", key, value) for key, value in PATIENTS.items()]
    records += [
        ("practitioners", "dr1", {"name": "Dr Jane Doe", "npi": "1234567893"}),
        (
            "sessions",
            "s1",
            {
                "patient_id": "p1",
                "kind": "dosing",
                "start": "2026-11-02T10:00:00Z",
                "end": "2026-11-02T12:00:00Z",
                "practitioner_id": "dr1",
                "modality": "iv",
                "status": "completed",
            },
        ),
        (
            "sessions",
            "s2",
            {
                "patient_id": "p1",
                "kind": "integration",
                "start": "2026-11-09T10:00:00Z",
                "end": "2026-11-09T11:00:00Z",
                "status": "completed",
            },
        ),
        (
            "sessions",
            "s3",
            {"patient_id": "p2", "kind": "preparation", "start": "2026-10-20T09:00:00Z", "status": "planned"},
        ),
        (
            "vitals",
            "v1",
            {
                "patient_id": "p1",
                "session_id": "s1",
                "taken_at": "2026-11-02T10:05:00Z",
                "systolic": 120,
                "diastolic": 80,
                "heart_rate": 70,
                "phase": "baseline",
            },
        ),
        (
            "vitals",
            "v2",
            {
                "patient_id": "p1",
                "session_id": "s1",
                "taken_at": "2026-11-02T11:00:00Z",
                "heart_rate": 88,
                "phase": "during",
            },
        ),
        ("vitals", "v3", {"patient_id": "p2", "taken_at": "2026-10-20T09:10:00Z", "heart_rate": 64}),
        (
            "doses",
            "d1",
            {
                "session_id": "s1",
                "medication": "ketamine",
                "route": "iv",
                "dose_mg": 35,
                "administered_at": "2026-11-02T10:10:00Z",
                "infusion_minutes": 40,
                "end": "2026-11-02T10:50:00Z",
            },
        ),
        (
            "assessments",
            "a1",
            {
                "patient_id": "p1",
                "instrument": "phq9",
                "taken_at": "2026-11-01T09:00:00Z",
                "items": {str(i): 1 for i in range(1, 10)},
            },
        ),
        (
            "adverse-events",
            "ae1",
            {
                "patient_id": "p1",
                "session_id": "s1",
                "event": "nausea",
                "severity": "mild",
                "onset": "2026-11-02T10:30:00Z",
            },
        ),
    ]
    put_records(clinic, records)
    return clinic
