"""An independent SMART client (Python ``fhirclient`` 4.4, smart-on-fhir/client-py) completes SMART Backend
Services against a real gateway over HTTP and reads data (issue 9 item 7; reference/peers.md §3).

fhirclient discovers the token endpoint from the CapabilityStatement's oauth-uris, sends
``client_credentials`` with our signed ``client_assertion`` (it does not sign; checklist ALC-3) and parses
what it reads with its own R4 models. It resends the same assertion when asked to authorize again, which
the gateway must refuse as a replayed jti.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from fhirclient import client as fhir_client
from fhirclient.models.observation import Observation
from fhirclient.models.patient import Patient
from support.smart import gateway_at_its_own_url, register_ehr_client, sign_assertion

from gateway.core.config import Settings
from gateway.db.engine import Session
from gateway.demo import load_demo

pytestmark = pytest.mark.integration


@pytest.fixture
def server(settings: Settings) -> Iterator:
    with gateway_at_its_own_url(settings) as running:
        with Session(running.app.state.engine) as session:
            load_demo(
                session, running.app.state.settings, slug="demo", patients=3, seed=5, start=date(2026, 1, 5)
            )
        yield running


def test_fhirclient_backend_services_reads_data(server) -> None:
    client_id = register_ehr_client(server.app.state.engine, clinics=("demo",), scope="system/*.read")
    token_url = f"{server.base_url}/auth/token"
    smart = fhir_client.FHIRClient(
        settings={
            "app_id": client_id,
            "api_base": f"{server.base_url}/fhir",
            "scope": "system/*.read",
            "jwt_token": sign_assertion(client_id, token_url),
        }
    )
    smart.wants_patient = False  # system scopes: no launch/patient
    assert smart.prepare() is False  # it read the CapabilityStatement and needs a token
    assert smart.server.auth._token_uri == token_url  # from the CapabilityStatement's oauth-uris
    smart.authorize()
    assert smart.ready
    patients = list(Patient.where(struct={"_count": "10"}).perform_resources_iter(smart.server))
    assert len(patients) == 3
    read = Patient.read(patients[0].id, smart.server)
    assert read.id == patients[0].id
    observations = list(
        Observation.where(struct={"patient": patients[0].id}).perform_resources_iter(smart.server)
    )
    assert observations and all(o.subject.reference == f"Patient/{patients[0].id}" for o in observations)
    # client-py sends the same assertion again: a replayed jti, refused
    with pytest.raises(Exception) as refused:
        smart.server.auth.authorize(smart.server)
    assert "400" in str(refused.value) or "invalid_client" in str(refused.value)
