"""Instrument → Questionnaire: validity per instrument; every QuestionnaireResponse conforms to its form."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from support.fhir_validator import (
    ProfileValidator,
    errors_only,
    json_schema_errors,
    require_validator,
)

from mappings.assessment import to_fhir_assessment
from mappings.fhir import QuestionnaireResponse
from mappings.instruments import INSTRUMENTS, get_instrument
from mappings.questionnaire import to_fhir_questionnaire
from mappings.records import AssessmentRecord
from tests.mappings.conftest import load_clinic_fixture, make_context
from tests.mappings.test_map_assessment import GOLDEN as ASSESSMENT_GOLDEN
from tests.mappings.test_map_assessment import assessment_records

ORDINAL_VALUE = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"
KEYS = [pytest.param(key, id=key) for key in INSTRUMENTS]


def _questionnaire(key: str) -> dict[str, Any]:
    return json.loads(to_fhir_questionnaire(get_instrument(key)).model_dump_json(exclude_none=True))


def _extension(element: dict[str, Any], url: str) -> Any:
    [value] = [ext for ext in element.get("extension", []) if ext["url"] == url]
    return next(v for k, v in value.items() if k.startswith("value"))


def assert_conforms(response: dict[str, Any], questionnaire: dict[str, Any]) -> None:
    """The response answers this form: known linkIds in form order, answers among the options or in range."""
    assert response["questionnaire"] == questionnaire["url"]
    form = {item["linkId"]: item for item in questionnaire["item"]}
    order = list(form)
    positions = [order.index(item["linkId"]) for item in response["item"]]
    assert positions == sorted(positions)
    for answered in response["item"]:
        item = form[answered["linkId"]]
        if "answer" not in answered:  # an unanswered safety item, listed with its data-absent reason
            assert answered["extension"] == [
                {"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}
            ]
            assert response["status"] == "in-progress"
            continue
        [answer] = answered["answer"]
        if item["type"] == "choice":
            assert answer["valueCoding"] in [option["valueCoding"] for option in item["answerOption"]]
        elif item["type"] == "integer":
            assert _extension(item, MIN_VALUE) <= answer["valueInteger"] <= _extension(item, MAX_VALUE)
        else:
            assert item["type"] == "decimal" and item["readOnly"] is True
            assert isinstance(answer["valueDecimal"], int | float)


@pytest.mark.parametrize("key", KEYS)
def test_questionnaire_is_valid(key: str, profile_validator: ProfileValidator) -> None:
    questionnaire = to_fhir_questionnaire(get_instrument(key))
    assert type(questionnaire).model_validate(questionnaire.model_dump()) == questionnaire
    resource = json.loads(questionnaire.model_dump_json(exclude_none=True))
    assert json_schema_errors(resource) == []
    issues = profile_validator.validate_one(resource)
    assert [str(issue) for issue in errors_only(issues)] == []


@pytest.mark.parametrize("key", KEYS)
def test_questionnaire_shape(key: str) -> None:
    instrument = get_instrument(key)
    questionnaire = _questionnaire(key)
    assert questionnaire["id"] == key
    assert questionnaire["url"] == instrument.questionnaire_url
    assert questionnaire["status"] == "active"
    assert questionnaire["subjectType"] == ["Patient"]
    assert questionnaire["name"].isidentifier() and questionnaire["name"][0].isupper()  # que-0
    assert questionnaire["code"] == [
        {
            "system": instrument.panel.system,
            "code": instrument.panel.code,
            "display": instrument.panel.display,
        }
    ]
    items = questionnaire["item"]
    assert [item["linkId"] for item in items] == [
        *(f"/{item.code.code}" for item in instrument.items),
        f"/{instrument.total_code.code}",
    ]
    assert "meta" not in questionnaire
    for defined, item in zip(instrument.items, items, strict=False):
        assert item["code"][0]["code"] == defined.code.code
        assert item["text"] == defined.text
        if item["type"] == "choice":
            assert [o["valueCoding"]["code"] for o in item["answerOption"]] == [
                a.code.code for a in defined.answers
            ]
            if defined.scored:
                assert [_extension(o, ORDINAL_VALUE) for o in item["answerOption"]] == [
                    a.score for a in defined.answers
                ]
            else:
                assert all("extension" not in o for o in item["answerOption"])
        else:
            assert item["type"] == "integer"
            assert (_extension(item, MIN_VALUE), _extension(item, MAX_VALUE)) == (
                defined.min_score,
                defined.max_score,
            )


@pytest.mark.parametrize(
    ("key", "item_types", "total_type"),
    [
        pytest.param("phq9", {"choice"}, "decimal", id="phq9"),
        pytest.param("phq2", {"choice"}, "decimal", id="phq2"),
        pytest.param("gad7", {"choice"}, "decimal", id="gad7"),
        pytest.param("cssrs", {"choice"}, "choice", id="cssrs"),
        pytest.param("madrs", {"integer"}, "decimal", id="madrs"),
        pytest.param("pcl5", {"integer"}, "decimal", id="pcl5"),
        pytest.param("cadss", {"integer"}, "decimal", id="cadss"),
    ],
)
def test_item_types(key: str, item_types: set[str], total_type: str) -> None:
    *items, total = _questionnaire(key)["item"]
    assert {item["type"] for item in items} == item_types
    assert total["type"] == total_type and total["readOnly"] is True


def test_gad7_item2_offers_the_primary_code_only() -> None:
    item = _questionnaire("gad7")["item"][1]
    assert [(o["valueCoding"]["code"], _extension(o, ORDINAL_VALUE)) for o in item["answerOption"]] == [
        ("LA6568-5", 0),
        ("LA6569-3", 1),
        ("LA18938-3", 2),
        ("LA6571-9", 3),
    ]


@pytest.mark.parametrize("name", [pytest.param(name, id=name) for name in ASSESSMENT_GOLDEN])
def test_golden_responses_conform(name: str) -> None:
    fixture = load_clinic_fixture(name)
    record = AssessmentRecord.model_validate(fixture["record"])
    for resource in to_fhir_assessment(record, external_id=fixture["id"], ctx=make_context()):
        if isinstance(resource, QuestionnaireResponse):
            response = json.loads(resource.model_dump_json(exclude_none=True))
            assert_conforms(response, _questionnaire(record.instrument))


@settings(max_examples=50, deadline=None)
@given(record=assessment_records())
def test_any_response_conforms(record: AssessmentRecord) -> None:
    require_validator(need_node=False)
    resources = to_fhir_assessment(record, external_id="asm-1", ctx=make_context())
    responses = [r for r in resources if isinstance(r, QuestionnaireResponse)]
    assert len(responses) == (record.items is not None)
    for response in responses:
        assert_conforms(
            json.loads(response.model_dump_json(exclude_none=True)), _questionnaire(record.instrument)
        )
