"""The real hospital peers of the integration tests, started and stopped by the tests themselves.

* ``tools/peers/ehr-server.mjs``: Medplum's fhir-router over its in-memory repository (the hospital FHIR
  server), on Node 22 from npm (``tools/peers/node_modules/node``);
* ``tools/peers/auth-server.mjs``: panva's oidc-provider as the hospital's SMART authorization server;
* :class:`FaultProxy`: our small HTTP proxy between gateway and EHR that injects faults on demand
  (429 with Retry-After, 500/503, a connection dropped after the EHR committed, a slow answer).

All listen on 127.0.0.1 on free ports. Recipes: /work/shared/reference/peers.md (Appendix A, B).
"""

from __future__ import annotations

import collections
import http.server
import json
import os
import queue
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from gateway.sync.keys import generate_key

PEERS_DIR = Path(__file__).resolve().parents[2] / "tools" / "peers"
NODE = PEERS_DIR / "node_modules" / "node" / "bin" / "node"


def node_binary() -> Path:
    if not NODE.exists() or not (PEERS_DIR / "node_modules" / "@medplum" / "fhir-router").exists():
        raise RuntimeError("tools/peers is not installed: run `make test` (or `npm ci --prefix tools/peers`)")
    return NODE


def _start(script: str, env: dict[str, str]) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """Starts a peer and waits (at most 120 s) for the JSON line with its address."""
    process = subprocess.Popen(
        [str(node_binary()), script],
        cwd=PEERS_DIR,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    announced: queue.Queue[str | None] = queue.Queue()

    def read_announcement(stream: IO[str]) -> None:
        for line in stream:
            if line.startswith("{"):
                announced.put(line)
                break
        else:
            announced.put(None)  # the peer closed its output without announcing itself
        for _ in stream:  # keep draining so the peer never blocks on a full pipe
            pass
        stream.close()

    threading.Thread(target=read_announcement, args=(process.stdout,), daemon=True).start()
    try:
        line = announced.get(timeout=120)
    except queue.Empty:
        line = None
    if line is None:
        process.kill()
        process.wait(timeout=10)
        raise RuntimeError(f"{script} did not announce its address (exit code {process.returncode})")
    return process, json.loads(line)


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@dataclass
class Hospital:
    fhir_base: str
    control: str
    issuer: str
    key_file: Path
    kid: str
    client_id: str = "kap-gateway"

    def resources(self, resource_type: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.control}/resources/{resource_type}", timeout=30)
        response.raise_for_status()
        return list(response.json())

    def stats(self) -> dict[str, int]:
        return dict(httpx.get(f"{self.control}/stats", timeout=10).json())

    def creates(self) -> dict[str, Any]:
        """Creates received per resource identity: ``{"creates", "identities", "repeated": {key: n}}``."""
        return dict(httpx.get(f"{self.control}/creates", timeout=30).json())

    def reject_tokens(self) -> None:
        httpx.post(f"{self.control}/reject-tokens", timeout=10).raise_for_status()


@contextmanager
def hospital(
    tmp: Path,
    *,
    advertise: str = "transaction,conditional-create",
    token_ttl: int = 300,
    empty_create: bool = False,
) -> Iterator[Hospital]:
    """EHR + authorization server with the gateway registered as a backend-services client (RS384)."""
    generated = generate_key("RS384", "gateway-test-key")
    key_file = tmp / "gateway-key.pem"
    key_file.write_bytes(generated.private_pem)
    clients = tmp / "clients.json"
    clients.write_text(
        json.dumps([{"client_id": "kap-gateway", "jwks": generated.public_jwks, "alg": "RS384"}])
    )
    ehr, ehr_info = _start(
        "ehr-server.mjs",
        {
            "PORT": "0",
            "LOG_FILE": os.environ.get("EHR_LOG_FILE", ""),
            "ADVERTISE": advertise,
            "EMPTY_CREATE": "1" if empty_create else "0",
        },
    )
    try:
        auth, auth_info = _start(
            "auth-server.mjs",
            {
                "PORT": "0",
                "FHIR_BASE": ehr_info["base"],
                "CLIENTS_FILE": str(clients),
                "TOKEN_TTL": str(token_ttl),
            },
        )
        try:
            control = f"http://127.0.0.1:{ehr_info['port']}/__control"
            httpx.post(
                f"{control}/issuer", params={"url": auth_info["issuer"]}, timeout=10
            ).raise_for_status()
            yield Hospital(ehr_info["base"], control, auth_info["issuer"], key_file, generated.kid)
        finally:
            _stop(auth)
    finally:
        _stop(ehr)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class FaultProxy:
    """HTTP proxy to the EHR; ``faults`` is a queue of actions applied to the next matching requests.

    Actions: ``"429"`` (answer 429 with ``Retry-After: 1`` without forwarding), ``"500"``/``"503"`` (the same,
    with that status), ``"drop-after"`` (forward, let the EHR commit, then close the connection without an
    answer), ``"drop-before"`` (close without forwarding), ``"slow"`` (forward after ``slow_seconds``, longer
    than the gateway's timeout: the EHR commits what the gateway gave up on).
    Only requests whose method is in ``methods`` draw from the queue (discovery reads pass untouched)."""

    upstream: str
    faults: collections.deque[str] = field(default_factory=collections.deque)
    methods: frozenset[str] = frozenset({"POST", "PUT", "DELETE"})
    slow_seconds: float = 3.0
    #: keep every forwarded write's body in ``bodies`` (to count what was sent)
    record_bodies: bool = False
    bodies: list[bytes] = field(default_factory=list)
    #: resource type whose writes are refused with 422 and an OperationOutcome (alone or in a Bundle)
    reject_type: str | None = None
    seen: collections.Counter[str] = field(default_factory=collections.Counter)
    _server: http.server.ThreadingHTTPServer | None = None
    _upstream: httpx.Client | None = None

    @property
    def base(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/fhir"

    def start(self) -> FaultProxy:
        proxy = self
        upstream = self._upstream = httpx.Client(timeout=60)

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out together (no delayed-ACK stalls)
            wbufsize = 1 << 16

            def log_message(self, *args: Any) -> None:
                pass

            def _relay(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                action = None
                if self.command in proxy.methods and proxy.faults:
                    try:
                        action = proxy.faults.popleft()
                    except IndexError:
                        action = None
                if action:
                    proxy.seen[action] += 1
                if proxy.reject_type and body and proxy.reject_type in _written_types(body):
                    proxy.seen["rejected"] += 1
                    payload = json.dumps(
                        {
                            "resourceType": "OperationOutcome",
                            "issue": [
                                {
                                    "severity": "error",
                                    "code": "business-rule",
                                    "diagnostics": "not accepted here",
                                }
                            ],
                        }
                    ).encode()
                    self.send_response(422)
                    self.send_header("content-type", "application/fhir+json")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if action in ("429", "500", "503"):
                    payload = b'{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"transient"}]}'
                    self.send_response(int(action))
                    self.send_header("content-type", "application/fhir+json")
                    self.send_header("content-length", str(len(payload)))
                    if action != "500":
                        self.send_header("retry-after", "1")
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if action == "drop-before":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if action == "slow":
                    time.sleep(proxy.slow_seconds)
                if proxy.record_bodies and body and self.command in proxy.methods:
                    proxy.bodies.append(body)
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("host", "content-length", "connection")
                }
                answer = upstream.request(
                    self.command, proxy.upstream + self.path, content=body, headers=headers
                )
                if action == "drop-after":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in (
                        "content-length",
                        "transfer-encoding",
                        "connection",
                        "content-encoding",
                    ):
                        self.send_header(name, value)
                self.send_header("content-length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PUT = do_DELETE = _relay

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._upstream is not None:
            self._upstream.close()


def _written_types(body: bytes) -> set[str]:
    try:
        parsed = json.loads(body)
    except ValueError:
        return set()
    if not isinstance(parsed, dict):
        return set()
    if parsed.get("resourceType") == "Bundle":
        return {(e.get("resource") or {}).get("resourceType") for e in parsed.get("entry") or []} - {None}
    return {parsed.get("resourceType")}


def upstream_root(fhir_base: str) -> str:
    """``http://host:port`` of a FHIR base ``http://host:port/fhir``."""
    return fhir_base.rsplit("/fhir", 1)[0]
