"""Migration 0004 fills the record reference columns from the records' JSON, on both backends, also for a
row whose JSON holds a NUL (which PostgreSQL cannot read with ``data->>``)."""

from __future__ import annotations

import json

from sqlalchemy import text

from gateway.db.migrate import downgrade, upgrade

ROWS = [
    # (id, kind, external id, patient, data)
    (1, "patients", "pat-001", "pat-001", {"given_name": "Avery"}),
    (2, "practitioners", "prac-001", None, {"name": "Dr. Example"}),
    (3, "sessions", "ses-001", "pat-001", {"patient_id": "pat-001", "practitioner_id": "prac-001"}),
    (4, "doses", "dose-001", "pat-001", {"session_id": "ses-001", "lot_number": "KET\u000024A17"}),
    (
        5,
        "assessments",
        "asm-001",
        "pat-001",
        {"patient_id": "pat-001", "session_id": "ses-001", "rater_id": "prac-001"},
    ),
    (
        6,
        "adverse-events",
        "ae-001",
        "pat-001",
        {"patient_id": "pat-001", "session_id": "ses-001", "dose_id": "dose-001"},
    ),
]
EXPECTED = {
    "pat-001": (None, None, None),
    "prac-001": (None, None, None),
    "ses-001": (None, "prac-001", None),
    "dose-001": ("ses-001", None, None),
    "asm-001": ("ses-001", "prac-001", None),
    "ae-001": ("ses-001", None, "dose-001"),
}


def test_upgrade_fills_reference_columns_from_json(engine) -> None:
    downgrade(engine, "0003")
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO clinic (id, slug, name, created_at) VALUES (1, 'c', 'C', CURRENT_TIMESTAMP)")
        )
        for pk, kind, external_id, patient, data in ROWS:
            connection.execute(
                text(
                    "INSERT INTO record (id, clinic_pk, kind, external_id, patient_external_id, data, "
                    "content_hash, created_at, updated_at) VALUES (:id, 1, :kind, :external_id, :patient, "
                    ":data, 'x', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {
                    "id": pk,
                    "kind": kind,
                    "external_id": external_id,
                    "patient": patient,
                    "data": json.dumps(data),
                },
            )
    upgrade(engine)
    with engine.connect() as connection:
        found = {
            row.external_id: (row.session_external_id, row.practitioner_external_id, row.dose_external_id)
            for row in connection.execute(
                text(
                    "SELECT external_id, session_external_id, practitioner_external_id, dose_external_id "
                    "FROM record"
                )
            )
        }
    assert found == EXPECTED
