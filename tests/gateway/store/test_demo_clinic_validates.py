"""The whole demo clinic, written through the real write path, is valid FHIR R4 by three independent checks.

Every stored resource (as the gateway serves it, with meta) passes: fhir.resources R4B; the official
FHIR R4 JSON schema; and Medplum's validator (base R4 structure and invariants, plus every profile the
resource declares that is available offline: US Core 5.0.1 Patient, Blood Pressure and MedicationRequest,
and the base R4 vital-sign profiles standing in for the US Core vital-sign profiles they derive from).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date

from fhir.resources.R4B import get_fhir_model_class
from sqlmodel import Session, col, select
from support.fhir_validator import errors_only, json_schema_errors

from gateway.db.tables import ResourceRow
from gateway.demo import load_demo

US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
BASE = "http://hl7.org/fhir/StructureDefinition/"
#: US Core vital-sign profiles -> the base R4 profile they derive from (US Core 6.1 is not available offline)
BASE_EQUIVALENT = {
    f"{US_CORE}us-core-heart-rate": f"{BASE}heartrate",
    f"{US_CORE}us-core-respiratory-rate": f"{BASE}resprate",
    f"{US_CORE}us-core-pulse-oximetry": f"{BASE}oxygensat",
    f"{US_CORE}us-core-body-temperature": f"{BASE}bodytemp",
    f"{US_CORE}us-core-body-weight": f"{BASE}bodyweight",
}
DEMO_PATIENTS = 20  # what `kap-gateway demo` loads by default


def test_full_demo_clinic_passes_independent_validation(engine, settings, profile_validator) -> None:
    with Session(engine, expire_on_commit=False) as session:
        load_demo(session, settings, slug="demo", patients=DEMO_PATIENTS, seed=0, start=date(2026, 1, 5))
        resources = [
            json.loads(row.content)
            for row in session.exec(select(ResourceRow).where(col(ResourceRow.deleted).is_(False)))
        ]
    counts = Counter(r["resourceType"] for r in resources)
    assert counts["Patient"] == DEMO_PATIENTS
    assert {
        "Encounter",
        "Procedure",
        "MedicationAdministration",
        "Observation",
        "QuestionnaireResponse",
        "AdverseEvent",
        "Provenance",
        "Organization",
        "Practitioner",
    } <= set(counts)

    # dose and session coding: each IV infusion's 96365 Procedure covers exactly its administration's own
    # period; dosing sessions carry 0820T only (the psychotherapy is part of it, never coded beside it)
    by_ref = {f"{r['resourceType']}/{r['id']}": r for r in resources}
    infusions = [
        r for r in resources if r["resourceType"] == "Procedure" and "96365" in json.dumps(r["code"])
    ]
    iv_doses = [
        r
        for r in resources
        if r["resourceType"] == "MedicationAdministration" and "47625008" in json.dumps(r["dosage"]["route"])
    ]
    assert iv_doses and len(infusions) == len(iv_doses)  # every demo infusion runs 40 minutes
    for administration in iv_doses:
        [part_of] = administration["partOf"]
        assert by_ref[part_of["reference"]]["performedPeriod"] == administration["effectivePeriod"]
    dosing_encounters = {
        f"Encounter/{r['id']}"
        for r in resources
        if r["resourceType"] == "Encounter" and "0820T" in json.dumps(r)
    }
    session_procedures = [
        r
        for r in resources
        if r["resourceType"] == "Procedure"
        and r["encounter"]["reference"] in dosing_encounters
        and r not in infusions
    ]
    assert session_procedures
    assert all([c["code"] for c in r["code"]["coding"]] == ["0820T"] for r in session_procedures)

    problems: list[str] = []
    requests = []
    for resource in resources:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        problems += [
            f"{resource['resourceType']}/{resource['id']}: schema: {e}" for e in json_schema_errors(resource)
        ]
        declared = resource.get("meta", {}).get("profile", [])
        profiles = [BASE_EQUIVALENT.get(p, p) for p in declared]
        requests.append((resource, [p for p in profiles if p in profile_validator.profiles]))
    for (resource, profiles), issues in zip(requests, profile_validator.validate(requests), strict=True):
        problems += [
            f"{resource['resourceType']}/{resource['id']} {profiles}: {i}" for i in errors_only(issues)
        ]
    checked_profiles = Counter(p for _, profiles in requests for p in profiles)
    assert checked_profiles[f"{US_CORE}us-core-patient"] == DEMO_PATIENTS
    assert checked_profiles[f"{US_CORE}us-core-blood-pressure"] > 100
    assert checked_profiles[f"{BASE}heartrate"] > 100
    assert problems == [], "\n".join(problems[:50])
