"""SMART scopes enforced on /fhir through gateway/fhir_api/access.py (checklist SCOPE-1..5, RS-1), with
tokens from the real backend-services flow (private_key_jwt) and patient-context tokens as the launch
grant writes them. Complements tests/gateway/fhir_api/test_access.py: v1/v2 equivalence, r versus s,
401/403 answers, clinic grants, and compartment leaks through types without a patient parameter."""

from __future__ import annotations

import time

import pytest
from support.smart import backend_token, register_ehr_client

from tests.gateway.fhir_api.fhir_data import fhir_id

P1 = fhir_id("clinic-a", "patients", "p1")
P2 = fhir_id("clinic-a", "patients", "p2")
FHIR_JSON = "application/fhir+json"


def get(client, token: str, path: str, **params):
    return client.get(f"/fhir/{path}", params=params, headers={"Authorization": f"Bearer {token}"})


def ids(bundle: dict, resource_type: str | None = None) -> list[str]:
    return sorted(
        e["resource"]["id"]
        for e in bundle.get("entry", [])
        if resource_type is None or e["resource"]["resourceType"] == resource_type
    )


@pytest.fixture
def ehr_client(small_clinic, engine) -> str:
    return register_ehr_client(engine, clinics=("clinic-a",), scope="system/*.rs system/*.read")


def token_for(client, ehr_client: str, scope: str) -> str:
    return backend_token(client, ehr_client, scope=scope)


@pytest.mark.parametrize(
    "v1, v2", [("system/*.read", "system/*.rs"), ("system/Observation.read", "system/Observation.rs")]
)
def test_v1_and_v2_scopes_see_the_same(client, ehr_client, v1, v2) -> None:
    old, new = token_for(client, ehr_client, v1), token_for(client, ehr_client, v2)
    for path in ("Observation", "Observation?category=vital-signs"):
        a, b = get(client, old, path), get(client, new, path)
        assert a.status_code == b.status_code == 200
        assert ids(a.json()) == ids(b.json()) and ids(a.json())


def test_type_outside_the_scopes_is_403_operation_outcome(client, ehr_client) -> None:
    token = token_for(client, ehr_client, "system/Observation.rs")
    for path in ("Patient", f"Patient/{P1}"):
        response = get(client, token, path)
        assert response.status_code == 403, path
        assert response.headers["content-type"].startswith(FHIR_JSON)
        body = response.json()
        assert body["resourceType"] == "OperationOutcome"
        assert body["issue"][0]["code"] == "forbidden"
        assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-token", "Basic eDp5"],
    ids=["missing", "invalid", "not-bearer"],
)
def test_no_valid_token_is_401_with_www_authenticate(client, small_clinic, authorization) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get("/fhir/Patient", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].lower().startswith("bearer")
    assert response.headers["content-type"].startswith(FHIR_JSON)
    assert response.json()["resourceType"] == "OperationOutcome"


def test_read_and_search_permissions_are_distinct(client, ehr_client) -> None:
    read_only = token_for(client, ehr_client, "system/Patient.r")
    search_only = token_for(client, ehr_client, "system/Patient.s")
    assert get(client, read_only, f"Patient/{P1}").status_code == 200
    assert get(client, read_only, "Patient").status_code == 403
    assert get(client, search_only, "Patient").status_code == 200
    assert get(client, search_only, f"Patient/{P1}").status_code == 403


def test_constraints_or_together(client, ehr_client) -> None:
    everything = get(
        client, token_for(client, ehr_client, "system/Observation.rs"), "Observation", _count="100"
    )
    survey_or_vitals = token_for(
        client, ehr_client, "system/Observation.rs?category=vital-signs system/Observation.rs?category=survey"
    )
    vitals = token_for(client, ehr_client, "system/Observation.rs?category=vital-signs")
    survey = token_for(client, ehr_client, "system/Observation.rs?category=survey")
    both = set(ids(get(client, survey_or_vitals, "Observation", _count="100").json()))
    union = set(ids(get(client, vitals, "Observation", _count="100").json())) | set(
        ids(get(client, survey, "Observation", _count="100").json())
    )
    assert both == union and both <= set(ids(everything.json()))


def test_backend_token_sees_only_granted_clinics(client, engine, small_clinic, make_clinic) -> None:
    other = make_clinic("clinic-b")
    other.put(
        "patients",
        "p9",
        {"given_name": "Bo", "family_name": "Else", "birth_date": "1970-01-01", "sex": "male"},
    )
    foreign = fhir_id("clinic-b", "patients", "p9")
    only_a = backend_token(client, register_ehr_client(engine, clinics=("clinic-a",), name="A"))
    both = backend_token(client, register_ehr_client(engine, clinics=("clinic-a", "clinic-b"), name="AB"))
    assert get(client, only_a, f"Patient/{foreign}").status_code == 404
    assert foreign not in ids(get(client, only_a, "Patient", _count="100").json())
    assert get(client, only_a, f"Patient/{foreign}/$everything").status_code == 404
    assert foreign in ids(get(client, both, "Patient", _count="100").json())


def test_patient_context_via_revinclude_and_include(client, small_clinic, fhir_token) -> None:
    token = fhir_token("patient/*.rs", kind="app", patient=P1)
    bundle = get(
        client, token, "Encounter", _revinclude="Provenance:target", _include="Encounter:patient"
    ).json()
    for entry in bundle.get("entry", []):
        resource = entry["resource"]
        if resource["resourceType"] == "Patient":
            assert resource["id"] == P1
        elif resource["resourceType"] == "Encounter":
            assert resource["subject"]["reference"] == f"Patient/{P1}"


@pytest.mark.parametrize("resource_type", ["Group", "Provenance"])
def test_patient_context_does_not_list_other_patients_through_shared_types(
    client, small_clinic, fhir_token, resource_type
) -> None:
    """A patient/ scope on a type without a patient search parameter must not open the whole clinic."""
    system = get(client, fhir_token("system/*.rs"), resource_type, _count="100")
    patient = get(client, fhir_token("patient/*.rs", kind="app", patient=P1), resource_type, _count="100")
    if patient.status_code != 200 or system.status_code != 200:
        assert patient.status_code in (400, 403, 404)
        return
    for entry in patient.json().get("entry", []):
        text = str(entry["resource"])
        assert P2 not in text, f"{resource_type} leaks another patient to a patient-context token"


def test_disabled_client_token_is_401(client, engine, ehr_client) -> None:
    from sqlalchemy import update
    from sqlmodel import Session

    from gateway.db.tables import ClientRow

    token = token_for(client, ehr_client, "system/*.rs")
    assert get(client, token, "Patient").status_code == 200
    with Session(engine) as session:
        session.execute(update(ClientRow).where(ClientRow.client_id == ehr_client).values(disabled=True))
        session.commit()
    cache = getattr(client.app.state, "fhir_access_cache", None)
    if cache is not None:  # /fhir may reuse a token's access for a moment (gateway/fhir_api/access.py)
        time.sleep(cache.ttl + 0.1)
    assert get(client, token, "Patient").status_code == 401


def test_fhir_reads_and_searches_are_audited(client, engine, ehr_client) -> None:
    import json

    from sqlalchemy import select
    from sqlmodel import Session

    from gateway.db.tables import AuditEventRow

    token = token_for(client, ehr_client, "system/*.rs")
    client.app.state.audit.flush()
    with Session(engine) as session:
        before = len(session.execute(select(AuditEventRow.id)).all())
    assert get(client, token, f"Patient/{P1}").status_code == 200
    assert get(client, token, "Observation", patient=P2, category="vital-signs").status_code == 200
    assert get(client, token, "Condition").status_code in (200, 403)
    client.app.state.audit.flush()
    with Session(engine) as session:
        rows = session.execute(select(AuditEventRow).order_by(AuditEventRow.id)).scalars().all()[before:]
    assert [(r.action, r.resource_type, r.patient_id, r.client_id) for r in rows[:2]] == [
        ("read", "Patient", P1, ehr_client),
        ("search", "Observation", P2, ehr_client),
    ]
    assert token not in json.dumps([json.loads(r.content) for r in rows])
