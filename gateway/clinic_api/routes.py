"""/api/v1: the clinic records API (DESIGN §4). Routes parse, call one service, return."""

from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from gateway.clinic_api import services
from gateway.clinic_api.examples import RECORD_EXAMPLES, VALIDATION_ERROR_EXAMPLE
from gateway.core.errors import FHIR_JSON, RecordValidationError, field_error, pydantic_errors
from gateway.core.json_body import (
    JSON_MEDIA_TYPE,
    NDJSON_MEDIA_TYPES,
    JsonBodyRoute,
    media_type,
    parse_json,
    parse_ndjson,
)
from gateway.db.tables import RecordRow
from gateway.deps import ClinicDep, ReadSessionDep, SessionDep, SettingsDep
from gateway.store.versions import CurrentRow
from mappings.records import ALL_KINDS, EXTERNAL_ID_MAX_LENGTH, EXTERNAL_ID_PATTERN, RecordKind, RecordModel

# request bodies are read strictly (415 for other media types, 422 for invalid UTF-8 / JSON, duplicate keys)
router = APIRouter(prefix="/api/v1", tags=["clinic records"], route_class=JsonBodyRoute)

ExternalIdPath = Annotated[
    str,
    Path(
        pattern=EXTERNAL_ID_PATTERN,
        max_length=EXTERNAL_ID_MAX_LENGTH,
        description="the clinic's own id of the record: 1-64 of A-Z a-z 0-9 . _ - and not only dots",
    ),
]
ExternalIdQuery = Annotated[str | None, Query(pattern=EXTERNAL_ID_PATTERN, max_length=EXTERNAL_ID_MAX_LENGTH)]


class ErrorDetail(BaseModel):
    detail: Any = Field(
        description="a message, or for 422 a list of {loc, msg, type} naming each failing field"
    )


class RecordEnvelope(BaseModel):
    kind: str
    id: str
    record: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    outcome: services.Outcome | None = Field(
        default=None, description="what a PUT did: created, updated, unchanged"
    )


class RecordPage(BaseModel):
    items: list[RecordEnvelope]
    next_after: str | None = Field(description="pass as ?after= for the next page; null on the last page")


class BatchEntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: RecordKind
    id: Annotated[str, Field(pattern=EXTERNAL_ID_PATTERN, max_length=EXTERNAL_ID_MAX_LENGTH)]
    record: dict[str, Any]


class BatchResult(BaseModel):
    created: int
    updated: int
    unchanged: int
    results: list[dict[str, str]]


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorDetail, "description": "missing, invalid or expired bearer token"},
    403: {"model": ErrorDetail, "description": "the token is not a clinic records token"},
    413: {"model": ErrorDetail, "description": "request body larger than KAPGW_MAX_BODY_BYTES"},
    415: {
        "model": ErrorDetail,
        "description": "the request body is not of the media type the operation reads",
    },
    422: {
        "model": ErrorDetail,
        "description": "invalid record; each failing field is named by its loc path",
        "content": {"application/json": {"example": VALIDATION_ERROR_EXAMPLE}},
    },
    503: {
        "model": ErrorDetail,
        "description": "waited too long for a database connection or lock; nothing was written, retry "
        "after the `Retry-After` seconds",
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"}},
    },
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorDetail, "description": "no such record in this clinic"}
}


SINGULAR = {
    "patients": "patient",
    "practitioners": "practitioner",
    "sessions": "session",
    "doses": "dose",
    "vitals": "vital-signs",
    "assessments": "assessment",
    "adverse-events": "adverse-event",
    "conditions": "condition",
    "medications": "medication",
    "allergies": "allergy",
}


def envelope(row: RecordRow, outcome: services.Outcome | None = None) -> RecordEnvelope:
    return RecordEnvelope(
        kind=row.kind,
        id=row.external_id,
        record=row.data,
        created_at=row.created_at,
        updated_at=row.updated_at,
        outcome=outcome,
    )


def collection_bundle(fhir_base: str, rows: list[CurrentRow]) -> bytes:
    """A collection Bundle around stored resource bytes (no parse, no re-serialization)."""
    entries = b",".join(
        b'{"fullUrl":'
        + orjson.dumps(f"{fhir_base}/{r.resource_type}/{r.resource_id}")
        + b',"resource":'
        + r.content
        + b"}"
        for r in rows
    )
    return b'{"resourceType":"Bundle","type":"collection","total":%d,"entry":[%s]}' % (len(rows), entries)


def _add_kind_routes(kind: str, model: type[RecordModel]) -> None:
    if model.writable:
        _add_write_routes(kind, model)
    _add_read_routes(kind)


def _add_write_routes(kind: str, model: type[RecordModel]) -> None:
    _, example = RECORD_EXAMPLES[kind]
    name = kind.replace("-", "_")

    @router.put(
        f"/{kind}/{{external_id}}",
        response_model=RecordEnvelope,
        operation_id=f"put_{name}",
        summary=f"Create or update a {SINGULAR[kind]} record (idempotent)",
        responses={201: {"model": RecordEnvelope, "description": "created"}, **ERRORS},
        description="Upsert by the clinic's id. The same body twice changes nothing (200, outcome "
        "`unchanged`). References name other records by their ids and must exist.",
    )
    def put(
        external_id: ExternalIdPath,
        clinic: ClinicDep,
        session: SessionDep,
        settings: SettingsDep,
        response: Response,
        record: Annotated[model, Body(openapi_examples={"example": {"value": example}})],  # type: ignore[valid-type]
    ) -> RecordEnvelope:
        result = services.put_record(
            session, settings, clinic=clinic, kind=kind, external_id=external_id, model=record
        )
        if result.outcome is services.Outcome.created:
            response.status_code = status.HTTP_201_CREATED
        return envelope(result.row, result.outcome)

    @router.delete(
        f"/{kind}/{{external_id}}",
        status_code=204,
        operation_id=f"delete_{name}",
        summary=f"Delete a {SINGULAR[kind]} record",
        description="Marks the record's FHIR resources entered-in-error. 409 while other records "
        "still reference it.",
        responses={**ERRORS, **NOT_FOUND, 409: {"model": ErrorDetail, "description": "still referenced"}},
    )
    def delete(
        external_id: ExternalIdPath, clinic: ClinicDep, session: SessionDep, settings: SettingsDep
    ) -> Response:
        services.delete_record(session, settings, clinic=clinic, kind=kind, external_id=external_id)
        return Response(status_code=204)


def _add_read_routes(kind: str) -> None:
    name = kind.replace("-", "_")
    readonly = "" if ALL_KINDS[kind].writable else " Imported from hospital EHRs; read-only here."

    @router.get(
        f"/{kind}/{{external_id}}",
        response_model=RecordEnvelope,
        operation_id=f"get_{name}",
        summary=f"Read a {SINGULAR[kind]} record",
        description=readonly or None,
        responses={**ERRORS, **NOT_FOUND},
    )
    def get(external_id: ExternalIdPath, clinic: ClinicDep, session: ReadSessionDep) -> RecordEnvelope:
        return envelope(services.get_record(session, clinic=clinic, kind=kind, external_id=external_id))

    @router.get(
        f"/{kind}/{{external_id}}/fhir",
        operation_id=f"get_{name}_fhir",
        summary=f"The FHIR resources a {SINGULAR[kind]} record maps to",
        description="A FHIR `Bundle` of type `collection` with the current version of each resource, as stored.",
        response_class=Response,
        responses={200: {"content": {FHIR_JSON: {"schema": {"type": "object"}}}}, **ERRORS, **NOT_FOUND},
    )
    def get_fhir(
        external_id: ExternalIdPath, clinic: ClinicDep, session: ReadSessionDep, settings: SettingsDep
    ) -> Response:
        rows = services.record_resources(session, clinic=clinic, kind=kind, external_id=external_id)
        return Response(collection_bundle(settings.fhir_base_url, rows), media_type=FHIR_JSON)

    @router.get(
        f"/{kind}",
        response_model=RecordPage,
        operation_id=f"list_{name}",
        summary=f"List {kind} records in id order (keyset paging)",
        responses=ERRORS,
    )
    def list_kind(
        clinic: ClinicDep,
        session: ReadSessionDep,
        after: ExternalIdQuery = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        patient_id: ExternalIdQuery = None,
    ) -> RecordPage:
        rows = services.list_records(
            session, clinic=clinic, kind=kind, after=after, limit=limit, patient_id=patient_id
        )
        return RecordPage(
            items=[envelope(r) for r in rows], next_after=rows[-1].external_id if len(rows) == limit else None
        )


for _kind, _model in ALL_KINDS.items():
    _add_kind_routes(_kind, _model)


BATCH_EXAMPLE = [
    {"kind": k, "id": RECORD_EXAMPLES[k][0], "record": RECORD_EXAMPLES[k][1]}
    for k in ("patients", "practitioners", "sessions", "doses")
]
_BATCH_SCHEMA = {
    "type": "array",
    "items": BatchEntryIn.model_json_schema(ref_template="#/components/schemas/{model}"),
}


@router.post(
    "/batch",
    response_model=BatchResult,
    operation_id="post_batch",
    summary="Write many records at once, all or nothing",
    description="A JSON array (`application/json`) or NDJSON (`application/x-ndjson`, one entry per "
    "line) of `{kind, id, record}` in dependency order (patients before sessions before "
    "doses). Every entry is checked; if any fails, nothing is written and the 422 names "
    "each failing entry as `body.<index>...`.",
    responses=ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                JSON_MEDIA_TYPE: {"schema": _BATCH_SCHEMA, "example": BATCH_EXAMPLE},
                **{ndjson: {"schema": {"type": "string"}} for ndjson in NDJSON_MEDIA_TYPES},
            },
        }
    },
)
async def post_batch(
    request: Request, clinic: ClinicDep, session: SessionDep, settings: SettingsDep
) -> BatchResult:
    # the body streams in on the event loop; parsing and the use case run in worker threads, and the
    # session's transaction begins only in run_batch, after the whole body has arrived
    body = await request.body()
    entries = await run_in_threadpool(
        parse_batch_body,
        body,
        request.headers.get("content-type", ""),
        max_records=settings.max_batch_records,
    )
    results = await run_in_threadpool(services.run_batch, session, settings, clinic=clinic, entries=entries)
    counts = {o: sum(1 for r in results if r.outcome is o) for o in services.Outcome}
    return BatchResult(
        created=counts[services.Outcome.created],
        updated=counts[services.Outcome.updated],
        unchanged=counts[services.Outcome.unchanged],
        results=[{"kind": r.row.kind, "id": r.row.external_id, "outcome": r.outcome} for r in results],
    )


def parse_batch_body(body: bytes, content_type: str, *, max_records: int) -> list[services.BatchEntry]:
    kind = media_type(content_type, (JSON_MEDIA_TYPE, *NDJSON_MEDIA_TYPES))
    raw = parse_ndjson(body) if kind in NDJSON_MEDIA_TYPES else parse_json(body)
    if not isinstance(raw, list):
        raise RecordValidationError(
            [field_error(["body"], "expected an array of {kind, id, record}", "list_type")]
        )
    if len(raw) > max_records:
        raise RecordValidationError(
            [field_error(["body"], f"at most {max_records} records per batch", "too_long")]
        )
    try:
        entries = _BATCH_ADAPTER.validate_python(raw)
    except ValidationError as error:
        raise RecordValidationError(pydantic_errors(error.errors(), prefix=("body",))) from None
    return [services.BatchEntry(e.kind, e.id, e.record) for e in entries]


_BATCH_ADAPTER = TypeAdapter(list[BatchEntryIn])


# --- referral import (issue 10; gateway/sync/importer.py) ---


class ImportIdentifier(BaseModel):
    model_config = ConfigDict(extra="forbid")
    system: Annotated[str | None, Field(max_length=255, description="the hospital's MRN system")] = None
    value: Annotated[str, Field(min_length=1, max_length=64, description="the hospital's MRN")]


class ImportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    connection: Annotated[str, Field(min_length=1, max_length=64, description="EHR connection name")]
    identifier: ImportIdentifier


class ImportResultOut(BaseModel):
    patient: services.Outcome = Field(
        description="what happened to the clinic patient: created, updated, unchanged"
    )
    ehr_patient: str = Field(description="the EHR's Patient, Type/id")
    imported: dict[str, dict[str, int]] = Field(
        description="per imported record kind, how many were created, updated, unchanged"
    )
    skipped: list[dict[str, Any]] = Field(
        description="EHR resources a mapper refused, with the FHIR path and the reason"
    )


IMPORT_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    404: {
        "model": ErrorDetail,
        "description": "no enabled connection of that name, or no EHR patient with the MRN",
    },
    409: {"model": ErrorDetail, "description": "the EHR has more than one patient with the MRN"},
    502: {
        "model": ErrorDetail,
        "description": "the EHR failed or answered unexpectedly; nothing was written",
    },
}


@router.post(
    "/patients/{external_id}/import",
    summary="Import a referral from a hospital EHR: Patient, Conditions, MedicationRequests, AllergyIntolerances",
    operation_id="import_patient",
    response_model=ImportResultOut,
    responses=IMPORT_ERRORS,
)
def import_patient(
    external_id: ExternalIdPath,
    body: ImportRequest,
    clinic: ClinicDep,
    session: SessionDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    from gateway.sync.importer import import_referral

    return import_referral(
        session,
        settings,
        clinic=clinic,
        patient_id=external_id,
        connection_name=body.connection,
        mrn=body.identifier.value,
        mrn_system=body.identifier.system,
    )
