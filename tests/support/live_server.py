"""A real uvicorn server for tests that need real HTTP and a real event loop (concurrency, stalls).

The server runs ``create_app(settings)`` in a background thread with its own event loop, on a socket bound
to a free port of 127.0.0.1; the test talks to it over TCP with httpx. A route that blocks the event loop
stalls every other request here exactly as it would in production.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import uvicorn
from fastapi import FastAPI

from gateway.app import create_app
from gateway.auth.clients import create_clinic, create_clinic_client
from gateway.core.config import Settings
from gateway.db.engine import Session


@dataclass
class LiveServer:
    app: FastAPI
    base_url: str


@contextmanager
def live_server(settings: Settings) -> Iterator[LiveServer]:
    app = create_app(settings, migrate_sqlite=False)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=5)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(app, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
        if thread.is_alive():
            raise RuntimeError("the test server did not stop within 30 s")


def clinic_token(server: LiveServer, slug: str) -> str:
    """A clinic, its client and a bearer token obtained over HTTP."""
    with Session(server.app.state.engine, expire_on_commit=False) as session:
        create_clinic(session, slug=slug, name=f"Clinic {slug}")
        created = create_clinic_client(session, clinic_slug=slug, name="test")
    response = httpx.post(
        f"{server.base_url}/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(created.client_id, created.client_secret),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]
