"""SMART Backend Services helpers for tests and benches: synthetic keys, client assertions, EHR clients,
token requests, and a real JWKS server on 127.0.0.1 (for JWKS-URL clients and key rotation).

Keys are the synthetic ones in ``fixtures/keys/`` (see its README). Assertions are signed with joserfc,
the way an EHR would sign them (a fresh ``jti`` and ``exp`` = now + 300 s each time, RS384 or ES384).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from joserfc import jwk, jws, jwt
from sqlalchemy.engine import Engine
from sqlmodel import Session

from gateway.auth.clients import create_clinic, create_ehr_client
from gateway.db.repositories import clinics as clinic_repo

KEYS = Path(__file__).resolve().parents[2] / "fixtures" / "keys"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
RS384 = "backend-rs384"
ES384 = "backend-es384"
ROTATED = "backend-rs384-rotated"
IMPOSTOR = "other-rs384"


@cache
def private_jwk(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((KEYS / f"{name}.private.jwk.json").read_text())
    return data


def private_key(name: str) -> jwk.Key:
    return jwk.import_key(private_jwk(name))


def public_jwk(name: str) -> dict[str, Any]:
    return {k: v for k, v in private_jwk(name).items() if k not in {"d", "p", "q", "dp", "dq", "qi"}}


def public_jwks(*names: str) -> dict[str, Any]:
    """The public JWK Set of the named keys (default: the RS384 and the ES384 key, as in backend.jwks.json)."""
    return {"keys": [public_jwk(name) for name in names or (RS384, ES384)]}


def sign_assertion(
    client_id: str,
    audience: str,
    *,
    key: str = RS384,
    alg: str | None = None,
    header: Mapping[str, Any] | None = None,
    claims: Mapping[str, Any] | None = None,
    lifetime: int = 300,
    drop: tuple[str, ...] = (),
) -> str:
    """A client assertion: header {alg, kid, typ: JWT}, claims {iss, sub, aud, exp, iat, jti}; ``header``
    and ``claims`` override members, ``drop`` removes claims."""
    secret = private_jwk(key)
    algorithm = alg or secret["alg"]
    now = int(time.time())
    body: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + lifetime,
        "jti": secrets.token_urlsafe(24),
    }
    body.update(claims or {})
    for name in drop:
        body.pop(name, None)
    head = {"alg": algorithm, "kid": secret["kid"], "typ": "JWT", **(header or {})}
    head = {k: v for k, v in head.items() if v is not None}
    signing = jwk.import_key(
        {k: v for k, v in secret.items() if k != "alg"}
    )  # a test may sign with another alg
    if "typ" not in head:  # jwt.encode would add typ: JWT
        return jws.serialize_compact(head, json.dumps(body).encode(), signing, algorithms=[algorithm])
    return jwt.encode(head, body, signing, algorithms=[algorithm])


def token_form(assertion: str, scope: str | None = "system/*.rs") -> dict[str, str]:
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    if scope is not None:
        form["scope"] = scope
    return form


def register_ehr_client(
    engine: Engine,
    *,
    clinics: tuple[str, ...] = ("clinic-a",),
    jwks: dict[str, Any] | None = None,
    jwks_uri: str | None = None,
    scope: str = "system/*.rs",
    name: str = "Test EHR",
) -> str:
    """Creates the clinics that do not exist yet and an EHR client granted them; returns its client_id."""
    with Session(engine, expire_on_commit=False) as session:
        for slug in clinics:
            if clinic_repo.get_clinic(session, slug=slug) is None:
                create_clinic(session, slug=slug, name=f"Clinic {slug}")
        created = create_ehr_client(
            session,
            name=name,
            clinic_slugs=list(clinics),
            jwks=public_jwks() if jwks is None and jwks_uri is None else jwks,
            jwks_uri=jwks_uri,
            scopes=scope,
        )
    return created.client_id


def backend_token(http: Any, client_id: str, *, scope: str = "system/*.rs", key: str = RS384) -> str:
    """A real SMART Backend Services token: a signed assertion sent to /auth/token (``http`` is a
    TestClient or an httpx.Client with the gateway's base URL)."""
    token_url = str(http.base_url).rstrip("/") + "/auth/token"
    response = http.post("/auth/token", data=token_form(sign_assertion(client_id, token_url, key=key), scope))
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


@dataclass
class JwksServer:
    """A JWKS endpoint on 127.0.0.1 whose key set and Cache-Control the test changes; counts GETs."""

    url: str
    jwks: dict[str, Any]
    cache_control: str | None = "max-age=300"
    status: int = 200
    hits: list[dict[str, str]] = field(default_factory=list)


@contextmanager
def jwks_server(jwks: dict[str, Any] | None = None) -> Iterator[JwksServer]:
    state = JwksServer(url="", jwks=jwks if jwks is not None else public_jwks())

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits.append(dict(self.headers.items()))
            body = json.dumps(state.jwks).encode()
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if state.cache_control is not None:
                self.send_header("Cache-Control", state.cache_control)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
        if thread.is_alive():
            raise RuntimeError("the JWKS server did not stop within 10 s")


@contextmanager
def gateway_at_its_own_url(settings: Any) -> Iterator[Any]:
    """A real uvicorn gateway on a free port of 127.0.0.1 whose ``base_url`` is that address, so the
    discovery document, the CapabilityStatement and the assertion ``aud`` name the URL clients really use.
    Yields the ``LiveServer`` (app, base_url)."""
    import socket

    import uvicorn
    from support.live_server import LiveServer

    from gateway.app import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = create_app(settings.model_copy(update={"base_url": base}), migrate_sqlite=False)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=5)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test gateway did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(app, base)
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
        if thread.is_alive():
            raise RuntimeError("the test gateway did not stop within 30 s")
