"""Keyset paging: 2,500 matches, every one exactly once, while records are written between the pages."""

from __future__ import annotations

import pytest

from tests.gateway.fhir_api.fhir_data import PATIENTS, fhir_id

MATCHES = 2500
P1 = fhir_id("clinic-a", "patients", "p1")


def vitals(n: int, heart_rate: int) -> dict:
    minute = n % 60
    hour = (n // 60) % 24
    day = 1 + n // 1440
    return {
        "kind": "vitals",
        "id": f"hr{n}",
        "record": {
            "patient_id": "p1",
            "taken_at": f"2026-10-{day:02d}T{hour:02d}:{minute:02d}:00Z",
            "heart_rate": heart_rate,
        },
    }


def batch(clinic, entries: list[dict]) -> None:
    response = clinic.http.post("/api/v1/batch", json=entries, headers=clinic.headers)
    assert response.status_code == 200, response.text[:500]


@pytest.mark.parametrize("sort", [None, "-date"])
def test_every_match_exactly_once_while_writes_happen(clinic, fhir, sort: str | None) -> None:
    batch(clinic, [{"kind": "patients", "id": "p1", "record": PATIENTS["p1"]}])
    batch(clinic, [vitals(n, 60) for n in range(MATCHES)])
    params = {"patient": P1, "code": "8867-4", "_count": "200", "_total": "accurate"}
    if sort:
        params["_sort"] = sort
    first = fhir("Observation", params=params)
    assert first.status_code == 200
    bundle = first.json()
    assert bundle["total"] == MATCHES
    seen: list[str] = []
    page = 0
    while True:
        seen += [e["resource"]["identifier"][0]["value"] for e in bundle.get("entry", [])]
        page += 1
        assert page <= MATCHES, "the next links never end"
        # between pages: change matches already served and ones still to come, and add new matches
        batch(
            clinic,
            [vitals(n, 61 + page) for n in (page * 7, MATCHES - 1 - page * 11)]
            + [vitals(MATCHES + page * 2 + k, 70) for k in range(2)],
        )
        link = next((lk["url"] for lk in bundle["link"] if lk["relation"] == "next"), None)
        if link is None:
            break
        response = fhir(link.split("/fhir/", 1)[1])
        assert response.status_code == 200, response.text
        bundle = response.json()
        assert bundle["total"] == MATCHES
    assert page == MATCHES // 200 + 1
    assert len(seen) == MATCHES
    assert set(seen) == {f"hr{n}#heart-rate" for n in range(MATCHES)}
    # the writes were real: a fresh search sees the new matches and the new versions
    after = fhir("Observation", params={"patient": P1, "code": "8867-4", "_summary": "count"}).json()
    assert after["total"] == MATCHES + 2 * page
    changed = fhir(
        "Observation", params={"identifier": "https://gateway.test/id/clinic-a/vitals|hr7#heart-rate"}
    )
    assert changed.json()["entry"][0]["resource"]["meta"]["versionId"] == "2"
