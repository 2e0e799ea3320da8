"""Loads the synthetic demo clinic (``fixtures.demo``) through the same records service as the API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from fixtures.demo import generate_clinic
from gateway.auth.clients import create_clinic, create_clinic_client
from gateway.clinic_api import services
from gateway.core.config import Settings
from gateway.db.engine import Session
from gateway.db.repositories.clinics import get_clinic


@dataclass(frozen=True)
class DemoSummary:
    counts: dict[str, int]
    client_id: str
    client_secret: str


def load_demo(
    session: Session,
    settings: Settings,
    *,
    slug: str,
    patients: int,
    seed: int,
    start: date,
    batch_size: int = 500,
    progress: Callable[[int, int], None] | None = None,
) -> DemoSummary:
    """Loads the demo clinic; ``progress(done, total)`` is called before the first batch and after each."""
    clinic = get_clinic(session, slug=slug) or create_clinic(session, slug=slug, name="Demo KAP Clinic")
    assert clinic.id is not None
    scope = services.ClinicScope(pk=clinic.id, slug=clinic.slug, name=clinic.name)
    generated = generate_clinic(patients=patients, seed=seed, start=start)
    done = 0
    if progress:
        progress(done, len(generated))
    for batch in generated.batches(batch_size):
        services.run_batch(
            session,
            settings,
            clinic=scope,
            entries=[services.BatchEntry(kind, external_id, record) for kind, external_id, record in batch],
        )
        done += len(batch)
        if progress:
            progress(done, len(generated))
    client = create_clinic_client(session, clinic_slug=slug, name="demo client")
    return DemoSummary(
        counts=generated.counts(), client_id=client.client_id, client_secret=client.client_secret
    )
