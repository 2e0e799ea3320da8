"""Bundles around stored resource bytes (http://hl7.org/fhir/R4/bundle.html): no parse, no re-serialization.

A bundle is produced as an iterator of byte chunks, so a route can stream it; each entry's ``resource``
is the stored JSON as it is.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson


@dataclass(frozen=True)
class Entry:
    full_url: str | None
    resource: bytes | None
    #: ``search`` / ``request`` / ``response`` members of the entry, as plain JSON
    extra: dict[str, Any] = field(default_factory=dict)

    #: ``search.mode`` (match, include, outcome) of a searchset entry
    search_mode: str | None = None

    def chunk(self) -> bytes:
        parts = [] if self.full_url is None else [b'"fullUrl":' + orjson.dumps(self.full_url)]
        if self.resource is not None:
            parts.append(b'"resource":' + self.resource)
        if self.search_mode is not None:
            parts.append(_SEARCH_MODE.get(self.search_mode) or _search_mode(self.search_mode))
        parts.extend(b'"' + key.encode() + b'":' + orjson.dumps(value) for key, value in self.extra.items())
        return b"{" + b",".join(parts) + b"}"


def _search_mode(mode: str) -> bytes:
    return b'"search":' + orjson.dumps({"mode": mode})


#: the ``search`` member of each mode, encoded once (it is the same for every entry of a page)
_SEARCH_MODE = {mode: _search_mode(mode) for mode in ("match", "include", "outcome")}


@dataclass(frozen=True)
class Bundle:
    type: str
    entries: Sequence[Entry]
    links: Sequence[tuple[str, str]] = ()
    total: int | None = None
    timestamp: datetime | None = None
    #: the whole Bundle already serialized (a cached answer): ``chunks`` yields it as it is
    serialized: bytes | None = None

    @classmethod
    def of_body(cls, body: bytes) -> Bundle:
        return cls("searchset", (), serialized=body)

    def chunks(self) -> Iterator[bytes]:
        if self.serialized is not None:
            yield self.serialized
            return
        head: dict[str, Any] = {"resourceType": "Bundle", "type": self.type}
        if self.timestamp is not None:
            head["timestamp"] = self.timestamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if self.total is not None:
            head["total"] = self.total
        if self.links:
            head["link"] = [{"relation": relation, "url": url} for relation, url in self.links]
        opening = orjson.dumps(head)[:-1]
        if not self.entries:
            yield opening + b"}"
            return
        yield opening + b',"entry":['
        for position, entry in enumerate(self.entries):
            yield (b"," if position else b"") + entry.chunk()
        yield b"]}"

    def body(self) -> bytes:
        return b"".join(self.chunks())


def match(full_url: str, content: bytes, mode: str = "match") -> Entry:
    return Entry(full_url, content, search_mode=mode)


def outcome_entry(diagnostics: str) -> Entry:
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "warning", "code": "not-supported", "diagnostics": diagnostics}],
    }
    return Entry(None, orjson.dumps(outcome), search_mode="outcome")
