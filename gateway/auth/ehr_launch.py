"""SMART EHR launch, the EHR's part: an operator (or an EHR integration with an admin token) mints a launch
for an app, a patient and optionally an encounter, a clinician and further resources, and gets the URL that
opens the app: ``<app launch URL>?iss=<FHIR base>&launch=<value>``.

Spec: SMART App Launch 2.x "EHR launch" (https://hl7.org/fhir/smart-app-launch/app-launch.html#launch-app-ehr-launch)
and "fhirContext" (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html); checklist
AUTHZ-7, TOK-2, TOK-3.

The gateway is not an EHR user interface, so this is what SMART sandboxes offer in its place. The
``launch`` value is opaque (random, stored only as a hash), bound to the app (and so to its one clinic),
single use and short-lived (``KAPGW_EHR_LAUNCH_LIFETIME_SECONDS``). ``iss`` is ``Settings.fhir_base_url``
byte for byte, the same string the discovery documents and the CapabilityStatement are built from.
The app then sends ``launch`` with the ``launch`` scope to /auth/authorize (``gateway.auth.launch``), where
the launch is spent; the token response carries its context (``gateway.auth.launch_token``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.auth import credentials
from gateway.core.config import Settings
from gateway.core.errors import GatewayError, NotFoundError
from gateway.db.engine import Session
from gateway.db.repositories import clinics as clinic_repo
from gateway.db.repositories import launch as launch_repo
from gateway.db.repositories import users as user_repo
from gateway.db.tables import EhrLaunchRow

#: a FHIR id (R4 ``id`` datatype)
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
#: a relative reference ``Type/id`` for fhirContext
REFERENCE = re.compile(r"^([A-Z][A-Za-z]{1,63})/([A-Za-z0-9\-.]{1,64})$")
#: fhirContext entries per launch at most
MAX_FHIR_CONTEXT = 10
#: SMART 2.2: Patient and Encounter travel in ``patient`` and ``encounter``, not in fhirContext
CONTEXT_PARAMETER_TYPES = frozenset({"Patient", "Encounter"})


class InvalidLaunchError(GatewayError):
    """A launch that cannot be minted (an app without a launch URL, a patient of another clinic ...)."""

    status_code = 422


@dataclass(frozen=True)
class MintedLaunch:
    launch: str
    #: the app's launch URL with ``iss`` and ``launch``: what the EHR opens in the browser
    url: str
    iss: str
    expires_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "launch": self.launch,
            "launch_url": self.url,
            "iss": self.iss,
            "expires_at": self.expires_at.isoformat(),
        }


def launch_hash(settings: Settings, launch: str) -> str:
    return credentials.token_hash("launch:" + launch, settings.token_signing_secret.get_secret_value())


def create_launch(
    session: Session,
    settings: Settings,
    *,
    client_id: str,
    patient_id: str,
    encounter_id: str | None = None,
    username: str | None = None,
    fhir_context: list[str] | None = None,
) -> MintedLaunch:
    """Mints a launch of the app ``client_id`` for a patient of its clinic. Nothing is written on bad
    input; commits."""
    from gateway.auth.launch import with_query

    client = clinic_repo.get_client(session, client_id=client_id) if len(client_id) <= 64 else None
    if client is None or client.kind != "app" or client.id is None:
        raise NotFoundError(f"app client {client_id} is not known")
    if client.disabled:
        raise InvalidLaunchError(f"app client {client_id} is disabled")
    if not client.launch_url:
        raise InvalidLaunchError(
            f"app client {client_id} has no launch URL (register it with clients create --launch-url)"
        )
    clinic_pks = clinic_repo.granted_clinic_pks(session, client_pk=client.id)
    if len(clinic_pks) != 1:
        raise InvalidLaunchError("an app client is granted exactly one clinic")
    clinic_pk = clinic_pks[0]
    if not FHIR_ID.fullmatch(patient_id) or not launch_repo.patient_in_clinic(
        session, clinic_pk=clinic_pk, patient_id=patient_id
    ):
        raise InvalidLaunchError(f"patient {patient_id} is not a patient of the app's clinic")
    if encounter_id is not None:
        _check_encounter(session, clinic_pk=clinic_pk, patient_id=patient_id, encounter_id=encounter_id)
    user_pk = None
    if username is not None:
        user = user_repo.get_user(session, username=username) if len(username) <= 64 else None
        if user is None or user.disabled or user.id is None:
            raise InvalidLaunchError(f"user {username} is not known or is disabled")
        if clinic_pk not in user_repo.user_clinic_pks(session, user_pk=user.id):
            raise InvalidLaunchError(f"user {username} is not a user of the app's clinic")
        user_pk = user.id
    references = _check_fhir_context(session, clinic_pk=clinic_pk, references=fhir_context or [])
    value = credentials.new_token()
    now = datetime.now(UTC)
    expires_at = now + timedelta(seconds=settings.ehr_launch_lifetime_seconds)
    launch_repo.delete_spent_launches(session, before=now - timedelta(hours=1))
    launch_repo.add_ehr_launch(
        session,
        launch=EhrLaunchRow(
            launch_hash=launch_hash(settings, value),
            client_pk=client.id,
            clinic_pk=clinic_pk,
            patient_id=patient_id,
            encounter_id=encounter_id,
            fhir_context=references or None,
            user_pk=user_pk,
            created_at=now,
            expires_at=expires_at,
        ),
    )
    session.commit()
    iss = settings.fhir_base_url
    url = with_query(client.launch_url, {"iss": iss, "launch": value})
    return MintedLaunch(launch=value, url=url, iss=iss, expires_at=expires_at)


def _check_encounter(session: Session, *, clinic_pk: int, patient_id: str, encounter_id: str) -> None:
    content = (
        launch_repo.resource_content(
            session, clinic_pk=clinic_pk, resource_type="Encounter", resource_id=encounter_id
        )
        if FHIR_ID.fullmatch(encounter_id)
        else None
    )
    if content is None:
        raise InvalidLaunchError(f"encounter {encounter_id} is not an Encounter of the app's clinic")
    subject = (json.loads(content).get("subject") or {}).get("reference")
    if subject != f"Patient/{patient_id}":
        raise InvalidLaunchError(f"encounter {encounter_id} is not an encounter of patient {patient_id}")


def _check_fhir_context(session: Session, *, clinic_pk: int, references: list[str]) -> list[str]:
    unique = list(dict.fromkeys(references))
    if len(unique) > MAX_FHIR_CONTEXT:
        raise InvalidLaunchError(f"at most {MAX_FHIR_CONTEXT} fhirContext references")
    for reference in unique:
        match = REFERENCE.fullmatch(reference)
        if match is None:
            raise InvalidLaunchError(f"fhirContext {reference!r}: a relative reference Type/id")
        if match.group(1) in CONTEXT_PARAMETER_TYPES:
            raise InvalidLaunchError(
                f"fhirContext {reference}: give the patient and the encounter as --patient and --encounter"
            )
        if not launch_repo.resource_in_clinic(
            session, clinic_pk=clinic_pk, resource_type=match.group(1), resource_id=match.group(2)
        ):
            raise InvalidLaunchError(f"fhirContext {reference} is not a resource of the app's clinic")
    return unique


@dataclass(frozen=True)
class LaunchContext:
    """What a spent launch opens (carried by the authorization request and then the grant)."""

    patient: str
    encounter: str | None
    fhir_context: tuple[str, ...]
    user_pk: int | None


def use_launch(session: Session, settings: Settings, *, launch: str, client_pk: int) -> LaunchContext | None:
    """Spends the launch if it is this client's, unused and unexpired, and commits; None otherwise (an
    unknown, expired, reused or another app's launch: nothing changes)."""
    if len(launch) > 256:
        return None
    row = launch_repo.use_ehr_launch(
        session, launch_hash=launch_hash(settings, launch), client_pk=client_pk, now=datetime.now(UTC)
    )
    if row is None:
        session.rollback()
        return None
    session.commit()
    return LaunchContext(
        patient=row.patient_id,
        encounter=row.encounter_id,
        fhir_context=tuple(row.fhir_context or ()),
        user_pk=row.user_pk,
    )


def fhir_context_items(references: list[str] | tuple[str, ...]) -> list[dict[str, str]]:
    """SMART 2.2 ``fhirContext``: one object per resource, ``reference`` and ``type``."""
    return [{"reference": ref, "type": ref.partition("/")[0]} for ref in references]
