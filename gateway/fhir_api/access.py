"""What a /fhir token may see: its clinics, its SMART scopes and, for patient/ scopes, its patient.

SMART App Launch 2.x scopes (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html):
every query of the FHIR API (read, search, ``_include``, ``_revinclude``, ``$everything``, ``$export``)
asks :class:`FhirAccess` for the rule of the resource type it touches, so no path can return a resource
the token was not granted:

* ``clinic_pks``: the clinics the client is granted (narrowed to the token's clinic when it is bound to one);
* ``rule(type, permission)``: an OR of AND-ed search clauses. Each scope that covers the type contributes
  its v2 query constraint (``patient/Observation.rs?category=vital-signs``); a ``patient/`` scope adds the
  launch patient's compartment (``patient=<id>``, or ``_id`` for Patient). ``[]`` means "not allowed",
  ``[()]`` "no constraint".

Types outside every scope answer 403; resources outside a rule are simply not found.

:class:`AccessCache` keeps what a bearer token resolved to for ``ttl`` seconds (2 by default), keyed by the
token's SHA-256, so a client paging or reading in a loop costs one token lookup per interval instead of one
per request. A revoked or expired token therefore stops working on /fhir within ``ttl`` seconds (RFC 7009
§2.2 allows such a delay); errors are never cached.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.auth.scopes import ScopeSet
from gateway.auth.service import Principal
from gateway.core.errors import FhirError, forbidden
from gateway.store.search_params import SEARCH_PARAMS
from gateway.store.search_query import (
    Clause,
    Conjunction,
    ReferenceValue,
    SearchError,
    constraint_clauses,
)

#: types outside the Patient compartment that a patient/ scope may read whole (shared by the clinic's
#: patients, naming none of them); any other type without a patient parameter is closed to patient/ scopes
SHARED_TYPES = frozenset(
    {
        "CodeSystem",
        "Device",
        "Location",
        "Medication",
        "Organization",
        "Practitioner",
        "PractitionerRole",
        "Questionnaire",
        "StructureDefinition",
        "ValueSet",
    }
)
#: client kinds that read /fhir (clinic tokens push records through /api/v1 only)
FHIR_CLIENT_KINDS = frozenset({"ehr", "app"})


def compartment_clause(resource_type: str, patient_id: str) -> Clause | None:
    """The clause that keeps ``resource_type`` to one patient's compartment; None for types outside it
    (Practitioner, Organization: shared by the clinic's patients)."""
    if resource_type == "Patient":
        return Clause("_id", "id", (patient_id,))
    params = SEARCH_PARAMS.get(resource_type, {})
    for name in ("patient", "subject"):
        if name in params and params[name].type == "reference":
            return Clause(name, "reference", (ReferenceValue("Patient", patient_id),))
    return None


@dataclass(frozen=True)
class FhirAccess:
    clinic_pks: tuple[int, ...]
    scopes: ScopeSet
    patient_id: str | None = None
    #: who asked (for the audit trail)
    principal: Principal | None = None
    #: rule() by (type, permission): a token's scopes do not change, and the AccessCache keeps this object
    _rules: dict[tuple[str, str], list[Conjunction]] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    @classmethod
    def from_principal(cls, principal: Principal) -> FhirAccess:
        if principal.kind not in FHIR_CLIENT_KINDS:
            raise forbidden("this token is not for the FHIR API (use an ehr or app client)")
        clinics = principal.clinic_pks
        if principal.clinic_pk is not None:
            clinics = tuple(pk for pk in clinics if pk == principal.clinic_pk)
        return cls(
            clinic_pks=tuple(clinics),
            scopes=ScopeSet.of(principal.scopes),
            patient_id=principal.patient_id,
            principal=principal,
        )

    def allows(self, resource_type: str, permission: str = "r") -> bool:
        return bool(self.rule(resource_type, permission))

    def require(self, resource_type: str, permission: str = "r") -> list[Conjunction]:
        """The rule, or 403 when no scope grants ``permission`` on the type."""
        rule = self.rule(resource_type, permission)
        if not rule:
            verb = {"r": "read", "s": "search"}.get(permission, permission)
            raise forbidden(f"the token's scopes do not allow {verb} on {resource_type}")
        return rule

    def rule(self, resource_type: str, permission: str = "r") -> list[Conjunction]:
        found = self._rules.get((resource_type, permission))
        if found is None:
            found = self._rules[(resource_type, permission)] = self._rule(resource_type, permission)
        return list(found)

    def _rule(self, resource_type: str, permission: str) -> list[Conjunction]:
        rule: list[Conjunction] = []
        for scope in self.scopes.scopes:
            if not scope.covers(resource_type, permission):
                continue
            try:
                clauses = list(constraint_clauses(resource_type, scope.query))
            except SearchError:
                continue  # a constraint the index cannot answer grants nothing (never more)
            if scope.context == "patient":
                if self.patient_id is None:
                    continue  # a patient/ scope without a launch patient grants nothing
                clause = compartment_clause(resource_type, self.patient_id)
                if clause is not None:
                    clauses.append(clause)
                elif resource_type not in SHARED_TYPES:
                    continue  # no way to keep it to the patient (Group lists members): grants nothing
            conjunction = tuple(clauses)
            if not conjunction:
                return [()]
            if conjunction not in rule:
                rule.append(conjunction)
        return rule


def access_error(error: SearchError) -> FhirError:
    return FhirError(400, error.code, str(error), expression=[error.expression] if error.expression else [])


class AccessCache:
    """Bearer token (by SHA-256) -> FhirAccess for ``ttl`` seconds; at most ``size`` entries."""

    def __init__(self, ttl: float = 2.0, size: int = 10_000, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.size = size
        self.clock = clock
        self._entries: dict[str, tuple[float, FhirAccess]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(authorization: str) -> str:
        return hashlib.sha256(authorization.encode()).hexdigest()

    def peek(self, authorization: str) -> FhirAccess | None:
        """What the token resolved to within ``ttl``, or None (no lookup)."""
        return self._fresh(self.key(authorization), self.clock())

    def _fresh(self, key: str, now: float) -> FhirAccess | None:
        found = self._entries.get(key)
        return found[1] if found is not None and found[0] > now else None

    def get(self, authorization: str, resolve: Callable[[], FhirAccess]) -> FhirAccess:
        key = self.key(authorization)
        now = self.clock()
        found = self._fresh(key, now)
        if found is not None:
            return found
        access = resolve()  # raises for a bad token or a token that may not use /fhir: nothing is cached
        with self._lock:
            if len(self._entries) >= self.size:
                self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
                if len(self._entries) >= self.size:
                    self._entries.clear()
            self._entries[key] = (now + self.ttl, access)
        return access
