"""The FastAPI application: ``create_app(settings)`` wires routers, errors, middleware and the database."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI

from gateway.audit.middleware import FhirAuditMiddleware
from gateway.audit.recorder import AuditRecorder
from gateway.audit.routes import router as audit_router
from gateway.auth.cors import CorsMiddleware, RegisteredOrigins
from gateway.auth.ehr_launch_routes import router as ehr_launch_router
from gateway.auth.launch_routes import router as launch_router
from gateway.auth.routes import router as auth_router
from gateway.auth.routes import well_known_router
from gateway.background import WorkerLoop, start_in_thread
from gateway.clinic_api.routes import router as clinic_router
from gateway.core.config import Settings, get_settings
from gateway.core.errors import install_error_handlers
from gateway.db.engine import DATABASE_ERRORS, Engine, busy_error, make_engine, ping
from gateway.db.migrate import upgrade
from gateway.fhir_api.bulk_routes import router as bulk_router
from gateway.fhir_api.cached_answers import CachedAnswersMiddleware
from gateway.fhir_api.read_cache import ReadCache
from gateway.fhir_api.routes import router as fhir_router
from gateway.middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from gateway.openapi import install_openapi
from gateway.store import changes
from gateway.store.changes import ChangeListener
from gateway.sync.routes import admin_router as sync_admin_router
from gateway.sync.routes import router as sync_router

DESCRIPTION = """
FHIR R4 gateway for ketamine-assisted psychotherapy (KAP) clinics.

* **Clinic records API** (`/api/v1`): clinics push patients, sessions, doses, vitals, assessments and
  adverse events as JSON, addressed by their own ids. `PUT` is an idempotent upsert.
* **Authorization** (`/auth/token`): OAuth 2.0 client credentials; every token is bound to one clinic.
"""


def create_app(settings: Settings | None = None, *, migrate_sqlite: bool = True) -> FastAPI:
    settings = settings or get_settings()
    engine = make_engine(settings)
    audit = AuditRecorder(engine)
    read_cache, change_listener = fhir_read_cache(settings, engine)
    if migrate_sqlite and settings.is_sqlite:
        upgrade(engine)  # the embedded default upgrades itself; PostgreSQL is upgraded by `db upgrade`

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # sync routes, dependencies and database calls run in anyio's worker threads; the pool holds a
        # connection for each (Settings.pool_size), so a thread never queues for a connection
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.worker_threads
        worker = WorkerLoop(engine, settings) if settings.in_process_worker else None
        thread = start_in_thread(worker) if worker is not None else None
        if change_listener is not None:
            change_listener.start()
        try:
            yield
        finally:
            if change_listener is not None:
                change_listener.stop()
            if worker is not None and thread is not None:
                worker.stop()
                thread.join(timeout=10)
            audit.close()  # writes the audit events still queued
            engine.dispose()

    app = FastAPI(
        title="KAP FHIR Gateway",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # FastAPI's native OpenTelemetry looks up the global providers on every request; off unless asked for
        telemetry=None if settings.opentelemetry else {"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.audit = audit
    app.state.fhir_read_cache = read_cache
    app.state.change_listener = change_listener
    install_error_handlers(app, translated=DATABASE_ERRORS, translate=busy_error)
    install_openapi(app, settings)
    # Routes are matched one after the other, so the FHIR read path (the busiest) comes first; the other
    # routers' prefixes (/auth, /admin, /api/v1) never overlap /fhir, so the order changes no match.
    app.include_router(well_known_router)  # before the FHIR router: /fhir/.well-known/... is not a type
    app.include_router(bulk_router)  # before the FHIR router: $export is not a {type}/{id}
    app.include_router(fhir_router)  # after the bulk-export router, so {type}/{id} never takes $export
    app.include_router(auth_router)
    app.include_router(launch_router)
    app.include_router(ehr_launch_router)
    app.include_router(audit_router)
    app.include_router(clinic_router)
    app.include_router(sync_router)
    app.include_router(sync_admin_router)
    app.add_middleware(CachedAnswersMiddleware)  # read cache hits, before routing (inside the audit)
    app.add_middleware(FhirAuditMiddleware)  # one AuditEvent per /fhir request
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.state.cors_origins = RegisteredOrigins(engine, settings)
    app.add_middleware(CorsMiddleware, origins=app.state.cors_origins)  # browser SMART apps
    app.add_middleware(RequestContextMiddleware)

    @app.get("/healthz", tags=["operations"], summary="Liveness and database check")
    def healthz() -> dict[str, str]:
        ping(engine)
        return {"status": "ok"}

    return app


def create_served_app() -> FastAPI:
    """The app as ``kap-gateway serve`` runs it: :func:`create_app`, then everything made so far (modules,
    routes, models, the app) moved out of the garbage collector's sight (``gc.freeze``), so the full
    collections that the read path's allocations trigger walk the objects made since, not the whole
    process (https://docs.python.org/3/library/gc.html#gc.freeze)."""
    app = create_app()
    gc.collect()
    gc.freeze()
    return app


def fhir_read_cache(settings: Settings, engine: Engine) -> tuple[ReadCache | None, ChangeListener | None]:
    """The FHIR read cache and the listener that keeps it true (PostgreSQL with ``fhir_cache_mb`` > 0;
    SQLite has no channel for other processes' writes, so it never caches)."""
    if settings.is_sqlite or settings.fhir_cache_mb == 0:
        return None, None
    cache = ReadCache(settings.fhir_cache_mb * 1024 * 1024, ttl=settings.fhir_cache_ttl_seconds)
    changes.subscribe(cache)
    conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    return cache, ChangeListener(conninfo, cache)
