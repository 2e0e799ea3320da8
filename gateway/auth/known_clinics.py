"""Clinics named by slug when users and clients are registered: each one found, or ``NotFoundError``."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.core.errors import NotFoundError
from gateway.db.engine import Session
from gateway.db.repositories import clinics as clinic_repo


def clinic_pk(session: Session, slug: str) -> int:
    """The key of the clinic ``slug``; ``NotFoundError`` (404 / CLI error) when there is none."""
    clinic = clinic_repo.get_clinic(session, slug=slug)
    if clinic is None or clinic.id is None:
        raise NotFoundError(f"clinic {slug} is not known")
    return clinic.id


def clinic_pks(session: Session, slugs: Iterable[str]) -> list[int]:
    """The keys of the clinics named (duplicates once, in the order given)."""
    return [clinic_pk(session, slug) for slug in dict.fromkeys(slugs)]
