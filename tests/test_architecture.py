"""The house keeps its shape (DESIGN §2): who may import what, checked on the source with ``ast``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def top(name: str) -> str:
    return name.split(".")[0]


@pytest.mark.parametrize("path", modules("mappings"), ids=lambda p: str(p.relative_to(ROOT)))
def test_mappings_stay_pure(path: Path) -> None:
    forbidden = {
        "gateway",
        "sqlmodel",
        "sqlalchemy",
        "httpx",
        "fastapi",
        "starlette",
        "authlib",
        "psycopg",
        "requests",
        "socket",
        "urllib",
        "subprocess",
        "os",
    }
    assert not {top(i) for i in imports_of(path)} & forbidden


@pytest.mark.parametrize(
    "path", modules("gateway") + modules("mappings"), ids=lambda p: str(p.relative_to(ROOT))
)
def test_layering(path: Path) -> None:
    relative = path.relative_to(ROOT).as_posix()
    imported = imports_of(path)
    if not relative.startswith("gateway/db/"):
        assert not {i for i in imported if top(i) in {"sqlmodel", "sqlalchemy", "alembic", "psycopg"}}, (
            "only gateway/db/ imports the ORM"
        )
    if not relative.startswith("gateway/sync/"):
        assert "httpx" not in {top(i) for i in imported}, "only gateway/sync/ makes outbound HTTP"
    if relative != "mappings/fhir.py":
        assert not {i for i in imported if i.startswith("fhir.resources")}, (
            "import FHIR models from mappings.fhir"
        )


def test_the_rules_see_real_imports() -> None:
    """Guards the guard: the checker finds imports that do exist."""
    assert "sqlmodel" in imports_of(ROOT / "gateway" / "db" / "tables.py")
    assert any(i.startswith("fhir.resources") for i in imports_of(ROOT / "mappings" / "fhir.py"))
