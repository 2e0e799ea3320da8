"""SMART resource scopes, v1 and v2, with v2 query constraints.

Spec: SMART App Launch 2.x, "Scopes and Launch Context"
(https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html).

- v1: ``(patient|user|system)/(Type|*).(read|write|*)``; ``.read`` = ``rs``, ``.write`` = ``cud``,
  ``.*`` = ``cruds``.
- v2: ``(patient|user|system)/(Type|*).<cruds>[?param=value&...]`` where ``<cruds>`` is a non-empty
  subset of ``c r u d s`` in that order. An out-of-order suffix (``.dus``) is never reinterpreted: it is
  not a resource scope at all (``parse_scope`` answers None, ``is_malformed_resource_scope`` True).
- ``openid``, ``fhirUser``, ``profile``, ``launch``, ``launch/patient``, ``offline_access`` ... are not
  resource scopes (``parse_scope`` answers None; they grant no data access).

A ``ScopeSet`` answers the questions the FHIR API asks: may this token do ``permission`` (one of
``cruds``) on ``resource_type`` at all, and if so under which query constraints (``constraints``: an OR
of AND-ed ``param=value`` filters; a list holding ``()`` means unconstrained). authlib's own scope check
is a plain set comparison, blind to v1/v2 equivalence, wildcards and constraints, so this module is the
one place scopes are judged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

CONTEXTS = ("patient", "user", "system")
PERMISSIONS = "cruds"
V1_PERMISSIONS = {"read": frozenset("rs"), "write": frozenset("cud"), "*": frozenset(PERMISSIONS)}

_RESOURCE_SCOPE = re.compile(
    r"^(?P<context>patient|user|system)/(?P<type>\*|[A-Z][A-Za-z]{0,63})\.(?P<rest>.+)$"
)
_V2_PERMISSIONS = re.compile(r"^c?r?u?d?s?$")
_QUERY_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_:.-]{0,63}$")
#: looks like a resource scope (context/Type.something), whether or not it is well formed
_RESOURCE_LIKE = re.compile(r"^(patient|user|system|\*)/[^\s.]+\.\S*$")

Query = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ResourceScope:
    context: str
    resource_type: str
    permissions: frozenset[str]
    query: Query = ()

    def covers(self, resource_type: str, permission: str) -> bool:
        return permission in self.permissions and self.resource_type in ("*", resource_type)

    def within(self, ceiling: ResourceScope) -> bool:
        """Whether everything this scope grants is also granted by ``ceiling``."""
        return (
            self.context == ceiling.context
            and ceiling.resource_type in ("*", self.resource_type)
            and self.permissions <= ceiling.permissions
            and set(ceiling.query) <= set(self.query)
        )


def parse_scope(text: str) -> ResourceScope | None:
    """The resource scope ``text`` names, or None (not a resource scope, or not a well-formed one)."""
    match = _RESOURCE_SCOPE.match(text)
    if match is None:
        return None
    rest = match["rest"]
    suffix, has_query, query_text = rest.partition("?")
    if suffix in V1_PERMISSIONS:
        if has_query:
            return None  # v1 scopes carry no constraints
        permissions = V1_PERMISSIONS[suffix]
    elif suffix and _V2_PERMISSIONS.fullmatch(suffix):
        permissions = frozenset(suffix)
    else:
        return None
    query: list[tuple[str, str]] = []
    if has_query:
        if not query_text:
            return None
        for part in query_text.split("&"):
            name, equals, value = part.partition("=")
            if not equals or not value or not _QUERY_NAME.fullmatch(name):
                return None
            query.append((name, unquote(value)))
    return ResourceScope(
        context=match["context"],
        resource_type=match["type"],
        permissions=permissions,
        query=tuple(sorted(set(query))),
    )


def is_malformed_resource_scope(text: str) -> bool:
    """Looks like ``context/Type.x`` but is not a valid v1 or v2 resource scope (refuse it, do not guess)."""
    return bool(_RESOURCE_LIKE.match(text)) and parse_scope(text) is None


@dataclass(frozen=True)
class ScopeSet:
    scopes: tuple[ResourceScope, ...]

    @classmethod
    def of(cls, scopes: Iterable[str]) -> ScopeSet:
        parsed = (parse_scope(text) for text in scopes)
        return cls(tuple(dict.fromkeys(scope for scope in parsed if scope is not None)))

    def allows(self, resource_type: str, permission: str) -> bool:
        """Whether the token may do ``permission`` on ``resource_type`` at all (perhaps constrained)."""
        return any(scope.covers(resource_type, permission) for scope in self.scopes)

    def constraints(self, resource_type: str, permission: str) -> list[Query]:
        """The query constraints under which ``permission`` on ``resource_type`` is allowed.

        ``[]``: not allowed. ``[()]``: allowed without constraint. Otherwise: allowed for resources that
        match any one of the entries, each entry an AND of ``(param, value)`` pairs.
        """
        found: list[Query] = []
        for scope in self.scopes:
            if not scope.covers(resource_type, permission):
                continue
            if not scope.query:
                return [()]
            if scope.query not in found:
                found.append(scope.query)
        return found

    @property
    def patient_context(self) -> bool:
        """Whether any resource scope is a ``patient/`` scope (the token is limited to one patient)."""
        return any(scope.context == "patient" for scope in self.scopes)

    @property
    def resource_types(self) -> frozenset[str]:
        """The resource types named (``*`` for a wildcard)."""
        return frozenset(scope.resource_type for scope in self.scopes)

    def within(self, ceiling: ScopeSet) -> bool:
        """Whether every scope here is granted by some scope of ``ceiling``."""
        return all(any(scope.within(top) for top in ceiling.scopes) for scope in self.scopes)


def scope_within(text: str, ceiling: Iterable[str]) -> bool:
    """Whether the scope string ``text`` is granted by the ceiling (a list of scope strings).

    A resource scope is within a ceiling that grants at least as much (``system/Observation.rs`` is
    within ``system/*.read``); any other scope must appear in the ceiling verbatim.
    """
    ceiling = list(ceiling)
    scope = parse_scope(text)
    if scope is None:
        return text in ceiling and not is_malformed_resource_scope(text)
    return any(scope.within(top) for top in ScopeSet.of(ceiling).scopes)
