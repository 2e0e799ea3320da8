"""Extracts search-index values from a resource's JSON and writes them with each version.

Values follow FHIR R4 search semantics (hl7.org/fhir/R4/search.html): tokens are system|code pairs
from Coding, CodeableConcept, Identifier and code elements; dates are closed UTC ranges at the
precision given; strings are compared case- and accent-insensitively on the start of the value.
"""

from __future__ import annotations

import calendar
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

from gateway.store.search_params import SEARCH_PARAMS, SearchParam

MAX_LEN = 255


def values_at(resource: Any, path: str) -> Iterator[Any]:
    """Every value at a dotted path, flattening lists on the way."""
    current = [resource]
    for name in path.split("."):
        nxt: list[Any] = []
        for item in current:
            if isinstance(item, dict) and name in item:
                value = item[name]
                nxt.extend(value if isinstance(value, list) else [value])
        current = nxt
    yield from current


def tokens(value: Any) -> Iterator[tuple[str | None, str]]:
    if isinstance(value, str):
        yield None, value
    elif isinstance(value, bool):
        yield None, "true" if value else "false"
    elif isinstance(value, dict):
        if "coding" in value:
            for coding in value["coding"]:
                if "code" in coding:
                    yield coding.get("system"), coding["code"]
        elif "code" in value:  # Coding
            yield value.get("system"), value["code"]
        elif "value" in value and isinstance(value["value"], str):  # Identifier
            yield value.get("system"), value["value"]


def reference(value: Any) -> tuple[str, str] | None:
    ref = value.get("reference") if isinstance(value, dict) else None
    if not isinstance(ref, str) or ref.startswith("#"):
        return None
    parts = ref.split("/_history/")[0].rstrip("/").split("/")
    if len(parts) < 2:
        return None
    return parts[-2], parts[-1]


def date_range(value: Any) -> tuple[datetime, datetime] | None:
    """A FHIR date, dateTime, instant or Period as a closed UTC range."""
    if isinstance(value, dict):  # Period
        start = parse_date_range(value["start"])[0] if "start" in value else datetime.min.replace(tzinfo=UTC)
        end = parse_date_range(value["end"])[1] if "end" in value else datetime.max.replace(tzinfo=UTC)
        return start, end
    if not isinstance(value, str):
        return None
    return parse_date_range(value)


def parse_date_range(text: str) -> tuple[datetime, datetime]:
    """'2026' / '2026-11' / '2026-11-02' / full dateTime -> (first instant, last instant) in UTC."""
    if len(text) == 4:
        year = int(text)
        return datetime(year, 1, 1, tzinfo=UTC), datetime(year, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    if len(text) == 7:
        year, month = int(text[:4]), int(text[5:7])
        last = calendar.monthrange(year, month)[1]
        return (
            datetime(year, month, 1, tzinfo=UTC),
            datetime(year, month, last, 23, 59, 59, 999999, tzinfo=UTC),
        )
    if len(text) == 10:
        day = datetime.fromisoformat(text).date()
        return datetime.combine(day, time.min, UTC), datetime.combine(day, time.max, UTC)
    instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    instant = instant.astimezone(UTC)
    precision = timedelta(seconds=1) - timedelta(microseconds=1) if instant.microsecond == 0 else timedelta(0)
    return instant, instant + precision


def normalize_string(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()[:MAX_LEN]


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):  # HumanName, Address: every text part
        for key in (
            "text",
            "family",
            "given",
            "prefix",
            "suffix",
            "line",
            "city",
            "district",
            "state",
            "postalCode",
            "country",
        ):
            part = value.get(key)
            if isinstance(part, str):
                yield part
            elif isinstance(part, list):
                yield from (p for p in part if isinstance(p, str))


def index_rows(resource_pk: int, resource: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The index rows of one resource by index kind (token, reference, date, string)."""
    resource_type = resource["resourceType"]
    rows: dict[str, list[dict[str, Any]]] = {"token": [], "reference": [], "date": [], "string": []}
    base = {"resource_pk": resource_pk, "resource_type": resource_type}
    for param, spec in SEARCH_PARAMS.get(resource_type, {}).items():
        seen: set[Any] = set()
        for value in _param_values(resource, spec):
            if spec.type == "token":
                for system, code in tokens(value):
                    key = (system, code)
                    if key not in seen:
                        seen.add(key)
                        rows["token"].append(
                            {**base, "param": param, "system": system, "code": code[:MAX_LEN]}
                        )
            elif spec.type == "reference":
                target = reference(value)
                if target and (spec.target is None or target[0] == spec.target) and target not in seen:
                    seen.add(target)
                    rows["reference"].append(
                        {**base, "param": param, "target_type": target[0], "target_id": target[1]}
                    )
            elif spec.type == "date":
                found = date_range(value)
                if found and found not in seen:
                    seen.add(found)
                    rows["date"].append({**base, "param": param, "start": found[0], "end": found[1]})
            else:
                for text in strings(value):
                    normalized = normalize_string(text)
                    if normalized and normalized not in seen:
                        seen.add(normalized)
                        rows["string"].append({**base, "param": param, "value": normalized})
    return rows


def _param_values(resource: dict[str, Any], spec: SearchParam) -> Iterator[Any]:
    for path in spec.paths:
        yield from values_at(resource, path)
