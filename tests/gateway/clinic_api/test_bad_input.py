"""Bad input to the records API: a clear 4xx naming the field, nothing written, nothing poisoned (issue 6).

Every case goes through HTTP on SQLite and PostgreSQL and checks the status, the content type, the error's
``loc`` path and type, and that the database holds exactly what it held before: the same record rows
(content and timestamps), resource versions, search-index and outbox rows.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text, update
from sqlmodel import Session, SQLModel, select

from gateway.clinic_api.examples import RECORD_EXAMPLES
from gateway.db.repositories.records import REFERENCE_COLUMNS
from gateway.db.tables import RecordRow
from mappings.records import ALL_KINDS, RECORD_KINDS

KINDS = list(RECORD_EXAMPLES)  # dependency order
#: tables a clinic write touches (a failed request must leave every one as it was)
WRITTEN_TABLES = [
    "record",
    "resource",
    "resource_version",
    "search_token",
    "search_reference",
    "search_date",
    "search_string",
    "outbox",
]


def example(kind: str) -> dict[str, Any]:
    return copy.deepcopy(RECORD_EXAMPLES[kind][1])


def snapshot(engine) -> dict[str, Any]:
    with Session(engine) as session:
        counts = {
            t: session.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one() for t in WRITTEN_TABLES
        }
        records = sorted(
            (r.kind, r.external_id, r.content_hash, r.updated_at.isoformat(), r.deleted_at is None)
            for r in session.exec(select(RecordRow))
        )
    return {"counts": counts, "records": records}


@pytest.fixture
def course(clinic, engine):
    """The clinic with one record of each kind (the examples), so references resolve."""
    batch = [{"kind": k, "id": RECORD_EXAMPLES[k][0], "record": RECORD_EXAMPLES[k][1]} for k in KINDS]
    response = clinic.http.post("/api/v1/batch", json=batch, headers=clinic.headers)
    assert response.status_code == 200, response.text
    return clinic


def send(clinic, kind: str, external_id: str, body: bytes, content_type: str = "application/json"):
    return clinic.http.put(
        f"/api/v1/{kind}/{external_id}",
        content=body,
        headers={**clinic.headers, "Content-Type": content_type},
    )


def assert_refused(response, status: int, loc: list | None = None, type_: str | None = None) -> list[dict]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    detail = response.json()["detail"]
    if loc is not None:
        found = {tuple(e["loc"]): e["type"] for e in detail}
        assert tuple(loc) in found, detail
        if type_ is not None:
            assert found[tuple(loc)] == type_, detail
    return detail


def assert_refused_unwritten(clinic, engine, kind: str, record: Any, loc: list, type_: str | None) -> None:
    """A PUT of ``record`` as a new record and over the existing example record: both refused, no change."""
    before = snapshot(engine)
    body = json.dumps(record).encode()
    for external_id in (f"{RECORD_EXAMPLES[kind][0]}-new", RECORD_EXAMPLES[kind][0]):
        assert_refused(send(clinic, kind, external_id, body), 422, loc, type_)
    assert snapshot(engine) == before


def with_value(record: dict, path: tuple, value: Any) -> dict:
    out = copy.deepcopy(record)
    target = out
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return out


# --- control characters ------------------------------------------------------------------------------------

#: every text field of every writable kind, with the record (example + what the field needs) to put it in
TEXT_FIELDS: list[tuple[str, tuple, dict[str, Any]]] = [
    ("patients", ("given_name",), {}),
    ("patients", ("family_name",), {}),
    ("patients", ("identifiers", 0, "system"), {}),
    ("patients", ("identifiers", 0, "value"), {}),
    ("patients", ("sex",), {}),
    ("patients", ("phone",), {}),
    ("patients", ("email",), {}),
    ("patients", ("address", "line", 0), {}),
    ("patients", ("address", "city"), {}),
    ("patients", ("address", "state"), {}),
    ("patients", ("address", "postal_code"), {}),
    ("patients", ("address", "country"), {"address": {"line": ["1 Example Way"], "country": "US"}}),
    ("practitioners", ("name",), {}),
    ("practitioners", ("given_name",), {}),
    ("practitioners", ("family_name",), {}),
    ("practitioners", ("npi",), {}),
    ("practitioners", ("qualification",), {"qualification": "MD"}),
    ("sessions", ("patient_id",), {}),
    ("sessions", ("practitioner_id",), {}),
    ("sessions", ("kind",), {}),
    ("sessions", ("modality",), {}),
    ("sessions", ("status",), {}),
    ("doses", ("session_id",), {}),
    ("doses", ("medication",), {}),
    ("doses", ("route",), {}),
    ("doses", ("lot_number",), {}),
    ("doses", ("form",), {}),
    ("doses", ("practitioner_id",), {"practitioner_id": "prac-001"}),
    ("doses", ("status",), {"status": "completed"}),
    ("vitals", ("patient_id",), {}),
    ("vitals", ("session_id",), {}),
    ("vitals", ("phase",), {}),
    ("assessments", ("patient_id",), {}),
    ("assessments", ("instrument",), {}),
    ("assessments", ("session_id",), {"session_id": "ses-001"}),
    ("assessments", ("rater_id",), {"rater_id": "prac-001"}),
    ("assessments", ("items", "1"), {"items": {"1": "LA6568-5"}, "total": None}),
    ("adverse-events", ("patient_id",), {}),
    ("adverse-events", ("session_id",), {}),
    ("adverse-events", ("dose_id",), {}),
    ("adverse-events", ("event",), {}),
    ("adverse-events", ("severity",), {}),
    ("adverse-events", ("note",), {"note": "felt queasy"}),
]


def _base(kind: str, extra: dict[str, Any]) -> dict[str, Any]:
    record = {**example(kind), **copy.deepcopy(extra)}
    return {k: v for k, v in record.items() if v is not None}


def _string_paths(schema: dict[str, Any], defs: dict[str, Any], prefix: tuple = ()) -> set[tuple]:
    """Paths of every string property in a JSON schema (list items as 0, dict values as "1")."""
    if "$ref" in schema:
        return _string_paths(defs[schema["$ref"].split("/")[-1]], defs, prefix)
    paths: set[tuple] = set()
    for option in schema.get("anyOf", []):
        paths |= _string_paths(option, defs, prefix)
    if schema.get("type") == "string" and schema.get("format") not in {"date", "date-time"}:
        paths.add(prefix)
    if "enum" in schema:
        paths.add(prefix)
    for name, sub in schema.get("properties", {}).items():
        paths |= _string_paths(sub, defs, (*prefix, name))
    if schema.get("type") == "array":
        paths |= _string_paths(schema.get("items", {}), defs, (*prefix, 0))
    if isinstance(schema.get("additionalProperties"), dict):
        paths |= _string_paths(schema["additionalProperties"], defs, (*prefix, "1"))
    return paths


def test_the_table_holds_every_text_field_of_every_writable_kind() -> None:
    for kind, model in RECORD_KINDS.items():
        schema = model.model_json_schema()
        expected = _string_paths(schema, schema.get("$defs", {}))
        listed = {path for k, path, _ in TEXT_FIELDS if k == kind}
        assert listed == expected, kind


@pytest.mark.parametrize(
    ("kind", "path", "extra"),
    [pytest.param(k, p, e, id=f"{k}.{'.'.join(map(str, p))}") for k, p, e in TEXT_FIELDS],
)
def test_nul_in_any_text_field_is_422_and_nothing_is_written(course, engine, kind, path, extra) -> None:
    base = _base(kind, extra)
    value = base
    for part in path:
        value = value[part]
    bad = with_value(base, path, value[:1] + "\x00" + value[1:])
    assert_refused_unwritten(course, engine, kind, bad, ["body", *path], "control_character")


@pytest.mark.parametrize(
    "character",
    [
        pytest.param("\x01", id="SOH"),
        pytest.param("\x0b", id="VT"),
        pytest.param("\x0c", id="FF"),
        pytest.param("\x1b", id="ESC"),
        pytest.param("\x7f", id="DEL"),
        pytest.param("\x85", id="NEL-C1"),
        pytest.param("\x9f", id="APC-C1"),
    ],
)
def test_every_control_character_but_tab_and_newline_is_refused(course, engine, character) -> None:
    bad = {**example("adverse-events"), "note": f"felt{character}queasy"}
    assert_refused_unwritten(course, engine, "adverse-events", bad, ["body", "note"], "control_character")


def test_a_control_character_in_a_key_is_refused(course, engine) -> None:
    items = {"1\x00": 1, **{str(n): 0 for n in range(2, 10)}}
    bad = {**example("assessments"), "items": items}
    bad.pop("total")
    assert_refused_unwritten(course, engine, "assessments", bad, ["body", "items"], "control_character")
    unknown = {**example("patients"), "nick\x00name": "x"}
    assert_refused_unwritten(course, engine, "patients", unknown, ["body"], "control_character")


def test_tab_line_feed_and_carriage_return_are_kept(course) -> None:
    note = "felt queasy\r\nafter\tdosing"
    response = course.put("adverse-events", "ae-002", {**example("adverse-events"), "note": note})
    assert response.status_code == 201, response.text
    assert response.json()["record"]["note"] == note


def test_a_lone_surrogate_is_refused_as_not_utf8(course, engine) -> None:
    before = snapshot(engine)
    body = json.dumps({**example("patients"), "given_name": "A\ud800b"}).encode()  # an escaped lone surrogate
    assert b"\\ud800" in body
    assert_refused(send(course, "patients", "pat-002", body), 422, ["body"], "json_invalid")
    assert snapshot(engine) == before


def _insert_poisoned_lot_number(engine) -> None:
    """A dose row as an earlier version stored it: a NUL in the lot number (JSON text ``\\u0000``)."""
    with Session(engine) as session:
        row = session.exec(select(RecordRow).where(RecordRow.kind == "doses")).one()
        session.execute(
            update(RecordRow)
            .where(RecordRow.id == row.id)  # type: ignore[arg-type]
            .values(data={**row.data, "lot_number": "KET\x0024A17"})
        )
        session.commit()


def test_deletes_never_read_record_json(course, engine) -> None:
    """A record whose stored JSON holds a NUL no longer breaks the patient's and session's DELETEs
    (PostgreSQL cannot read ``data->>`` of such a row): references are looked up in indexed columns."""
    _insert_poisoned_lot_number(engine)
    delete = lambda kind, external_id: course.http.delete(  # noqa: E731
        f"/api/v1/{kind}/{external_id}", headers=course.headers
    )
    blocked = delete("sessions", "ses-001")
    assert blocked.status_code == 409, blocked.text
    assert "doses/dose-001" in blocked.json()["detail"]
    assert "sessions/ses-001" in delete("patients", "pat-001").json()["detail"]
    for kind, external_id in [
        ("adverse-events", "ae-001"),
        ("doses", "dose-001"),
        ("vitals", "vit-001"),
        ("assessments", "asm-001"),
        ("sessions", "ses-001"),
        ("practitioners", "prac-001"),
        ("patients", "pat-001"),
    ]:
        assert delete(kind, external_id).status_code == 204, (kind, external_id)


def test_every_reference_has_its_column() -> None:
    """A record names at most one record of each kind, and each referenced kind has an indexed column."""
    for kind, model in ALL_KINDS.items():
        targets = list(model.references.values())
        assert len(targets) == len(set(targets)), kind
        assert set(targets) <= set(REFERENCE_COLUMNS), kind
    columns = set(SQLModel.metadata.tables["record"].columns.keys())
    assert set(REFERENCE_COLUMNS.values()) <= columns


def test_reference_columns_follow_updates(course, engine) -> None:
    """A vitals record moved off its session no longer blocks the session's DELETE."""
    moved = {k: v for k, v in example("vitals").items() if k not in {"session_id", "phase"}}
    assert course.put("vitals", "vit-001", moved).status_code == 200
    with Session(engine) as session:
        row = session.exec(select(RecordRow).where(RecordRow.kind == "vitals")).one()
        assert (row.patient_external_id, row.session_external_id) == ("pat-001", None)
        dose = session.exec(select(RecordRow).where(RecordRow.kind == "adverse-events")).one()
        assert (dose.session_external_id, dose.dose_external_id) == ("ses-001", "dose-001")
    detail = course.http.delete("/api/v1/sessions/ses-001", headers=course.headers).json()["detail"]
    assert "vitals/" not in detail and "doses/dose-001" in detail


# --- timestamps and dates ----------------------------------------------------------------------------------

TIMESTAMP_FIELDS = [
    ("sessions", "start"),
    ("sessions", "end"),
    ("doses", "administered_at"),
    ("doses", "end"),
    ("vitals", "taken_at"),
    ("assessments", "taken_at"),
    ("adverse-events", "onset"),
    ("adverse-events", "resolved_at"),
]
BAD_TIMESTAMPS = [
    pytest.param("0001-01-01T00:00:00+01:00", "datetime_range", id="year-1"),
    pytest.param("9999-12-31T23:59:59-01:00", "datetime_range", id="year-9999"),
    pytest.param("1899-12-31T23:59:59Z", "datetime_range", id="1899"),
    pytest.param("2026-11-02T09:00:00+14:01", "datetime_offset", id="offset+14:01"),
    pytest.param("2026-11-02T09:00:00-14:30", "datetime_offset", id="offset-14:30"),
    pytest.param("2026-11-02T09:00:00+23:59", "datetime_offset", id="offset+23:59"),
    pytest.param(1700000000, "datetime_format", id="unix-seconds"),
    pytest.param(1700000000000, "datetime_format", id="unix-milliseconds"),
    pytest.param("1700000000", "datetime_format", id="unix-seconds-text"),
    pytest.param(True, "datetime_format", id="true"),
    pytest.param("2026-11-02T09:00:00", "datetime_format", id="no-offset"),
    pytest.param("2026-11-02T09:00-08:00", "datetime_format", id="no-seconds"),
    pytest.param("2026-11-02", "datetime_format", id="date-only"),
    pytest.param("2026-11-02 09:00:00Z", "datetime_format", id="space"),
    pytest.param("2026-11-02T09:00:00+0100", "datetime_format", id="offset-without-colon"),
]


#: (kind, start field) -> its end field, and the reverse
END_OF = {
    ("sessions", "start"): "end",
    ("doses", "administered_at"): "end",
    ("adverse-events", "onset"): "resolved_at",
}
START_OF = {(kind, end): start for (kind, start), end in END_OF.items()}


def _timed(kind: str, field: str, value: Any) -> dict[str, Any]:
    """The example with ``field`` set to ``value``; a start's end is dropped (so no ordering rule fails)."""
    record = example(kind)
    record.pop("infusion_minutes", None)
    record.pop(END_OF.get((kind, field), ""), None)
    record[field] = value
    return record


#: every bad value on two fields; on the others the range, the offset and unix seconds
TIMESTAMP_CASES = [
    pytest.param(kind, field, *case.values, id=f"{kind}.{field}-{case.id}")
    for kind, field in TIMESTAMP_FIELDS
    for case in BAD_TIMESTAMPS
    if (kind, field) in {("vitals", "taken_at"), ("sessions", "start")}
    or case.id in {"year-1", "year-9999", "offset+14:01", "unix-seconds"}
]


@pytest.mark.parametrize(("kind", "field", "value", "type_"), TIMESTAMP_CASES)
def test_bad_timestamps_are_422(course, engine, kind, field, value, type_) -> None:
    assert_refused_unwritten(course, engine, kind, _timed(kind, field, value), ["body", field], type_)


def test_timestamps_more_than_5_years_ahead_are_422(course, engine) -> None:
    for kind, field in TIMESTAMP_FIELDS:
        later = (datetime.now(UTC) + timedelta(days=5 * 365 + 3)).replace(microsecond=0).isoformat()
        record = _timed(kind, field, later)
        if (kind, field) in START_OF:  # the start moves along, so only the clock rule can fail
            record[START_OF[(kind, field)]] = later
        assert_refused_unwritten(course, engine, kind, record, ["body", field], "datetime_future")


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("2026-11-02T09:00:00+14:00", id="offset+14:00"),
        pytest.param("2026-11-02T09:00:00-12:00", id="offset-12:00"),
        pytest.param("2026-11-02T09:00:00.123456z", id="fraction-lowercase-z"),
        pytest.param("1900-01-01T00:00:00Z", id="1900"),
        pytest.param("in-4-years", id="4-years-ahead"),
    ],
)
def test_timestamps_at_the_edges_inside_the_range_are_accepted(course, value) -> None:
    if value == "in-4-years":
        value = (datetime.now(UTC) + timedelta(days=4 * 365)).replace(microsecond=0).isoformat()
    response = course.put("vitals", "vit-002", _timed("vitals", "taken_at", value))
    assert response.status_code == 201, response.text
    assert response.json()["record"]["taken_at"].startswith(value[:19])


@pytest.mark.parametrize(
    ("value", "type_"),
    [
        pytest.param("1899-12-31", "date_range", id="1899"),
        pytest.param("in-2-days", "date_future", id="future"),
        pytest.param(449971200, "date_format", id="number"),
        pytest.param("1984-03-12T00:00:00", "date_format", id="date-time"),
        pytest.param("19840312", "date_format", id="basic-format"),
        pytest.param("1984-02-30", None, id="no-such-day"),
    ],
)
def test_bad_birth_dates_are_422(course, engine, value, type_) -> None:
    if value == "in-2-days":  # not yet born anywhere on Earth (UTC+14 is the earliest day)
        value = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    record = {**example("patients"), "birth_date": value}
    assert_refused_unwritten(course, engine, "patients", record, ["body", "birth_date"], type_)


def test_a_birth_date_of_today_anywhere_is_accepted(course) -> None:
    today_in_kiribati = (datetime.now(UTC) + timedelta(hours=14)).date().isoformat()
    response = course.put("patients", "pat-002", {**example("patients"), "birth_date": today_in_kiribati})
    assert response.status_code == 201, response.text


# --- strict types ------------------------------------------------------------------------------------------

STRICT_CASES = [
    pytest.param(
        "doses",
        {"dose_mg": True, "weight_kg": None, "dose_mg_per_kg": None},
        "dose_mg",
        "float_type",
        id="dose-true",
    ),
    pytest.param("doses", {"dose_mg": "35"}, "dose_mg", "float_type", id="dose-text"),
    pytest.param("doses", {"weight_kg": "70"}, "weight_kg", "float_type", id="weight-text"),
    pytest.param("doses", {"dose_mg_per_kg": False}, "dose_mg_per_kg", "float_type", id="per-kg-false"),
    pytest.param("doses", {"infusion_minutes": 40.0}, "infusion_minutes", "int_type", id="minutes-float"),
    pytest.param("doses", {"infusion_minutes": "40"}, "infusion_minutes", "int_type", id="minutes-text"),
    pytest.param(
        "doses",
        {"unit_strength_mg": "100", "form": "troche", "route": "sublingual"},
        "unit_strength_mg",
        "float_type",
        id="strength-text",
    ),
    pytest.param(
        "sessions",
        {"psychotherapy_minutes": True},
        "psychotherapy_minutes",
        "int_type",
        id="psychotherapy-true",
    ),
    pytest.param(
        "sessions",
        {"psychotherapy_minutes": 60.5},
        "psychotherapy_minutes",
        "int_type",
        id="psychotherapy-fraction",
    ),
    pytest.param("vitals", {"heart_rate": "72"}, "heart_rate", "float_type", id="heart-rate-text"),
    pytest.param("vitals", {"spo2": True}, "spo2", "float_type", id="spo2-true"),
    pytest.param("vitals", {"systolic": [124]}, "systolic", "float_type", id="systolic-list"),
    pytest.param("adverse-events", {"serious": 0}, "serious", "bool_type", id="serious-0"),
    pytest.param("adverse-events", {"serious": 1}, "serious", "bool_type", id="serious-1"),
    pytest.param("adverse-events", {"serious": "true"}, "serious", "bool_type", id="serious-text"),
    pytest.param("adverse-events", {"serious": "false"}, "serious", "bool_type", id="serious-text-false"),
    pytest.param("assessments", {"total": "9"}, "total", "int_type", id="total-text"),
    pytest.param("assessments", {"total": 9.0}, "total", "int_type", id="total-float"),
    pytest.param("assessments", {"total": True}, "total", "int_type", id="total-true"),
    pytest.param("patients", {"given_name": 42}, "given_name", "string_type", id="name-number"),
    pytest.param("patients", {"sex": True}, "sex", None, id="sex-true"),
]


@pytest.mark.parametrize(("kind", "change", "field", "type_"), STRICT_CASES)
def test_strict_types(course, engine, kind, change, field, type_) -> None:
    record = {k: v for k, v in {**example(kind), **change}.items() if v is not None}
    assert_refused_unwritten(course, engine, kind, record, ["body", field], type_)


@pytest.mark.parametrize(
    ("answer", "type_"),
    [
        pytest.param(True, "answer_type", id="true"),
        pytest.param("1", "answer_type", id="text"),
        pytest.param(1.0, "answer_type", id="float"),
    ],
)
def test_item_answers_are_strict(course, engine, answer, type_) -> None:
    record = example("assessments")
    record["items"]["1"] = answer
    record.pop("total")
    assert_refused_unwritten(course, engine, "assessments", record, ["body", "items", "1"], type_)


# --- numbers: lower bounds ---------------------------------------------------------------------------------

NO_WEIGHT = {"weight_kg": None, "dose_mg_per_kg": None}
TROCHE = {"route": "sublingual", "form": "troche", "infusion_minutes": None, "end": None, **NO_WEIGHT}


@pytest.mark.parametrize(
    ("change", "raw", "field", "type_"),
    [
        pytest.param(NO_WEIGHT, ("dose_mg", "1e-320"), "dose_mg", "greater_than_equal", id="dose-1e-320"),
        pytest.param(NO_WEIGHT, ("dose_mg", "5e-324"), "dose_mg", "greater_than_equal", id="dose-5e-324"),
        pytest.param(NO_WEIGHT, ("dose_mg", "0.09"), "dose_mg", "greater_than_equal", id="dose-0.09"),
        pytest.param(NO_WEIGHT, ("dose_mg", "0"), "dose_mg", "greater_than_equal", id="dose-0"),
        pytest.param(NO_WEIGHT, ("dose_mg", "-35"), "dose_mg", "greater_than_equal", id="dose-negative"),
        pytest.param(NO_WEIGHT, ("dose_mg", "1e308"), "dose_mg", "dose_ceiling", id="dose-1e308"),
        pytest.param(
            TROCHE | {"dose_mg": 100},
            ("unit_strength_mg", "5e-324"),
            "unit_strength_mg",
            "greater_than_equal",
            id="strength-5e-324",
        ),
        pytest.param(
            TROCHE | {"dose_mg": 100},
            ("unit_strength_mg", "0.5"),
            "unit_strength_mg",
            "greater_than_equal",
            id="strength-0.5",
        ),
        pytest.param(
            {}, ("dose_mg_per_kg", "1e-320"), "dose_mg_per_kg", "greater_than_equal", id="per-kg-1e-320"
        ),
        pytest.param({}, ("weight_kg", "1e-320"), "weight_kg", "greater_than_equal", id="weight-1e-320"),
        pytest.param({}, ("dose_mg", "1e400"), None, "json_invalid", id="dose-1e400"),
        pytest.param({}, ("dose_mg", "NaN"), None, "json_invalid", id="dose-nan"),
        pytest.param({}, ("dose_mg", "-Infinity"), None, "json_invalid", id="dose-infinity"),
    ],
)
def test_dose_amounts_have_sensible_bounds(course, engine, change, raw, field, type_) -> None:
    """Numbers written as JSON text, so 5e-324 reaches the server as written."""
    record = {k: v for k, v in {**example("doses"), **change}.items() if v is not None}
    name, number = raw
    record[name] = "__NUMBER__"
    body = json.dumps(record).replace('"__NUMBER__"', number).encode()
    before = snapshot(engine)
    for external_id in ("dose-new", "dose-001"):
        loc = ["body", field] if field else ["body"]
        assert_refused(send(course, "doses", external_id, body), 422, loc, type_)
    assert snapshot(engine) == before


def test_smallest_accepted_dose_has_a_short_text(course) -> None:
    record = {k: v for k, v in {**example("doses"), **NO_WEIGHT}.items() if v is not None}
    response = course.put("doses", "dose-002", {**record, "dose_mg": 0.1})
    assert response.status_code == 201, response.text
    bundle = course.get("/api/v1/doses/dose-002/fhir").json()
    administration = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "MedicationAdministration"
    )
    assert administration["dosage"]["text"].startswith("0.1 mg IV")


def test_dose_weight_mismatch_message_prints_its_numbers(course, engine) -> None:
    record = {**example("doses"), "dose_mg": 80}
    assert_refused_unwritten(course, engine, "doses", record, ["body", "dose_mg"], "dose_per_kg")
    detail = send(course, "doses", "dose-002", json.dumps(record).encode()).json()["detail"]
    messages = {tuple(e["loc"]): e["msg"] for e in detail}
    expected = (
        "dose_mg 80 does not match weight_kg * dose_mg_per_kg = 35.0 (they must agree to within 5% or 1 mg)"
    )
    assert messages == {("body", "dose_mg"): expected, ("body", "dose_mg_per_kg"): expected}


# --- ids -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_id",
    [
        pytest.param(".", id="dot"),
        pytest.param("..", id="two-dots"),
        pytest.param("...", id="three-dots"),
        pytest.param("." * 64, id="64-dots"),
    ],
)
def test_ids_of_only_dots_are_refused(course, engine, bad_id) -> None:
    before = snapshot(engine)
    if bad_id not in {".", ".."}:  # "." and ".." are path segments no client can send
        assert_refused(course.put("patients", bad_id, example("patients")), 422, ["path", "external_id"])
    batch = [{"kind": "patients", "id": bad_id, "record": example("patients")}]
    assert_refused(
        course.http.post("/api/v1/batch", json=batch, headers=course.headers), 422, ["body", 0, "id"]
    )
    reference = {**example("sessions"), "patient_id": bad_id}
    assert_refused(
        course.put("sessions", "ses-002", reference), 422, ["body", "patient_id"], "string_pattern_mismatch"
    )
    listing = course.get("/api/v1/sessions", params={"patient_id": bad_id})
    assert_refused(listing, 422, ["query", "patient_id"])
    assert snapshot(engine) == before


@pytest.mark.parametrize(
    "good_id",
    [
        pytest.param(".a", id="leading-dot"),
        pytest.param("a..b", id="inner-dots"),
        pytest.param("a." * 32, id="64-chars"),
    ],
)
def test_ids_with_dots_and_more_are_accepted(course, good_id) -> None:
    assert course.put("patients", good_id, example("patients")).status_code == 201
    assert course.get(f"/api/v1/patients/{good_id}").status_code == 200


def test_an_id_over_64_characters_is_refused(course, engine) -> None:
    before = snapshot(engine)
    assert_refused(
        course.put("patients", "a" * 65, example("patients")), 422, ["path", "external_id"], "string_too_long"
    )
    batch = [{"kind": "patients", "id": "a" * 65, "record": example("patients")}]
    assert_refused(
        course.http.post("/api/v1/batch", json=batch, headers=course.headers), 422, ["body", 0, "id"]
    )
    assert snapshot(engine) == before


# --- error shapes --------------------------------------------------------------------------------------------

PATIENT_JSON = json.dumps(RECORD_EXAMPLES["patients"][1]).encode()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b"{bad", "invalid JSON", id="unparseable"),
        pytest.param(b'{"given_name": "Av', "invalid JSON", id="truncated"),
        pytest.param(PATIENT_JSON.replace(b"Avery", b"Av\xffery"), "not valid UTF-8", id="invalid-utf8"),
        pytest.param(
            PATIENT_JSON.replace(b"Avery", b"Av\xed\xa0\x80ery"), "not valid UTF-8", id="encoded-surrogate"
        ),
        pytest.param(b"\xef\xbb\xbf" + PATIENT_JSON, "byte order mark", id="byte-order-mark"),
        pytest.param(PATIENT_JSON.decode().encode("utf-16"), "not valid UTF-8", id="utf-16"),
        pytest.param(b"[" * 5000 + b"]" * 5000, "invalid JSON", id="nested-5000"),
        pytest.param(b"", None, id="empty"),
    ],
)
def test_unreadable_put_bodies_are_422(course, engine, body, message) -> None:
    before = snapshot(engine)
    detail = assert_refused(send(course, "patients", "pat-001", body), 422)
    assert detail[0]["loc"][0] == "body"
    if message is not None:
        assert detail == [{"loc": ["body"], "msg": detail[0]["msg"], "type": "json_invalid"}]
        assert message in detail[0]["msg"]
    assert snapshot(engine) == before


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        pytest.param(PATIENT_JSON[:-1] + b', "sex": "male"}', ["body"], id="top-level"),
        pytest.param(
            PATIENT_JSON.replace(b'"city": "Springfield"', b'"city": "Springfield", "city": "Eugene"'),
            ["body", "address"],
            id="nested",
        ),
        pytest.param(
            PATIENT_JSON.replace(b'"value": "MRN-000123"', b'"value": "MRN-000123", "value": "MRN-9"'),
            ["body", "identifiers", 0],
            id="in-a-list",
        ),
    ],
)
def test_duplicate_keys_are_refused(course, engine, body, loc) -> None:
    before = snapshot(engine)
    detail = assert_refused(send(course, "patients", "pat-001", body), 422, loc, "json_duplicate_key")
    assert len(detail) == 1 and "appears twice" in detail[0]["msg"]
    assert snapshot(engine) == before


def test_duplicate_keys_in_a_batch_entry_are_refused(course, engine) -> None:
    before = snapshot(engine)
    body = b'[{"kind": "patients", "id": "pat-002", "record": {"sex": "male", "sex": "female"}}]'
    response = course.http.post(
        "/api/v1/batch", content=body, headers={**course.headers, "Content-Type": "application/json"}
    )
    assert_refused(response, 422, ["body", 0, "record"], "json_duplicate_key")
    lines = b'{"kind": "patients", "id": "pat-002", "record": {}}\n{"kind": "patients", "kind": "x"}'
    response = course.http.post(
        "/api/v1/batch", content=lines, headers={**course.headers, "Content-Type": "application/x-ndjson"}
    )
    assert_refused(response, 422, ["body", 1], "json_duplicate_key")
    assert snapshot(engine) == before


@pytest.mark.parametrize(
    "content_type",
    [
        pytest.param("text/plain", id="text"),
        pytest.param("application/xml", id="xml"),
        pytest.param("application/x-www-form-urlencoded", id="form"),
        pytest.param("application/json; charset=latin-1", id="other-charset"),
        pytest.param("application/fhir+json", id="fhir-json"),
        pytest.param(None, id="none"),
    ],
)
def test_a_body_that_is_not_json_is_415_on_put_and_batch(course, engine, content_type) -> None:
    before = snapshot(engine)
    headers = dict(course.headers)
    if content_type is not None:
        headers["Content-Type"] = content_type
    put = course.http.put("/api/v1/patients/pat-002", content=PATIENT_JSON, headers=headers)
    batch_body = json.dumps([{"kind": "patients", "id": "pat-002", "record": example("patients")}]).encode()
    batch = course.http.post("/api/v1/batch", content=batch_body, headers=headers)
    for response in (put, batch):
        assert response.status_code == 415, response.text
        assert response.headers["content-type"] == "application/json"
        assert "application/json" in response.json()["detail"]
    assert snapshot(engine) == before


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", 'Application/JSON;charset="UTF-8"'],
)
def test_json_media_types_are_accepted(course, content_type) -> None:
    response = course.http.put(
        "/api/v1/patients/pat-002",
        content=PATIENT_JSON,
        headers={**course.headers, "Content-Type": content_type},
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("path", ["/api/v1/patients/pat-002", "/api/v1/batch"])
def test_a_chunked_body_over_the_limit_is_413(course, engine, settings, path) -> None:
    before = snapshot(engine)

    def chunks() -> Iterator[bytes]:
        yield b'[{"kind": "patients", "id": "pat-002", "record": {"given_name": "'
        for _ in range(settings.max_body_bytes // 65536 + 2):
            yield b"A" * 65536
        yield b'"}}]'

    method = course.http.put if path.endswith("pat-002") else course.http.post
    response = method(path, content=chunks(), headers={**course.headers, "Content-Type": "application/json"})
    assert response.status_code == 413, response.text
    assert response.json() == {"detail": f"request body exceeds {settings.max_body_bytes} bytes"}
    assert snapshot(engine) == before


def test_an_ndjson_line_that_is_not_json_is_named_by_its_index(course, engine) -> None:
    before = snapshot(engine)
    lines = (
        json.dumps({"kind": "patients", "id": "pat-002", "record": example("patients")}).encode()
        + b"\n\n{bad\n"
    )
    response = course.http.post(
        "/api/v1/batch", content=lines, headers={**course.headers, "Content-Type": "application/x-ndjson"}
    )
    assert_refused(response, 422, ["body", 1], "json_invalid")
    assert snapshot(engine) == before


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        pytest.param(
            "OPTIONS", "/api/v1/patients/pat-001", 204, "DELETE, GET, PUT, OPTIONS", id="options-record"
        ),
        pytest.param("OPTIONS", "/api/v1/patients", 204, "GET, OPTIONS", id="options-list"),
        pytest.param("OPTIONS", "/api/v1/batch", 204, "POST, OPTIONS", id="options-batch"),
        pytest.param("OPTIONS", "/api/v1/conditions/c-1", 204, "GET, OPTIONS", id="options-read-only"),
        pytest.param("POST", "/api/v1/patients/pat-001", 405, "DELETE, GET, PUT", id="post-record"),
        pytest.param("PATCH", "/api/v1/patients/pat-001", 405, "DELETE, GET, PUT", id="patch-record"),
        pytest.param("DELETE", "/api/v1/patients", 405, "GET", id="delete-list"),
        pytest.param("GET", "/api/v1/batch", 405, "POST", id="get-batch"),
        pytest.param("PUT", "/api/v1/conditions/c-1", 405, "GET", id="put-read-only"),
        pytest.param("GET", "/auth/token", 405, "POST", id="get-token"),
    ],
)
def test_options_and_405_carry_the_allow_header(course, engine, method, path, status, allow) -> None:
    before = snapshot(engine)
    response = course.http.request(method, path, headers=course.headers)
    assert response.status_code == status, response.text
    assert response.headers["allow"] == allow
    if status == 405:
        assert response.json() == {"detail": "Method Not Allowed"}
    assert snapshot(engine) == before
