"""Search clauses judged against one resource in memory, the way ``gateway.db.repositories.fhir_search``
judges them in SQL (https://hl7.org/fhir/R4/search.html): on the rows the search index holds for it
(:func:`gateway.store.search_index.index_rows`).

For resources that have left the index: a deleted resource's last content still says which access
rules, ``_typeFilter`` queries and compartments it fell under (the Bulk Data ``deleted`` manifest lists
only what the export's client could have been sent).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from gateway.store.search_query import Clause, Conjunction, DateValue, ReferenceValue, StringValue, TokenValue

IndexRows = dict[str, list[dict[str, Any]]]


def date_matches(start: datetime, end: datetime, value: DateValue) -> bool:
    """R4 date prefixes: the resource's range [start, end] against the value's range (search.html#prefix)."""
    a, b = value.start, value.end
    contained = start >= a and end <= b
    match value.prefix:
        case "eq":
            return contained
        case "ne":
            return not contained
        case "gt":
            return end > b
        case "lt":
            return start < a
        case "ge":
            return end > b or contained
        case "le":
            return start < a or contained
        case "sa":
            return start > b
        case _:  # "eb"
            return end < a


def _value_matches(kind: str, row: dict[str, Any], value: Any) -> bool:
    if kind == "token":
        token: TokenValue = value
        if token.code is not None and row["code"] != token.code:
            return False
        if token.system == "":
            return row["system"] is None
        return token.system is None or row["system"] == token.system
    if kind == "reference":
        reference: ReferenceValue = value
        return row["target_id"] == reference.target_id and (
            reference.target_type is None or row["target_type"] == reference.target_type
        )
    if kind == "date":
        return date_matches(row["start"], row["end"], value)
    text: StringValue = value
    if text.mode == "exact":
        return bool(row["value"] == text.text)
    return bool(row["value"].startswith(text.text) if text.mode == "start" else text.text in row["value"])


def clause_matches(clause: Clause, rows: IndexRows, *, resource_id: str, last_updated: datetime) -> bool:
    if clause.kind == "id":
        return resource_id in {str(v) for v in clause.values}
    if clause.kind == "last_updated":
        return any(date_matches(last_updated, last_updated, v) for v in clause.values)  # type: ignore[arg-type]
    return any(
        _value_matches(clause.kind, row, value)
        for row in rows[clause.kind]
        if row["param"] == clause.param
        for value in clause.values
    )


def rule_matches(
    rule: Sequence[Conjunction], rows: IndexRows, *, resource_id: str, last_updated: datetime
) -> bool:
    """An access rule or filter list: OR of AND-ed clauses (``[]`` matches nothing, ``[()]`` everything)."""
    return any(
        all(clause_matches(c, rows, resource_id=resource_id, last_updated=last_updated) for c in conjunction)
        for conjunction in rule
    )
