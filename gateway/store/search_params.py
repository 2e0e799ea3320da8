"""Search parameters the FHIR server indexes, per resource type (FHIR R4 + US Core 6.1 search parameters).

Each parameter names its type and the element paths it reads (a small subset of FHIRPath: dotted
element names, choice types spelled out). ``identifier`` is indexed for every type that has one.
Sources: hl7.org/fhir/R4/searchparameter-registry.html, hl7.org/fhir/us/core/STU6.1/search-parameters.html
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ParamType = Literal["token", "reference", "date", "string"]


@dataclass(frozen=True)
class SearchParam:
    type: ParamType
    paths: tuple[str, ...]
    #: for reference parameters: only targets of this type (``patient`` = subject that is a Patient)
    target: str | None = None


def _p(type_: ParamType, *paths: str, target: str | None = None) -> SearchParam:
    return SearchParam(type_, paths, target)


IDENTIFIER = _p("token", "identifier")
PATIENT_SUBJECT = _p("reference", "subject", target="Patient")
SUBJECT = _p("reference", "subject")
ENCOUNTER = _p("reference", "encounter")

SEARCH_PARAMS: dict[str, dict[str, SearchParam]] = {
    "Patient": {
        "identifier": IDENTIFIER,
        "name": _p("string", "name"),
        "family": _p("string", "name.family"),
        "given": _p("string", "name.given"),
        "birthdate": _p("date", "birthDate"),
        "gender": _p("token", "gender"),
        "organization": _p("reference", "managingOrganization"),
    },
    "Practitioner": {"identifier": IDENTIFIER, "name": _p("string", "name")},
    "Organization": {"identifier": IDENTIFIER, "name": _p("string", "name")},
    "Encounter": {
        "identifier": IDENTIFIER,
        "patient": PATIENT_SUBJECT,
        "subject": SUBJECT,
        "date": _p("date", "period"),
        "status": _p("token", "status"),
        "class": _p("token", "class"),
        "type": _p("token", "type"),
        "practitioner": _p("reference", "participant.individual", target="Practitioner"),
        "service-provider": _p("reference", "serviceProvider"),
    },
    "Procedure": {
        "identifier": IDENTIFIER,
        "patient": PATIENT_SUBJECT,
        "subject": SUBJECT,
        "date": _p("date", "performedDateTime", "performedPeriod"),
        "code": _p("token", "code"),
        "status": _p("token", "status"),
        "encounter": ENCOUNTER,
    },
    "MedicationAdministration": {
        "identifier": IDENTIFIER,
        "patient": PATIENT_SUBJECT,
        "subject": SUBJECT,
        "effective-time": _p("date", "effectiveDateTime", "effectivePeriod"),
        "status": _p("token", "status"),
        "context": _p("reference", "context"),
        # the gateway's doses carry a contained Medication (#med) with the code and lot
        "code": _p("token", "medicationCodeableConcept", "contained.code"),
        "performer": _p("reference", "performer.actor"),
    },
    "Observation": {
        "identifier": IDENTIFIER,
        "patient": PATIENT_SUBJECT,
        "subject": SUBJECT,
        "code": _p("token", "code"),
        "component-code": _p("token", "component.code"),
        "category": _p("token", "category"),
        "date": _p("date", "effectiveDateTime", "effectivePeriod", "effectiveInstant"),
        "status": _p("token", "status"),
        "encounter": ENCOUNTER,
        "derived-from": _p("reference", "derivedFrom"),
        "has-member": _p("reference", "hasMember"),
    },
    "QuestionnaireResponse": {
        "identifier": IDENTIFIER,
        "patient": PATIENT_SUBJECT,
        "subject": SUBJECT,
        "authored": _p("date", "authored"),
        "status": _p("token", "status"),
        "questionnaire": _p("token", "questionnaire"),
        "encounter": ENCOUNTER,
    },
    "AdverseEvent": {
        "identifier": IDENTIFIER,
        "subject": SUBJECT,
        "date": _p("date", "date"),
        "event": _p("token", "event"),
        "actuality": _p("token", "actuality"),
        "seriousness": _p("token", "seriousness"),
        "severity": _p("token", "severity"),
        "substance": _p("reference", "suspectEntity.instance"),
    },
    "Flag": {
        "identifier": IDENTIFIER,
        "patient": PATIENT_SUBJECT,
        "subject": SUBJECT,
        "date": _p("date", "period"),
        "encounter": ENCOUNTER,
        "author": _p("reference", "author"),
    },
    "Provenance": {
        "target": _p("reference", "target"),
        "patient": _p("reference", "target", target="Patient"),
        "recorded": _p("date", "recorded"),
        "agent": _p("reference", "agent.who"),
    },
    "Condition": {
        "identifier": IDENTIFIER,
        "patient": PATIENT_SUBJECT,
        "subject": SUBJECT,
        "code": _p("token", "code"),
        "category": _p("token", "category"),
        "clinical-status": _p("token", "clinicalStatus"),
        "verification-status": _p("token", "verificationStatus"),
        "onset-date": _p("date", "onsetDateTime", "onsetPeriod"),
        "recorded-date": _p("date", "recordedDate"),
        "encounter": ENCOUNTER,
    },
    "MedicationRequest": {
        "identifier": IDENTIFIER,
        "patient": PATIENT_SUBJECT,
        "subject": SUBJECT,
        "status": _p("token", "status"),
        "intent": _p("token", "intent"),
        "code": _p("token", "medicationCodeableConcept", "contained.code"),
        "authoredon": _p("date", "authoredOn"),
        "encounter": ENCOUNTER,
    },
    "AllergyIntolerance": {
        "identifier": IDENTIFIER,
        "patient": _p("reference", "patient", target="Patient"),
        "code": _p("token", "code"),
        "clinical-status": _p("token", "clinicalStatus"),
        "verification-status": _p("token", "verificationStatus"),
    },
    "Questionnaire": {
        "url": _p("token", "url"),
        "status": _p("token", "status"),
        "code": _p("token", "code"),
    },
}
