"""Make ``tests/support`` importable as ``support`` (tests/ has no __init__.py) and share its fixtures."""

import sys
from pathlib import Path

_TESTS_DIR = str(Path(__file__).resolve().parents[1])
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

from support.fhir_validator import profile_validator  # noqa: E402, F401  (session fixture)
