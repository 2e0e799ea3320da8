"""OpenAPI request examples for each record kind (synthetic data only)."""

from __future__ import annotations

from typing import Any

RECORD_EXAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    "patients": (
        "pat-001",
        {
            "given_name": "Avery",
            "family_name": "Testpatient",
            "birth_date": "1984-03-12",
            "sex": "female",
            "identifiers": [{"system": "urn:oid:2.16.840.1.113883.19.5", "value": "MRN-000123"}],
            "phone": "+1 555 0100",
            "email": "avery@example.org",
            "address": {
                "line": ["1 Example Way"],
                "city": "Springfield",
                "state": "OR",
                "postal_code": "97477",
            },
        },
    ),
    "practitioners": (
        "prac-001",
        {"name": "Dr. Jordan Example", "given_name": "Jordan", "family_name": "Example", "npi": "1234567893"},
    ),
    "sessions": (
        "ses-001",
        {
            "patient_id": "pat-001",
            "kind": "dosing",
            "start": "2026-11-02T09:00:00-08:00",
            "end": "2026-11-02T11:00:00-08:00",
            "practitioner_id": "prac-001",
            "modality": "iv",
            "psychotherapy_minutes": 60,
            "status": "completed",
        },
    ),
    "doses": (
        "dose-001",
        {
            "session_id": "ses-001",
            "medication": "ketamine",
            "route": "iv",
            "dose_mg": 35.0,
            "administered_at": "2026-11-02T09:15:00-08:00",
            "end": "2026-11-02T09:55:00-08:00",
            "weight_kg": 70.0,
            "dose_mg_per_kg": 0.5,
            "infusion_minutes": 40,
            "lot_number": "KET-24A17",
            "form": "solution",
        },
    ),
    "vitals": (
        "vit-001",
        {
            "patient_id": "pat-001",
            "session_id": "ses-001",
            "phase": "baseline",
            "taken_at": "2026-11-02T09:05:00-08:00",
            "systolic": 124,
            "diastolic": 78,
            "heart_rate": 72,
            "spo2": 98,
            "resp_rate": 14,
        },
    ),
    "assessments": (
        "asm-001",
        {
            "patient_id": "pat-001",
            "instrument": "phq9",
            "taken_at": "2026-11-01T10:00:00-08:00",
            "items": {"1": 1, "2": 2, "3": 1, "4": 2, "5": 1, "6": 1, "7": 0, "8": 1, "9": 0},
            "total": 9,
        },
    ),
    "adverse-events": (
        "ae-001",
        {
            "patient_id": "pat-001",
            "session_id": "ses-001",
            "dose_id": "dose-001",
            "event": "nausea",
            "severity": "mild",
            "onset": "2026-11-02T09:40:00-08:00",
            "resolved_at": "2026-11-02T10:10:00-08:00",
        },
    ),
}

VALIDATION_ERROR_EXAMPLE = {
    "detail": [{"loc": ["body", "items", "9"], "msg": "answer out of range 0-3", "type": "item_answer"}]
}
