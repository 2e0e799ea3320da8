"""docs/codes.md keeps up with the code tables: every code the mappings send is documented, and vice versa.

* Every coding in ``mappings/codes/*.py`` (constants, including nested tables) and every code of every
  instrument (``Instrument.codes()``) is listed in docs/codes.md in backticks, in the same ``##`` section as
  its code-system URI in backticks.
* Every code-system URI, extension URL and Questionnaire canonical the code tables use appears in backticks.
* Every US Core profile a mapping module declares is named in the "US Core profiles" section.
* Conversely, every LOINC / SNOMED CT / CPT / RxNorm-like code written in backticks in docs/codes.md occurs in
  ``mappings/`` (as a code, or in a comment naming a code left out on purpose), so the doc lists nothing the
  code does not know about.
"""

from __future__ import annotations

import ast
import functools
import importlib
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import mappings.codes
from mappings.codes import kap_adverse_events, ucum
from mappings.instruments import INSTRUMENTS

ROOT = Path(__file__).resolve().parents[2]
DOC_PATH = ROOT / "docs/codes.md"
DOC = DOC_PATH.read_text(encoding="utf-8")
#: the doc's ``##`` sections (text up to the next ``##`` heading)
SECTIONS = re.split(r"^## ", DOC, flags=re.MULTILINE)

US_CORE_SD = "http://hl7.org/fhir/us/core/StructureDefinition/"
PROFILE_NAME = re.compile(rf"(?:{re.escape(US_CORE_SD)})?(us-core-[a-z-]+)")
#: backticked doc tokens that look like LOINC (incl. LA answers), SNOMED CT, CPT or RxNorm codes
CODE_LIKE = re.compile(r"LA\d+-\d|\d+-\d|\d{4}T|\d{4,}")


def _is_uri(value: str) -> bool:
    return value.startswith(("http://", "https://"))


def _walk(value: Any) -> Iterator[tuple[str, str | None]]:
    """(system, code) of every coding in a constant, and (uri, None) of every URI it holds."""
    if isinstance(value, dict):
        if isinstance(value.get("system"), str) and isinstance(value.get("code"), str):
            yield value["system"], value["code"]
            yield value["system"], None
            return
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, tuple | list):
        for item in value:
            yield from _walk(item)
    elif isinstance(value, str) and _is_uri(value):
        yield value, None


def _code_modules() -> list[ModuleType]:
    return [
        importlib.import_module(f"mappings.codes.{info.name}")
        for info in pkgutil.iter_modules(mappings.codes.__path__)
    ]


def _table_entries() -> Iterator[tuple[str, str | None]]:
    for module in _code_modules():
        for name, value in vars(module).items():
            if name.isupper():
                yield from _walk(value)
    # UCUM units are bare strings or (code, display) pairs, not codings
    for name, value in vars(ucum).items():
        if not name.isupper() or name == "UCUM":
            continue
        if isinstance(value, str):
            yield ucum.UCUM, value
        elif isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, str) for v in value):
            yield ucum.UCUM, value[0]
    # adverse-event codes are the keys of the display table
    for event in kap_adverse_events.ADVERSE_EVENT_DISPLAY:
        yield from _walk(kap_adverse_events.adverse_event_coding(event))
    for instrument in INSTRUMENTS.values():
        for code in instrument.codes():
            yield code.system, code.code
            yield code.system, None
        yield instrument.questionnaire_url, None


ENTRIES = list(dict.fromkeys(_table_entries()))
CODINGS = [(system, code) for system, code in ENTRIES if code is not None]
URIS = [system for system, code in ENTRIES if code is None]


def _label(system: str) -> str:
    return system.rstrip("/").rsplit("/", 1)[-1]


def _declared_profiles() -> set[str]:
    """US Core profile names given as string literals in the mapping modules (mappings/*.py)."""
    names = set()
    for path in sorted((ROOT / "mappings").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                match = PROFILE_NAME.fullmatch(node.value)
                if match:
                    names.add(match.group(1))
    return names


@functools.cache
def _mappings_source() -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in sorted((ROOT / "mappings").rglob("*.py")))


def _doc_code_tokens() -> list[str]:
    return list(dict.fromkeys(t for t in re.findall(r"`([^`\n]+)`", DOC) if CODE_LIKE.fullmatch(t)))


def _section(title: str) -> str:
    [section] = [s for s in SECTIONS if s.startswith(title + "\n")]
    return section


def test_collection_is_not_vacuous() -> None:
    systems = {system for system, _ in CODINGS}
    assert len(CODINGS) > 150
    assert {
        "http://loinc.org",
        "http://snomed.info/sct",
        "http://www.nlm.nih.gov/research/umls/rxnorm",
        "http://www.ama-assn.org/go/cpt",
        "http://unitsofmeasure.org",
        "https://kap-gateway.org/fhir/CodeSystem/kap-instruments",
        "https://kap-gateway.org/fhir/CodeSystem/kap-flags",
        "https://kap-gateway.org/fhir/CodeSystem/kap-adverse-events",
    } <= systems
    assert len(_doc_code_tokens()) > 50
    assert len(_declared_profiles()) >= 15


@pytest.mark.parametrize(("system", "code"), [pytest.param(s, c, id=f"{_label(s)}|{c}") for s, c in CODINGS])
def test_code_is_documented(system: str, code: str) -> None:
    assert any(f"`{system}`" in section and f"`{code}`" in section for section in SECTIONS), (
        f"{code} ({system}) is used by the mappings but not listed in docs/codes.md "
        "(in backticks, in the same ## section as its system URI)"
    )


@pytest.mark.parametrize("uri", [pytest.param(uri, id=uri) for uri in URIS])
def test_uri_is_documented(uri: str) -> None:
    assert f"`{uri}`" in DOC, f"{uri} is used by the mappings but not listed in docs/codes.md"


@pytest.mark.parametrize("name", [pytest.param(name, id=name) for name in sorted(_declared_profiles())])
def test_declared_profile_is_documented(name: str) -> None:
    assert name in _section("US Core profiles"), f"{name} is missing from docs/codes.md, US Core profiles"


@pytest.mark.parametrize("token", [pytest.param(token, id=token) for token in _doc_code_tokens()])
def test_documented_code_occurs_in_mappings(token: str) -> None:
    assert token in _mappings_source(), f"docs/codes.md lists {token}, which does not occur in mappings/"
