"""A small in-memory FHIR server behind httpx.MockTransport, for unit tests of the worker on both databases.

It is not the proof that sync works with a real EHR (tests/integration does that against Medplum); it
answers just enough (token, transaction, conditional create, update, delete, identifier search) and can
be told to fail."""

from __future__ import annotations

import collections
import itertools
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from gateway.sync.shaping import SYNC_SYSTEM


def _marks(resource: dict[str, Any]) -> set[str]:
    out = {
        f"identifier={i.get('system')}|{i.get('value')}"
        for i in resource.get("identifier") or []
        if isinstance(i, dict)
    }
    out |= {f"_tag={t.get('system')}|{t.get('code')}" for t in (resource.get("meta") or {}).get("tag") or []}
    return out


@dataclass
class FakeEhr:
    store: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    requests: collections.Counter[str] = field(default_factory=collections.Counter)
    fail_status: int | None = None
    reject_type: str | None = None
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def find(self, resource_type: str, query: str) -> list[dict[str, Any]]:
        return [r for (t, _), r in self.store.items() if t == resource_type and query in _marks(r)]

    def ours(self, resource_type: str) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        for (t, _), r in self.store.items():
            if t == resource_type:
                for mark in _marks(r):
                    if f"={SYNC_SYSTEM}|urn:uuid:" in mark:
                        out[mark.split("urn:uuid:", 1)[1]].append(r)
        return out

    def _write(
        self, method: str, url: str, resource: dict[str, Any] | None, if_none_exist: str | None
    ) -> tuple[int, dict[str, Any] | None]:
        parts = url.strip("/").split("/")
        if resource is not None and resource.get("resourceType") == self.reject_type:
            return 422, {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "invalid"}],
            }
        if method == "DELETE":
            self.store.pop((parts[0], parts[1]), None)
            return 204, None
        assert resource is not None
        if method == "PUT":
            key = (parts[0], parts[1])
            version = int((self.store.get(key) or {}).get("meta", {}).get("versionId", "0")) + 1
            stored = {
                **resource,
                "id": parts[1],
                "meta": {**resource.get("meta", {}), "versionId": str(version)},
            }
            self.store[key] = stored
            return 200, stored
        if if_none_exist:
            found = self.find(parts[0], if_none_exist)
            if found:
                return 200, found[0]
        new_id = f"e{next(self.ids)}"
        stored = {**resource, "id": new_id, "meta": {**resource.get("meta", {}), "versionId": "1"}}
        self.store[(parts[0], new_id)] = stored
        return 201, stored

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = urlsplit(str(request.url)).path
        if path == "/token":
            self.requests["token"] += 1
            return httpx.Response(200, json={"access_token": "t", "expires_in": 300})
        self.requests[request.method] += 1
        if self.fail_status:
            return httpx.Response(
                self.fail_status,
                headers={"retry-after": "0"},
                json={
                    "resourceType": "OperationOutcome",
                    "issue": [{"severity": "error", "code": "transient"}],
                },
            )
        rel = path.removeprefix("/fhir")
        body = json.loads(request.content) if request.content else None
        if request.method == "GET":
            query = "&".join(f"{k}={v[0]}" for k, v in parse_qs(urlsplit(str(request.url)).query).items())
            found = self.find(rel.strip("/"), query)
            return httpx.Response(
                200,
                json={
                    "resourceType": "Bundle",
                    "type": "searchset",
                    "entry": [{"resource": r} for r in found],
                },
            )
        if rel in ("", "/") and body and body.get("resourceType") == "Bundle":
            self.requests["transaction"] += 1
            if self.reject_type and any(
                (e.get("resource") or {}).get("resourceType") == self.reject_type for e in body["entry"]
            ):
                return httpx.Response(
                    400,
                    json={
                        "resourceType": "OperationOutcome",
                        "issue": [{"severity": "error", "code": "invalid"}],
                    },
                )
            full_urls: dict[str, str] = {}
            answers = []
            for entry in body["entry"]:
                resource = entry.get("resource")
                if resource is not None:
                    text = json.dumps(resource)
                    for placeholder, ref in full_urls.items():
                        text = text.replace(placeholder, ref)
                    resource = json.loads(text)
                req = entry["request"]
                status, stored = self._write(req["method"], req["url"], resource, req.get("ifNoneExist"))
                if stored is not None and entry.get("fullUrl", "").startswith("urn:uuid:"):
                    full_urls[entry["fullUrl"]] = f"{stored['resourceType']}/{stored['id']}"
                location = (
                    f"{stored['resourceType']}/{stored['id']}/_history/{stored['meta']['versionId']}"
                    if stored
                    else None
                )
                answers.append({"response": {"status": str(status), "location": location}})
            return httpx.Response(
                200, json={"resourceType": "Bundle", "type": "transaction-response", "entry": answers}
            )
        status, stored = self._write(request.method, rel, body, request.headers.get("if-none-exist"))
        headers = {}
        if stored is not None and status < 300:
            headers["location"] = (
                f"https://ehr.test/fhir/{stored['resourceType']}/{stored['id']}/_history/{stored['meta']['versionId']}"
            )
        return (
            httpx.Response(status, json=stored, headers=headers)
            if stored is not None
            else httpx.Response(status)
        )
