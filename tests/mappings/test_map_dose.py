"""Dose -> MedicationAdministration (+ infusion Procedure): golden pairs, tables, properties, validation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from mappings.medication_administration import INFUSION_PART, related_keys, to_fhir_dose
from mappings.records import DoseRecord, SessionRecord
from tests.mappings.conftest import assert_golden, make_context
from tests.mappings.outbound_checks import (
    AWARE,
    EXTERNAL_ID,
    SHORT_TEXT,
    as_json,
    assert_valid,
    load_case,
    profile_errors,
)

GOLDEN = ["dose-iv-infusion", "dose-esketamine", "dose-sublingual-troche"]
SNOMED = "http://snomed.info/sct"
CPT = "http://www.ama-assn.org/go/cpt"
UCUM = "http://unitsofmeasure.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"

SESSION = SessionRecord.model_validate(
    {
        "patient_id": "pt-1",
        "kind": "dosing",
        "start": "2026-10-05T09:00:00-07:00",
        "practitioner_id": "dr-session",
    }
)


def dose(**fields) -> DoseRecord:
    base = {"session_id": "sess-1", "medication": "ketamine", "administered_at": "2026-10-05T09:20:00-07:00"}
    return DoseRecord.model_validate({**base, **fields})


def map_all(record: DoseRecord, session: SessionRecord = SESSION) -> list[dict]:
    ctx = make_context({("sessions", record.session_id): session})
    return [as_json(r) for r in to_fhir_dose(record, external_id="dose-1", ctx=ctx)]


def map_dose(record: DoseRecord, session: SessionRecord = SESSION) -> dict:
    """The MedicationAdministration (always the first resource)."""
    [administration, *_] = map_all(record, session)
    assert administration["resourceType"] == "MedicationAdministration"
    return administration


def map_case(name: str) -> list:
    case = load_case(name)
    assert [key for key in case.ctx.related] == related_keys(case.record)
    return to_fhir_dose(case.record, external_id=case.external_id, ctx=case.ctx)


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in GOLDEN])
def test_golden(name: str) -> None:
    assert_golden(name, map_case(name))


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in GOLDEN])
def test_golden_passes_schema_and_base_r4(name: str, profile_validator) -> None:
    for resource in map_case(name):
        data = assert_valid(resource)
        if data["resourceType"] == "MedicationAdministration":
            assert "meta" not in data  # base R4: no US Core profile for MedicationAdministration
        else:
            assert data["meta"]["profile"] == [
                "http://hl7.org/fhir/us/core/StructureDefinition/us-core-procedure"
            ]
        assert profile_errors(profile_validator, data) == []


@pytest.mark.parametrize(
    ("route", "code"),
    [
        pytest.param("iv", "47625008", id="iv"),
        pytest.param("im", "78421000", id="im"),
        pytest.param("sublingual", "37839007", id="sublingual"),
        pytest.param("buccal", "54471007", id="buccal"),
        pytest.param("oral", "26643006", id="oral"),
        pytest.param("intranasal", "46713006", id="intranasal"),
    ],
)
def test_route_codes(route: str, code: str) -> None:
    [coding] = map_dose(dose(route=route, dose_mg=50))["dosage"]["route"]["coding"]
    assert (coding["system"], coding["code"]) == (SNOMED, code)


@pytest.mark.parametrize(
    ("fields", "rate", "text"),
    [
        pytest.param(
            {"dose_mg": 35, "weight_kg": 70, "dose_mg_per_kg": 0.5, "infusion_minutes": 40},
            {"value": 0.75, "unit": "mg/kg/h", "system": UCUM, "code": "mg/kg/h"},
            "0.5 mg/kg (35 mg) IV over 40 min",
            id="per-kg-40min",
        ),
        pytest.param(
            {"dose_mg": 77, "dose_mg_per_kg": 1.1, "infusion_minutes": 60},
            {"value": 1.1, "unit": "mg/kg/h", "system": UCUM, "code": "mg/kg/h"},
            "1.1 mg/kg (77 mg) IV over 60 min",
            id="per-kg-60min",
        ),
        pytest.param(
            {"dose_mg": 50, "dose_mg_per_kg": 0.7, "infusion_minutes": 7},
            {"value": 6.0, "unit": "mg/kg/h", "system": UCUM, "code": "mg/kg/h"},
            "0.7 mg/kg (50 mg) IV over 7 min",
            id="per-kg-rounded",
        ),
        pytest.param(
            {"dose_mg": 40, "infusion_minutes": 40},
            {"value": 60.0, "unit": "mg/h", "system": UCUM, "code": "mg/h"},
            "40 mg IV over 40 min",
            id="no-weight-basis",
        ),
        pytest.param({"dose_mg": 20}, None, "20 mg IV", id="push"),
    ],
)
def test_iv_rate_and_text(fields: dict, rate: dict | None, text: str) -> None:
    dosage = map_dose(dose(route="iv", **fields))["dosage"]
    assert dosage.get("rateQuantity") == rate
    assert dosage["text"] == text
    assert dosage["dose"] == {"value": fields["dose_mg"], "unit": "mg", "system": UCUM, "code": "mg"}


@pytest.mark.parametrize(
    ("fields", "effective"),
    [
        pytest.param(
            {"route": "iv", "infusion_minutes": 40},
            {"effectivePeriod": {"start": "2026-10-05T09:20:00-07:00", "end": "2026-10-05T10:00:00-07:00"}},
            id="iv-infusion-minutes",
        ),
        pytest.param(
            {"route": "iv", "infusion_minutes": 40, "end": "2026-10-05T10:00:30-07:00"},
            {"effectivePeriod": {"start": "2026-10-05T09:20:00-07:00", "end": "2026-10-05T10:00:30-07:00"}},
            id="iv-end-within-a-minute-wins",
        ),
        pytest.param(
            {"route": "iv", "status": "in-progress"},
            {"effectivePeriod": {"start": "2026-10-05T09:20:00-07:00"}},
            id="iv-running",
        ),
        pytest.param({"route": "iv"}, {"effectiveDateTime": "2026-10-05T09:20:00-07:00"}, id="iv-push"),
        pytest.param({"route": "im"}, {"effectiveDateTime": "2026-10-05T09:20:00-07:00"}, id="im"),
        pytest.param(
            {"route": "sublingual", "end": "2026-10-05T09:35:00-07:00"},
            {"effectivePeriod": {"start": "2026-10-05T09:20:00-07:00", "end": "2026-10-05T09:35:00-07:00"}},
            id="sublingual-with-end",
        ),
    ],
)
def test_effective(fields: dict, effective: dict) -> None:
    resource = map_dose(dose(dose_mg=50, **fields))
    assert {k: v for k, v in resource.items() if k.startswith("effective")} == effective


@pytest.mark.parametrize(
    ("fields", "code", "form", "strength"),
    [
        pytest.param(
            {"medication": "esketamine", "route": "intranasal", "dose_mg": 84},
            {
                "coding": [
                    {"system": RXNORM, "code": "2201625", "display": "esketamine Nasal Spray [Spravato]"}
                ]
            },
            "nasal spray",
            None,
            id="esketamine",
        ),
        pytest.param({"route": "iv", "dose_mg": 35}, {}, "injectable solution", None, id="iv-injection"),
        pytest.param(
            {"route": "im", "dose_mg": 35, "form": "solution"}, {}, "injectable solution", None, id="im"
        ),
        pytest.param(
            {"route": "sublingual", "dose_mg": 200, "form": "troche", "unit_strength_mg": 100},
            {"text": "ketamine 100 mg sublingual troche (as hydrochloride; compounded)"},
            "troche",
            ("{troche}", "troche"),
            id="troche",
        ),
        pytest.param(
            {"route": "oral", "dose_mg": 150, "form": "tablet", "unit_strength_mg": 150},
            {"text": "ketamine 150 mg oral tablet (as hydrochloride; compounded)"},
            "tablet",
            ("{tablet}", "tablet"),
            id="tablet",
        ),
        pytest.param(
            {"route": "buccal", "dose_mg": 50},
            {"text": "ketamine buccal (as hydrochloride; compounded)"},
            None,
            None,
            id="buccal-form-unknown",
        ),
        pytest.param(
            {"route": "intranasal", "dose_mg": 50, "form": "nasal-spray"},
            {"text": "ketamine nasal spray (as hydrochloride; compounded)"},
            "nasal spray",
            None,
            id="racemic-nasal",
        ),
    ],
)
def test_contained_medication(fields: dict, code: dict, form: str | None, strength: tuple | None) -> None:
    resource = map_dose(dose(lot_number="LOT-1", **fields))
    [medication] = resource["contained"]
    assert resource["medicationReference"] == {"reference": "#med"}
    assert medication["id"] == "med"
    assert medication["batch"] == {"lotNumber": "LOT-1"}
    for key, value in code.items():
        assert medication["code"][key] == value
    assert RXNORM not in str(medication) or fields.get("medication") == "esketamine"  # ketamine RxNorm is U
    assert medication.get("form", {}).get("text") == form
    [ingredient] = medication["ingredient"]
    if strength is None:
        assert "strength" not in ingredient
    else:
        assert ingredient["strength"]["denominator"] == {
            "value": 1,
            "unit": strength[1],
            "system": UCUM,
            "code": strength[0],
        }
        assert ingredient["strength"]["numerator"]["code"] == "mg"


@pytest.mark.parametrize(
    ("dose_practitioner", "session_practitioner", "performer"),
    [
        pytest.param("dr-dose", "dr-session", "dr-dose", id="dose-wins"),
        pytest.param(None, "dr-session", "dr-session", id="session-fallback"),
        pytest.param(None, None, None, id="none"),
    ],
)
def test_performer(dose_practitioner, session_practitioner, performer) -> None:
    session = SESSION.model_copy(update={"practitioner_id": session_practitioner})
    ctx = make_context()
    resource = map_dose(dose(route="iv", dose_mg=30, practitioner_id=dose_practitioner), session)
    expected = [{"actor": ctx.reference("practitioners", performer)}] if performer else None
    assert resource.get("performer") == expected


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        pytest.param(
            {"dose_mg": 200, "unit_strength_mg": 100}, "200 mg sublingual (2 troches of 100 mg)", id="two"
        ),
        pytest.param(
            {"dose_mg": 100, "unit_strength_mg": 100}, "100 mg sublingual (1 troche of 100 mg)", id="one"
        ),
        pytest.param({"dose_mg": 150, "unit_strength_mg": 100}, "150 mg sublingual", id="fraction"),
        pytest.param({"dose_mg": 50, "unit_strength_mg": 100}, "50 mg sublingual", id="half"),
    ],
)
def test_troche_count_in_text(fields: dict, text: str) -> None:
    assert map_dose(dose(route="sublingual", form="troche", **fields))["dosage"]["text"] == text


def test_subject_and_context_come_from_the_session() -> None:
    ctx = make_context()
    resource = map_dose(dose(route="iv", dose_mg=30))
    assert resource["subject"] == ctx.reference("patients", "pt-1")
    assert resource["context"] == ctx.reference("sessions", "sess-1")


def test_missing_session_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        to_fhir_dose(dose(route="iv", dose_mg=30), external_id="d", ctx=make_context())


# --------------------------------------------------------------------------- infusion Procedure (CPT 96365)

INFUSION = (CPT, "96365")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param(
            {"infusion_minutes": 40},
            ("completed", "2026-10-05T09:20:00-07:00", "2026-10-05T10:00:00-07:00"),
            id="40min-from-minutes",
        ),
        pytest.param(
            {"end": "2026-10-05T10:00:00-07:00"},
            ("completed", "2026-10-05T09:20:00-07:00", "2026-10-05T10:00:00-07:00"),
            id="40min-from-end",
        ),
        pytest.param(
            {"infusion_minutes": 40, "end": "2026-10-05T10:00:30-07:00"},
            ("completed", "2026-10-05T09:20:00-07:00", "2026-10-05T10:00:30-07:00"),
            id="40min-both-agree",
        ),
        pytest.param(
            {"infusion_minutes": 16},
            ("completed", "2026-10-05T09:20:00-07:00", "2026-10-05T09:36:00-07:00"),
            id="16min-is-an-infusion",
        ),
        pytest.param({"infusion_minutes": 15}, None, id="15min-is-a-push"),
        pytest.param(
            {"end": "2026-10-05T09:35:01-07:00"},
            ("completed", "2026-10-05T09:20:00-07:00", "2026-10-05T09:35:01-07:00"),
            id="15min-1s-is-an-infusion",
        ),
        pytest.param({"end": "2026-10-05T09:35:00-07:00"}, None, id="15min-end-is-a-push"),
        pytest.param({"infusion_minutes": 5}, None, id="5min"),
        pytest.param({}, None, id="push-length-unknown"),
        pytest.param({"status": "in-progress"}, None, id="running-length-unknown"),
        pytest.param(
            {"status": "in-progress", "infusion_minutes": 40},
            ("in-progress", "2026-10-05T09:20:00-07:00", "2026-10-05T10:00:00-07:00"),
            id="running-40min",
        ),
        pytest.param(
            {"status": "stopped", "end": "2026-10-05T09:45:00-07:00", "infusion_minutes": 25},
            ("stopped", "2026-10-05T09:20:00-07:00", "2026-10-05T09:45:00-07:00"),
            id="stopped-after-25min",
        ),
        pytest.param({"status": "stopped", "infusion_minutes": 10}, None, id="stopped-after-10min"),
        pytest.param(
            {"infusion_minutes": 120},
            ("completed", "2026-10-05T09:20:00-07:00", "2026-10-05T11:20:00-07:00"),
            id="2h",
        ),
        pytest.param({"route": "im", "end": "2026-10-05T10:00:00-07:00"}, None, id="im"),
        pytest.param(
            {"route": "sublingual", "form": "troche", "end": "2026-10-05T10:00:00-07:00"},
            None,
            id="sublingual",
        ),
    ],
)
def test_infusion_procedure_covers_the_infusion_and_follows_the_cpt_time_rule(
    fields: dict, expected: tuple | None
) -> None:
    session = SESSION.model_copy(update={"end": "2026-10-05T11:45:00-07:00"})
    resources = map_all(dose(**{"route": "iv", "dose_mg": 35, **fields}), session)
    administration = resources[0]
    if expected is None:
        assert [r["resourceType"] for r in resources] == ["MedicationAdministration"]
        assert "partOf" not in administration
        return
    status, start, end = expected
    ctx = make_context()
    _, procedure = resources
    assert procedure["resourceType"] == "Procedure"
    assert [(c["system"], c["code"]) for c in procedure["code"]["coding"]] == [INFUSION]
    assert procedure["status"] == status
    assert procedure["performedPeriod"] == {"start": start, "end": end}  # the infusion's, not the session's
    assert administration["effectivePeriod"] == procedure["performedPeriod"]
    assert procedure["id"] == ctx.id_of("doses", "dose-1", INFUSION_PART)  # deterministic
    assert procedure["identifier"] == [
        {"system": "https://gateway.test/id/golden/doses", "value": "dose-1#infusion"}
    ]
    assert procedure["subject"] == ctx.reference("patients", "pt-1")
    assert procedure["encounter"] == ctx.reference("sessions", "sess-1")
    assert procedure["performer"] == [{"actor": ctx.reference("practitioners", "dr-session")}]
    assert administration["partOf"] == [{"reference": f"Procedure/{procedure['id']}"}]


@pytest.mark.parametrize(
    ("end", "accepted"),
    [
        pytest.param("2026-10-05T10:00:00-07:00", True, id="exact"),
        pytest.param("2026-10-05T10:01:00-07:00", True, id="plus-1min"),
        pytest.param("2026-10-05T10:01:01-07:00", False, id="plus-1min-1s"),
        pytest.param("2026-10-05T09:59:00-07:00", True, id="minus-1min"),
        pytest.param("2026-10-05T09:58:59-07:00", False, id="minus-1min-1s"),
        pytest.param("2026-10-05T10:05:00-07:00", False, id="plus-5min"),
        pytest.param("2026-10-05T09:45:00-07:00", False, id="stopped-early-but-minutes-unchanged"),
        pytest.param("2026-10-05T18:00:00+01:00", True, id="same-instant-other-offset"),
    ],
)
def test_end_and_infusion_minutes_must_agree_within_a_minute(end: str, accepted: bool) -> None:
    fields = {"route": "iv", "dose_mg": 35, "infusion_minutes": 40, "end": end}
    if accepted:
        assert dose(**fields).end is not None
        return
    with pytest.raises(ValidationError) as raised:
        dose(**fields)
    errors = raised.value.errors()
    assert [e["loc"] for e in errors] == [("end",), ("infusion_minutes",)]
    assert {e["type"] for e in errors} == {"infusion_length"}
    assert "infusion_minutes is 40" in errors[0]["msg"]


@pytest.mark.parametrize(
    ("fields", "ingredient", "strength_mg"),
    [
        pytest.param({"route": "iv", "dose_mg": 35}, "ketamine (as ketamine hydrochloride)", None, id="iv"),
        pytest.param(
            {"route": "im", "dose_mg": 35, "form": "solution"},
            "ketamine (as ketamine hydrochloride)",
            None,
            id="im",
        ),
        pytest.param(
            {"route": "sublingual", "dose_mg": 200, "form": "troche", "unit_strength_mg": 100},
            "ketamine (as ketamine hydrochloride)",
            100,
            id="troche",
        ),
        pytest.param(
            {"medication": "esketamine", "route": "intranasal", "dose_mg": 56},
            "esketamine (as esketamine hydrochloride)",
            None,
            id="esketamine",
        ),
    ],
)
def test_ingredient_is_the_base_the_mg_refer_to(
    fields: dict, ingredient: str, strength_mg: int | None
) -> None:
    """dose_mg and unit_strength_mg are mg of the base: the ingredient names the base (as its salt)."""
    resource = map_dose(dose(**fields))
    [medication] = resource["contained"]
    [item] = medication["ingredient"]
    assert item["itemCodeableConcept"] == {"text": ingredient}
    assert "hydrochloride" in medication["code"]["text"] or fields.get("medication") == "esketamine"
    assert "HCl" not in medication["code"]["text"]  # "ketamine HCl 100 mg" would read as mg of the salt
    assert resource["dosage"]["dose"]["value"] == fields["dose_mg"]
    if strength_mg is not None:
        assert item["strength"]["numerator"]["value"] == strength_mg


# --------------------------------------------------------------------------- properties


@st.composite
def doses(draw) -> DoseRecord:
    medication = draw(st.sampled_from(["ketamine", "esketamine"]))
    administered_at = draw(AWARE)
    fields: dict = {
        "session_id": draw(EXTERNAL_ID),
        "medication": medication,
        "administered_at": administered_at,
        "end": draw(st.none() | st.integers(0, 600).map(lambda m: administered_at + timedelta(minutes=m))),
        "lot_number": draw(st.none() | SHORT_TEXT),
        "practitioner_id": draw(st.none() | EXTERNAL_ID),
        "status": draw(st.sampled_from(["completed", "stopped", "in-progress"])),
    }
    if medication == "esketamine":
        fields |= {
            "route": "intranasal",
            "dose_mg": draw(st.sampled_from([28, 56, 84])),
            "form": draw(st.sampled_from([None, "nasal-spray"])),
        }
        return DoseRecord.model_validate(fields)
    route = draw(st.sampled_from(["iv", "im", "sublingual", "oral", "buccal", "intranasal"]))
    form = draw(st.sampled_from([None, "solution", "troche", "tablet", "nasal-spray"]))
    per_kg = draw(st.none() | st.floats(0.05, 3, allow_nan=False).map(lambda x: round(x, 2)))
    weight = draw(st.none() | st.floats(2, 400).map(lambda x: round(x, 1)))
    dose_mg = draw(st.floats(0.5, 2000).map(lambda x: round(x, 1)))
    if per_kg is not None and weight is not None:
        dose_mg = round(per_kg * weight, 3) or 0.001
    minutes = draw(st.none() | st.integers(1, 600)) if route == "iv" else None
    if minutes is not None and fields["end"] is not None:  # a consistent end: within the 1-minute tolerance
        fields["end"] = administered_at + timedelta(minutes=minutes, seconds=draw(st.integers(-60, 60)))
    fields |= {
        "route": route,
        "form": form,
        "dose_mg": dose_mg,
        "dose_mg_per_kg": per_kg,
        "weight_kg": weight,
        "infusion_minutes": minutes,
        "unit_strength_mg": draw(st.none() | st.floats(1, 2000).map(lambda x: round(x, 1)))
        if form in ("troche", "tablet")
        else None,
    }
    return DoseRecord.model_validate(fields)


@settings(max_examples=50, deadline=None)
@given(record=doses(), patient_id=EXTERNAL_ID, external_id=EXTERNAL_ID)
def test_any_dose_maps_to_valid_fhir(record: DoseRecord, patient_id: str, external_id: str) -> None:
    session = SESSION.model_copy(update={"patient_id": patient_id})
    ctx = make_context({("sessions", record.session_id): session})
    data, *rest = (assert_valid(r) for r in to_fhir_dose(record, external_id=external_id, ctx=ctx))
    assert data["dosage"]["dose"]["value"] == record.dose_mg
    assert "e" not in data["dosage"]["text"].split(" ")[0]  # no exponent notation in the text
    if rest:  # the infusion Procedure covers exactly the administration's own period
        [procedure] = rest
        assert record.route == "iv"
        assert procedure["performedPeriod"] == data["effectivePeriod"]
        assert data["partOf"] == [{"reference": f"Procedure/{procedure['id']}"}]
