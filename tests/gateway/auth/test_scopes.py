"""SMART scopes v1/v2 (checklist SCOPE-1, SCOPE-3, SCOPE-5): parsing, checks, constraints, ceilings."""

from __future__ import annotations

import pytest

from gateway.auth.scopes import (
    ResourceScope,
    ScopeSet,
    is_malformed_resource_scope,
    parse_scope,
    scope_within,
)

LAB = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("system/*.read", ResourceScope("system", "*", frozenset("rs")), id="v1-read"),
        pytest.param(
            "patient/Observation.write",
            ResourceScope("patient", "Observation", frozenset("cud")),
            id="v1-write",
        ),
        pytest.param("user/Patient.*", ResourceScope("user", "Patient", frozenset("cruds")), id="v1-star"),
        pytest.param("system/*.rs", ResourceScope("system", "*", frozenset("rs")), id="v2-rs"),
        pytest.param("patient/*.cruds", ResourceScope("patient", "*", frozenset("cruds")), id="v2-all"),
        pytest.param("user/Encounter.r", ResourceScope("user", "Encounter", frozenset("r")), id="v2-r"),
        pytest.param("system/Patient.cud", ResourceScope("system", "Patient", frozenset("cud")), id="v2-cud"),
        pytest.param(
            f"patient/Observation.rs?category={LAB}",
            ResourceScope("patient", "Observation", frozenset("rs"), (("category", LAB),)),
            id="v2-query",
        ),
        pytest.param(
            "patient/Observation.rs?category=http%3A%2F%2Fx.test%7Cvital-signs",
            ResourceScope(
                "patient", "Observation", frozenset("rs"), (("category", "http://x.test|vital-signs"),)
            ),
            id="v2-query-percent-encoded",
        ),
        pytest.param(
            "system/Observation.s?status=final&category=vital-signs",
            ResourceScope(
                "system", "Observation", frozenset("s"), (("category", "vital-signs"), ("status", "final"))
            ),
            id="v2-query-and",
        ),
    ],
)
def test_parse_resource_scopes(text: str, expected: ResourceScope) -> None:
    assert parse_scope(text) == expected
    assert not is_malformed_resource_scope(text)


@pytest.mark.parametrize(
    "text",
    [
        "openid",
        "fhirUser",
        "profile",
        "launch",
        "launch/patient",
        "launch/encounter",
        "offline_access",
        "online_access",
        "clinic/records.write",
    ],
)
def test_non_resource_scopes_are_not_resource_scopes_and_not_malformed(text: str) -> None:
    assert parse_scope(text) is None
    assert not is_malformed_resource_scope(text)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("patient/Observation.dus", id="out-of-order"),
        pytest.param("patient/Observation.rr", id="repeated-letter"),
        pytest.param("patient/Observation.x", id="unknown-letter"),
        pytest.param("system/*.", id="empty-permissions"),
        pytest.param("system/*.read?category=x", id="v1-with-query"),
        pytest.param("system/Observation.rs?", id="empty-query"),
        pytest.param("system/Observation.rs?category", id="query-without-value"),
        pytest.param("system/Observation.rs?category=", id="query-empty-value"),
        pytest.param("system/observation.rs", id="lowercase-type"),
        pytest.param("*/Observation.rs", id="wildcard-context"),
        pytest.param("admin/Observation.rs", id="unknown-context-like"),
    ],
)
def test_malformed_resource_scopes_are_never_reinterpreted(text: str) -> None:
    assert parse_scope(text) is None
    if text.startswith(("patient/", "user/", "system/", "*/")):
        assert is_malformed_resource_scope(text)


@pytest.mark.parametrize(
    ("scopes", "resource_type", "permission", "allowed"),
    [
        (["system/*.read"], "Observation", "r", True),
        (["system/*.read"], "Observation", "s", True),
        (["system/*.read"], "Observation", "c", False),
        (["system/*.rs"], "Patient", "s", True),
        (["system/Observation.rs"], "Patient", "r", False),
        (["system/Observation.r"], "Observation", "s", False),
        (["patient/*.write"], "Observation", "u", True),
        (["patient/*.write"], "Observation", "r", False),
        (["openid", "fhirUser"], "Patient", "r", False),
        ([], "Patient", "r", False),
        ([f"patient/Observation.rs?category={LAB}"], "Observation", "s", True),
        ([f"patient/Observation.rs?category={LAB}"], "Condition", "s", False),
        (["patient/Observation.dus"], "Observation", "d", False),
    ],
)
def test_allows(scopes: list[str], resource_type: str, permission: str, allowed: bool) -> None:
    assert ScopeSet.of(scopes).allows(resource_type, permission) is allowed


def test_constraints_empty_when_not_allowed() -> None:
    assert ScopeSet.of(["system/Patient.rs"]).constraints("Observation", "s") == []


def test_constraints_unconstrained_wins_over_constrained() -> None:
    scopes = ScopeSet.of([f"patient/Observation.rs?category={LAB}", "patient/*.rs"])
    assert scopes.constraints("Observation", "s") == [()]


def test_constraints_or_of_and() -> None:
    scopes = ScopeSet.of(
        [
            f"patient/Observation.rs?category={LAB}",
            "patient/Observation.rs?category=vital-signs&status=final",
            f"patient/Observation.s?category={LAB}",  # same constraint again: listed once
            "patient/Condition.rs",
        ]
    )
    assert scopes.constraints("Observation", "s") == [
        (("category", LAB),),
        (("category", "vital-signs"), ("status", "final")),
    ]
    assert scopes.constraints("Observation", "r") == [
        (("category", LAB),),
        (("category", "vital-signs"), ("status", "final")),
    ]
    assert scopes.constraints("Condition", "r") == [()]


@pytest.mark.parametrize(
    ("scopes", "patient_context"),
    [
        (["patient/*.rs"], True),
        (["launch/patient", "openid"], False),
        (["system/*.rs"], False),
        (["user/*.rs", "patient/Observation.r"], True),
    ],
)
def test_patient_context(scopes: list[str], patient_context: bool) -> None:
    assert ScopeSet.of(scopes).patient_context is patient_context


@pytest.mark.parametrize(
    ("scope", "ceiling", "within"),
    [
        ("system/Observation.rs", ["system/*.rs"], True),
        ("system/Observation.read", ["system/*.rs"], True),
        ("system/*.read", ["system/*.rs"], True),
        ("system/*.rs", ["system/*.read"], True),
        ("system/*.cruds", ["system/*.rs"], False),
        ("system/*.write", ["system/*.rs"], False),
        ("patient/*.rs", ["system/*.rs"], False),
        ("system/Observation.rs?category=vital-signs", ["system/Observation.rs"], True),
        ("system/Observation.rs", ["system/Observation.rs?category=vital-signs"], False),
        (
            "system/Observation.rs?category=vital-signs&status=final",
            ["system/Observation.rs?category=vital-signs"],
            True,
        ),
        ("system/Patient.rs", ["system/Observation.rs"], False),
        ("launch/patient", ["launch/patient", "patient/*.rs"], True),
        ("offline_access", ["patient/*.rs"], False),
        ("system/Observation.dus", ["system/Observation.dus"], False),
    ],
)
def test_scope_within_ceiling(scope: str, ceiling: list[str], within: bool) -> None:
    assert scope_within(scope, ceiling) is within


def test_scope_set_within() -> None:
    ceiling = ScopeSet.of(["system/*.rs"])
    assert ScopeSet.of(["system/Patient.r", "system/Observation.s"]).within(ceiling)
    assert not ScopeSet.of(["system/Patient.r", "system/Observation.c"]).within(ceiling)
