"""The one Settings class: environment variables with the ``KAPGW_`` prefix (pydantic-settings)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_TOKEN_SIGNING_SECRET = "change-me-dev-only-token-secret"
#: hosts a production base URL may name over plain http (the gateway behind a local TLS proxy)
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KAPGW_", env_file=".env", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    #: SQLAlchemy URL; the embedded default is a SQLite file under ./data/
    database_url: str = "sqlite:///./data/kap-gateway.db"
    #: public base URL of this gateway (FHIR base is BASE_URL + /fhir)
    base_url: str = "http://127.0.0.1:8000"
    #: base of the identifier systems the gateway mints: <IDENTIFIER_BASE>/<clinic>/<kind>
    identifier_base: str = "https://kap-gateway.example.org/id"
    access_token_lifetime_seconds: int = Field(default=3600, ge=60, le=86400)
    refresh_token_lifetime_seconds: int = Field(default=86400 * 30, ge=300)
    #: SMART Backend Services access tokens (client_credentials of ehr clients): SHOULD be at most 300 s
    backend_token_lifetime_seconds: int = Field(default=300, ge=60, le=3600)
    #: SMART App Launch: authorization codes are single use and live this long (SMART: about 60 s)
    authorization_code_lifetime_seconds: int = Field(default=60, ge=5, le=600)
    #: SMART EHR launch: a minted ``launch`` value (``kap-gateway launch create``) is single use and lives this long
    ehr_launch_lifetime_seconds: int = Field(default=300, ge=30, le=3600)
    #: CORS: browser origins allowed at /auth/token, /auth/revoke and /fhir besides those of registered apps
    #: (the origins of their redirect and launch URLs); JSON list, e.g. ["https://viewer.example.org"]
    cors_allowed_origins: list[str] = Field(default_factory=list)
    #: AuditEvents older than this many days are deleted by the background worker (0: keep them all);
    #: the default, 6 years, is HIPAA's retention period for required documentation (45 CFR 164.316(b)(2))
    audit_retention_days: int = Field(default=6 * 365, ge=0, le=100 * 365)
    #: test mode: /auth/authorize approves at once, as ``launch_auto_approve_user``, without login or consent
    #: page, so headless SMART clients can run; refused in production
    launch_auto_approve: bool = False
    launch_auto_approve_user: str | None = None
    #: the patient (FHIR id) an auto-approved patient launch picks; default: the first patient of the clinic
    launch_auto_approve_patient: str | None = None
    #: failed /auth/token client authentications allowed per client id, and per client address, in a window;
    #: the next attempt gets 429 with Retry-After until the window (started by the first failure) ends
    token_throttle_client_failures: int = Field(default=5, ge=1)
    token_throttle_address_failures: int = Field(default=20, ge=1)
    token_throttle_window_seconds: int = Field(default=300, ge=1, le=86400)
    #: requests with a larger body are refused with 413
    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    #: doses above this are refused (a typo guard, not a clinical rule)
    max_dose_mg: float = Field(default=800.0, gt=0)
    #: records in one POST /api/v1/batch
    max_batch_records: int = Field(default=5000, ge=1)
    #: pepper mixed into hashes of client secrets and tokens
    token_signing_secret: SecretStr = SecretStr(DEFAULT_TOKEN_SIGNING_SECRET)
    #: PostgreSQL: memory for the FHIR read cache (read and search answers, dropped when the store changes
    #: them; see gateway/fhir_api/read_cache.py); 0 = off. SQLite never caches (no change channel)
    fhir_cache_mb: int = Field(default=64, ge=0, le=65536)
    #: longest a cached answer is served, whatever the change channel says
    fhir_cache_ttl_seconds: float = Field(default=60.0, gt=0, le=86400)
    #: threads that run blocking work (sync routes, database calls, hashing): anyio's thread limiter
    worker_threads: int = Field(default=40, ge=1, le=1000)
    #: `serve` runs one background worker loop in-process (sync outbox, export jobs); `worker` runs it alone
    in_process_worker: bool = True
    #: how long an idle worker loop sleeps before it looks for work again
    worker_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    #: Bulk Data export: where job files are written (one directory per job)
    export_dir: Path = Path("./data/exports")
    #: how long a finished export's files stay downloadable before the worker deletes them
    export_retention_seconds: int = Field(default=86400, ge=60)
    #: resources per ndjson file at most (a type with more is split over several files)
    export_file_max_resources: int = Field(default=100_000, ge=1)
    #: rows fetched per keyset batch while a job writes its files
    export_batch_size: int = Field(default=1000, ge=1, le=10_000)
    #: a worker renews its lease on a running job; a lapsed lease lets another worker resume the job
    export_lease_seconds: int = Field(default=60, ge=5)
    #: seconds one worker-loop turn works on a job before it lets the other tasks run
    export_slice_seconds: float = Field(default=5.0, gt=0)
    #: queued or running exports per client; one more gets 429 with Retry-After
    export_max_active_jobs: int = Field(default=3, ge=1)
    #: EHR sync (gateway/sync): seconds for each outbound HTTP request (connect, read, write, pool)
    sync_http_timeout_seconds: float = Field(default=15.0, gt=0, le=300)
    #: how long a worker's claim on a patient's deliveries lasts (renewed while it works)
    sync_lease_seconds: float = Field(default=60.0, ge=1)
    #: retries back off exponentially with full jitter: random(0, min(cap, base * 2**attempts))
    sync_backoff_base_seconds: float = Field(default=2.0, gt=0)
    sync_backoff_cap_seconds: float = Field(default=600.0, gt=0)
    #: a delivery still failing this long after it was written goes to the dead letters
    sync_max_age_seconds: float = Field(default=3 * 86400.0, gt=0)
    #: consecutive failed attempts after which a connection is paused (circuit breaker) ...
    sync_breaker_failures: int = Field(default=5, ge=1)
    #: ... for this long (doubling while it keeps failing, up to the backoff cap)
    sync_breaker_pause_seconds: float = Field(default=30.0, gt=0)
    #: entries per transaction Bundle (some EHRs refuse large ones)
    sync_transaction_size: int = Field(default=8, ge=1, le=500)
    #: resources per claim of one patient's deliveries
    sync_claim_size: int = Field(default=1000, ge=1)
    #: how often capabilities (/metadata, smart-configuration) are probed again
    sync_probe_interval_seconds: float = Field(default=3600.0, gt=0)
    #: connections the pool keeps per process; default (0) = worker_threads, so no thread waits for one
    db_pool_size: int = Field(default=0, ge=0)
    #: extra connections beyond the pool size under bursts (closed again when idle)
    db_max_overflow: int = Field(default=10, ge=0)
    #: seconds a request waits for a free connection before it gets 503 with Retry-After
    db_pool_timeout_seconds: float = Field(default=10.0, gt=0)
    #: PostgreSQL: a pooled connection idle this long is pinged (``SELECT 1``) before use; busier ones are not
    db_ping_after_idle_seconds: float = Field(default=10.0, ge=0)
    #: seconds a statement waits for a lock (SQLite busy timeout, PostgreSQL lock_timeout) before 503
    db_lock_timeout_seconds: float = Field(default=10.0, gt=0)
    #: PostgreSQL statement_timeout in seconds (0 = none); a cancelled statement gets 503
    db_statement_timeout_seconds: float = Field(default=30.0, ge=0)
    #: FastAPI's native OpenTelemetry (traces, metrics, logs to the globally configured providers)
    opentelemetry: bool = False
    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, url: str) -> str:
        if not url.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:", "postgres:")):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return url

    @field_validator("cors_allowed_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            parts = urlsplit(origin)
            if parts.scheme not in ("https", "http") or not parts.hostname or origin != origin_of(origin):
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port], no path or slash)")
        return origins

    @model_validator(mode="after")
    def _no_default_secrets_in_production(self) -> Settings:
        if self.launch_auto_approve and not self.launch_auto_approve_user:
            raise ValueError("KAPGW_LAUNCH_AUTO_APPROVE needs KAPGW_LAUNCH_AUTO_APPROVE_USER (a username)")
        if self.env == "production":
            if self.launch_auto_approve:
                raise ValueError("KAPGW_LAUNCH_AUTO_APPROVE is a test mode and is refused in production")
            if self.token_signing_secret.get_secret_value() == DEFAULT_TOKEN_SIGNING_SECRET:
                raise ValueError("KAPGW_TOKEN_SIGNING_SECRET must be set in production")
            url = urlsplit(self.base_url)
            if url.scheme != "https" and not (url.scheme == "http" and url.hostname in LOOPBACK_HOSTS):
                raise ValueError("KAPGW_BASE_URL must be https in production (http only for localhost)")
        return self

    @property
    def fhir_base_url(self) -> str:
        return self.base_url.rstrip("/") + "/fhir"

    @property
    def pool_size(self) -> int:
        """Connections per process: ``db_pool_size``, or one per worker thread."""
        return self.db_pool_size or self.worker_threads

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def sqlite_path(self) -> Path | None:
        """The database file of a file-backed SQLite URL, else None."""
        prefix = "sqlite:///"
        if not self.database_url.startswith(prefix) or ":memory:" in self.database_url:
            return None
        return Path(self.database_url[len(prefix) :].split("?", 1)[0])


def origin_of(url: str) -> str:
    """The web origin of a URL (RFC 6454): ``scheme://host[:port]``, lowercase, the default port dropped."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    default = {"https": 443, "http": 80}.get(scheme)
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


@lru_cache
def get_settings() -> Settings:
    return Settings()
