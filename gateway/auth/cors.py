"""CORS for browser-based SMART apps (https://fetch.spec.whatwg.org/#http-cors-protocol; SMART App Launch 2.x
"CORS" in app-launch.html; checklist DISC-8).

Two policies, decided by path:

- **public** documents (the SMART and OpenID configurations, ``/fhir/metadata``, the JWKS, the styling
  document): readable from any origin, ``Access-Control-Allow-Origin: *``;
- **client** endpoints (``/auth/token``, ``/auth/revoke`` and the FHIR API under ``/fhir``): only the
  origins of registered apps (the scheme, host and port of their redirect and launch URLs) and those of
  ``KAPGW_CORS_ALLOWED_ORIGINS`` get ``Access-Control-Allow-Origin: <that origin>``; every answer carries
  ``Vary: Origin`` since it depends on it.

Credentials mode is never allowed (no ``Access-Control-Allow-Credentials``): apps send their bearer token in
the ``Authorization`` header, which needs no cookies. Preflights (``OPTIONS`` with
``Access-Control-Request-Method``) are answered here, 204 for an allowed origin and 403 otherwise; they never
reach a route. The registered origins are read from the database at most every ``REFRESH_SECONDS`` (a new
app is allowed within that time); requests without an ``Origin`` header never look them up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import anyio.to_thread
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.core.config import Settings, origin_of
from gateway.db.engine import Engine, session_scope
from gateway.db.repositories import clinics as clinic_repo

PUBLIC_PATHS = frozenset(
    {
        "/.well-known/smart-configuration",
        "/fhir/.well-known/smart-configuration",
        "/.well-known/openid-configuration",
        "/fhir/metadata",
        "/auth/jwks",
        "/auth/smart-style.json",
    }
)
CLIENT_PATHS = frozenset({"/auth/token", "/auth/revoke"})
FHIR_PREFIX = "/fhir/"
REFRESH_SECONDS = 30.0
#: request headers a browser app may send (fhirclient.js sends Authorization, Accept, Content-Type)
ALLOW_HEADERS = (
    "Authorization, Accept, Content-Type, Prefer, If-Match, If-None-Match, If-None-Exist, "
    "If-Modified-Since, X-Request-ID"
)
#: response headers a browser app may read
EXPOSE_HEADERS = (
    "Location, Content-Location, ETag, Last-Modified, Expires, Retry-After, X-Progress, X-Request-ID, "
    "WWW-Authenticate"
)
MAX_AGE = "600"


def policy_of(path: str) -> str | None:
    """``public``, ``client`` or None (no CORS: the clinic API, the admin API, the sign-in pages)."""
    if path in PUBLIC_PATHS:
        return "public"
    if path in CLIENT_PATHS or path == "/fhir" or path.startswith(FHIR_PREFIX):
        return "client"
    return None


class RegisteredOrigins:
    """The origins allowed at client endpoints: the configured ones and those of enabled app clients."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        refresh_seconds: float = REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.configured = frozenset(settings.cors_allowed_origins)
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        self._origins: frozenset[str] = frozenset()
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    @property
    def fresh(self) -> bool:
        return self.clock() - self._loaded_at < self.refresh_seconds

    def current(self) -> frozenset[str]:
        """The allowed origins, reloaded when older than ``refresh_seconds`` (blocking: call in a thread)."""
        with self._lock:
            if not self.fresh:
                with session_scope(self.engine, read_only=True) as session:
                    urls = clinic_repo.app_client_urls(session)
                self._origins = self.configured | {origin_of(url) for url in urls}
                self._loaded_at = self.clock()
            return self._origins

    def expire(self) -> None:
        """The next look-up reloads the registered origins."""
        self._loaded_at = float("-inf")

    async def allows(self, origin: str) -> bool:
        if origin in self.configured:
            return True
        origins = self._origins if self.fresh else await anyio.to_thread.run_sync(self.current)
        return origin in origins


class CorsMiddleware:
    def __init__(self, app: ASGIApp, *, origins: RegisteredOrigins) -> None:
        self.app = app
        self.origins = origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        policy = policy_of(scope["path"]) if scope["type"] == "http" else None
        if policy is None:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if policy == "public":
            allowed_origin: str | None = "*"
        elif origin is not None and await self.origins.allows(origin):
            allowed_origin = origin
        else:
            allowed_origin = None
        if scope["method"] == "OPTIONS" and origin is not None and "access-control-request-method" in headers:
            await self._preflight(send, policy, allowed_origin)
            return
        added = _cors_headers(policy, allowed_origin)

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).extend(added)
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, send: Send, policy: str, allowed_origin: str | None) -> None:
        headers = _cors_headers(policy, allowed_origin)
        if allowed_origin is not None:
            methods = "GET, OPTIONS" if policy == "public" else "GET, POST, PUT, PATCH, DELETE, OPTIONS"
            headers += [
                (b"access-control-allow-methods", methods.encode()),
                (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
                (b"access-control-max-age", MAX_AGE.encode()),
            ]
        status = 204 if allowed_origin is not None else 403
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def _cors_headers(policy: str, allowed_origin: str | None) -> list[tuple[bytes, bytes]]:
    headers: list[tuple[bytes, bytes]] = []
    if policy == "client":
        headers.append((b"vary", b"Origin"))
    if allowed_origin is not None:
        headers.append((b"access-control-allow-origin", allowed_origin.encode("latin-1")))
        headers.append((b"access-control-expose-headers", EXPOSE_HEADERS.encode()))
    return headers
