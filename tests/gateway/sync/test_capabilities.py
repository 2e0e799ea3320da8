"""Capabilities from /metadata and smart-configuration decide the delivery mode."""

from __future__ import annotations

import httpx
import pytest

from gateway.sync.capabilities import OAUTH_URIS, probe, summarize
from gateway.sync.errors import EhrStatusError


def metadata(*, transaction: bool, conditional: bool, token: str | None = None) -> dict:
    rest: dict = {
        "mode": "server",
        "resource": [{"type": "Patient", "conditionalCreate": conditional}, {"type": "Observation"}],
        "interaction": [{"code": "transaction"}] if transaction else [{"code": "batch"}],
    }
    if token:
        rest["security"] = {
            "extension": [{"url": OAUTH_URIS, "extension": [{"url": "token", "valueUri": token}]}]
        }
    return {"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1", "rest": [rest]}


@pytest.mark.parametrize(
    ("transaction", "conditional", "mode"),
    [
        pytest.param(True, True, "transaction", id="transaction"),
        pytest.param(True, False, "search", id="transaction-without-conditional"),
        pytest.param(False, True, "conditional", id="conditional"),
        pytest.param(False, False, "search", id="neither"),
    ],
)
def test_mode(transaction: bool, conditional: bool, mode: str) -> None:
    assert summarize(metadata(transaction=transaction, conditional=conditional), None)["mode"] == mode


def test_token_url_from_smart_configuration_else_oauth_uris() -> None:
    caps = metadata(transaction=True, conditional=True, token="https://a/oauth")
    assert summarize(caps, {"token_endpoint": "https://a/token"})["token_url"] == "https://a/token"
    assert summarize(caps, None)["token_url"] == "https://a/oauth"


def test_probe_reads_both_documents_and_tolerates_a_missing_smart_configuration() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/metadata"):
            return httpx.Response(
                200, json=metadata(transaction=False, conditional=True, token="https://a/t")
            )
        return httpx.Response(404)

    found = probe("https://ehr/fhir/", timeout=2, transport=httpx.MockTransport(handler))
    assert (found["mode"], found["token_url"], found["conditional_create"]) == (
        "conditional",
        "https://a/t",
        ["Patient"],
    )


def test_probe_refuses_what_is_not_a_capability_statement() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"resourceType": "Patient"}))
    with pytest.raises(EhrStatusError):
        probe("https://ehr/fhir", timeout=2, transport=transport)
