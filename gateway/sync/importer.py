"""Referral import (DESIGN §3): a patient's Patient, Conditions, MedicationRequests and AllergyIntolerances
from a hospital EHR, by the hospital's MRN, into the clinic's records.

The EHR is read through the connection's SMART client (``Patient?identifier=<system>|<mrn>``, then
``Condition|MedicationRequest|AllergyIntolerance?patient=<id>``, following ``next`` links). Resources go
through the inbound mappers (``mappings.inbound``); what a mapper refuses is reported by FHIR path, never by
value, and skipped. Everything is written in one transaction, with a Provenance whose entity names the
source (connection, EHR base and the EHR's resource). The clinic's own patient record is created from the
EHR's Patient when it does not exist yet; an existing one keeps the clinic's data and gains the MRN.
Importing again updates what changed and adds nothing twice (record ids derive from the EHR's ids).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.clinic_api.services import ClinicScope, Outcome, canonical_json
from gateway.core.config import Settings
from gateway.core.errors import ConflictError, NotFoundError
from gateway.core.ids import resource_id
from gateway.db.engine import Session
from gateway.db.repositories import records as record_repo
from gateway.db.repositories import sync as sync_repo
from gateway.db.tables import RecordRow, utcnow
from gateway.store import records as record_store
from gateway.store import versions
from gateway.sync import connections
from gateway.sync.smart_client import SmartClient
from mappings.fhir import Provenance, resource_json, validated
from mappings.inbound import (
    InboundMappingError,
    from_fhir_allergy,
    from_fhir_condition,
    from_fhir_medication_request,
    from_fhir_patient,
)
from mappings.records import PatientRecord, RecordModel

#: pages of one search followed at most (x 200 entries)
MAX_PAGES = 20
KINDS = {"Condition": "conditions", "MedicationRequest": "medications", "AllergyIntolerance": "allergies"}


@dataclass
class ImportResult:
    patient: Outcome
    ehr_patient: str
    imported: dict[str, dict[str, int]] = field(default_factory=dict)
    skipped: list[dict[str, Any]] = field(default_factory=list)


def _external_id(connection: str, ehr_id: str) -> str:
    """A record id from the connection and the EHR's id: stable, within 64 chars of ``[A-Za-z0-9._-]``."""
    raw = re.sub(r"[^A-Za-z0-9._-]", "-", f"{connection}.{ehr_id}")
    if len(raw) <= 64:
        return raw
    return raw[:47] + "." + hashlib.sha256(raw.encode()).hexdigest()[:16]


def _search(client: SmartClient, resource_type: str, params: dict[str, str]) -> list[dict[str, Any]]:
    """All matches of a search (``next`` links followed), plus included resources."""
    out: list[dict[str, Any]] = []
    response = client.request("GET", resource_type, params={**params, "_count": "200"})
    for _ in range(MAX_PAGES):
        body = response.body if isinstance(response.body, dict) else {}
        out += [e["resource"] for e in body.get("entry") or [] if isinstance(e.get("resource"), dict)]
        following = next(
            (link.get("url") for link in body.get("link") or [] if link.get("relation") == "next"), None
        )
        if not following:
            break
        response = client.request("GET", following)
    return out


def import_patient(
    session: Session,
    settings: Settings,
    *,
    clinic: ClinicScope,
    patient_id: str,
    connection_name: str,
    mrn: str,
    mrn_system: str | None,
) -> ImportResult:
    row = sync_repo.get_connection(session, clinic_pk=clinic.pk, name=connection_name)
    if row is None or row.disabled:
        raise NotFoundError(f"no enabled EHR connection {connection_name!r}")
    client = connections.client_for(row, settings)
    source_name, source_base = row.name, row.fhir_base
    identifier = f"{mrn_system}|{mrn}" if mrn_system else mrn
    session.rollback()  # no transaction (nor SQLite write lock) is held while the EHR answers
    found = [
        r
        for r in _search(client, "Patient", {"identifier": identifier})
        if r.get("resourceType") == "Patient"
    ]
    if not found:
        raise NotFoundError("the EHR has no patient with that identifier")
    if len(found) > 1:
        raise ConflictError("the EHR has more than one patient with that identifier")
    ehr_patient = found[0]
    ehr_id = str(ehr_patient["id"])
    fetched = {t: _search(client, t, {"patient": ehr_id}) for t in KINDS}
    now = utcnow()
    result = ImportResult(Outcome.unchanged, f"Patient/{ehr_id}")
    writes: list[record_store.RecordWrite] = []
    cache: dict[tuple[str, str], RecordRow | None] = {}

    def upsert(kind: str, external_id: str, model: RecordModel, patient: str) -> Outcome:
        data, digest = canonical_json(model)
        current = record_repo.get_record(
            session, clinic_pk=clinic.pk, kind=kind, external_id=external_id, for_update=True
        )
        if current is not None and current.deleted_at is None and current.content_hash == digest:
            cache[(kind, external_id)] = current
            return Outcome.unchanged
        if current is None:
            current = record_repo.add_record(
                session,
                row=RecordRow(
                    clinic_pk=clinic.pk,
                    kind=kind,
                    external_id=external_id,
                    patient_external_id=patient,
                    data=data,
                    content_hash=digest,
                    created_at=now,
                    updated_at=now,
                ),
            )
            outcome = Outcome.created
        else:
            current.data, current.content_hash, current.updated_at = data, digest, now
            current.patient_external_id, current.deleted_at = patient, None
            session.add(current)
            outcome = Outcome.updated
        session.flush()
        cache[(kind, external_id)] = current
        writes.append(
            record_store.RecordWrite(current, model, "CREATE" if outcome is Outcome.created else "UPDATE")
        )
        return outcome

    ctx = record_store.ClinicIdentity(clinic.pk, clinic.slug, clinic.name, settings.identifier_base).context(
        now
    )
    mapped_patient = from_fhir_patient(ehr_patient, ctx=ctx)
    existing = record_repo.get_record(session, clinic_pk=clinic.pk, kind="patients", external_id=patient_id)
    if existing is not None and existing.deleted_at is None:
        model = PatientRecord.model_validate(existing.data)
        known = {(i.system, i.value) for i in model.identifiers}
        extra = [i for i in mapped_patient.identifiers if (i.system, i.value) not in known]
        if extra:
            model = model.model_copy(update={"identifiers": [*model.identifiers, *extra][:10]})
    else:
        model = mapped_patient
    result.patient = upsert("patients", patient_id, model, patient_id)
    medications = {
        f"{r.get('resourceType')}/{r.get('id')}": r
        for r in fetched["MedicationRequest"]
        if r.get("resourceType") == "Medication"
    }
    for resource_type, kind in KINDS.items():
        counts = {o.value: 0 for o in Outcome}
        for resource in fetched[resource_type]:
            if resource.get("resourceType") != resource_type:
                continue  # an included Medication
            try:
                if resource_type == "Condition":
                    record: RecordModel = from_fhir_condition(
                        resource, patient_id=patient_id, ehr=connection_name, ehr_patient_id=ehr_id
                    )
                elif resource_type == "MedicationRequest":
                    record = from_fhir_medication_request(
                        resource,
                        patient_id=patient_id,
                        contained_or_referenced_medications=medications,
                        ehr=connection_name,
                        ehr_patient_id=ehr_id,
                    )
                else:
                    record = from_fhir_allergy(
                        resource, patient_id=patient_id, ehr=connection_name, ehr_patient_id=ehr_id
                    )
            except InboundMappingError as error:
                result.skipped.append(
                    {"resource": f"{resource_type}/{resource.get('id')}", "reasons": error.reasons}
                )
                continue
            outcome = upsert(kind, _external_id(connection_name, str(resource.get("id"))), record, patient_id)
            counts[outcome.value] += 1
        result.imported[kind] = counts
    identity = record_store.ClinicIdentity(clinic.pk, clinic.slug, clinic.name, settings.identifier_base)
    written = record_store.write_records_resources(
        session, clinic=identity, records=writes, now=now, lookup=lambda k, i: cache.get((k, i))
    )
    targets = [
        f"{w.resource_type}/{w.resource_id}" for w in written if w.changed and w.resource_type != "Provenance"
    ]
    if targets:
        versions.put_resource(
            session,
            clinic_pk=clinic.pk,
            resource=_import_provenance(clinic, source_name, source_base, ehr_id, targets, now),
            now=now,
        )
    session.commit()
    return result


def _import_provenance(
    clinic: ClinicScope,
    connection: str,
    fhir_base: str,
    ehr_patient_id: str,
    targets: list[str],
    now: datetime,
) -> dict[str, Any]:
    """Provenance of an import: the hospital EHR is the source entity and the author; the gateway transmitted."""
    source = f"{fhir_base.rstrip('/')}/Patient/{ehr_patient_id}"
    resource = {
        "resourceType": "Provenance",
        "id": resource_id(clinic.slug, "imports", f"{connection}/{ehr_patient_id}", "provenance"),
        "target": [{"reference": t} for t in sorted(targets)],
        "recorded": now.isoformat(),
        "activity": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation", "code": "CREATE"}]
        },
        "agent": [
            {
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                            "code": "author",
                        }
                    ]
                },
                "who": {"display": f"hospital EHR {connection} ({fhir_base})"},
            }
        ],
        "entity": [
            {
                "role": "source",
                "what": {
                    "display": source,
                    "identifier": {"system": fhir_base, "value": f"Patient/{ehr_patient_id}"},
                },
            }
        ],
    }
    return resource_json(validated(Provenance, resource))


def import_referral(session: Session, settings: Settings, **kwargs: Any) -> dict[str, Any]:
    """:func:`import_patient` for the API: an EHR that fails answers 502 (nothing was written)."""
    from gateway.core.errors import GatewayError
    from gateway.sync.errors import EhrError

    try:
        result = import_patient(session, settings, **kwargs)
    except EhrError as error:
        session.rollback()
        raise GatewayError(f"the EHR did not answer as expected: {error}", status_code=502) from None
    return {
        "patient": result.patient.value,
        "ehr_patient": result.ehr_patient,
        "imported": result.imported,
        "skipped": result.skipped,
    }
