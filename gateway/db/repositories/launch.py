"""SMART App Launch storage: authorization codes (grants), their tokens, refresh tokens, signing keys,
EHR launches, and the patients a consent page may offer."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, delete, select, update

from gateway.db.tables import (
    AccessTokenRow,
    AuthorizationCodeRow,
    ClientRow,
    EhrLaunchRow,
    GrantTokenRow,
    RefreshTokenRow,
    ResourceRow,
    SigningKeyRow,
)

# --- authorization codes and the grants they stand for ---


def add_code(session: Session, *, code: AuthorizationCodeRow) -> AuthorizationCodeRow:
    session.add(code)
    session.flush()
    return code


def get_code(session: Session, *, code_hash: str) -> AuthorizationCodeRow | None:
    return session.exec(
        select(AuthorizationCodeRow).where(AuthorizationCodeRow.code_hash == code_hash)
    ).first()


def get_code_by_pk(session: Session, *, pk: int) -> AuthorizationCodeRow | None:
    return session.get(AuthorizationCodeRow, pk)


def mark_code_used(session: Session, *, code_pk: int, now: datetime) -> bool:
    """Sets ``used_at`` if the code was unused; False when another exchange came first."""
    result = session.exec(
        update(AuthorizationCodeRow)
        .where(col(AuthorizationCodeRow.id) == code_pk, col(AuthorizationCodeRow.used_at).is_(None))
        .values(used_at=now)
    )
    return result.rowcount == 1


def link_token(session: Session, *, code_pk: int, access_token_pk: int) -> None:
    session.add(GrantTokenRow(code_pk=code_pk, access_token_pk=access_token_pk))
    session.flush()


def revoke_grant(session: Session, *, code_pk: int) -> None:
    """Ends a grant: the code, every refresh token and every access token issued under it."""
    session.exec(
        update(AuthorizationCodeRow).where(col(AuthorizationCodeRow.id) == code_pk).values(revoked=True)
    )
    session.exec(update(RefreshTokenRow).where(col(RefreshTokenRow.code_pk) == code_pk).values(revoked=True))
    issued = select(GrantTokenRow.access_token_pk).where(GrantTokenRow.code_pk == code_pk)
    session.exec(update(AccessTokenRow).where(col(AccessTokenRow.id).in_(issued)).values(revoked=True))


def grant_of_access_token(session: Session, *, access_token_pk: int) -> int | None:
    return session.exec(
        select(GrantTokenRow.code_pk).where(GrantTokenRow.access_token_pk == access_token_pk)
    ).first()


def delete_expired_codes(session: Session, *, before: datetime) -> None:
    """Unused codes past their expiry mean nothing (used codes stay: they are the grant of live tokens)."""
    for code in session.exec(
        select(AuthorizationCodeRow).where(
            col(AuthorizationCodeRow.expires_at) < before, col(AuthorizationCodeRow.used_at).is_(None)
        )
    ):
        session.delete(code)


# --- refresh tokens ---


def get_client_by_pk(session: Session, *, pk: int) -> ClientRow | None:
    return session.get(ClientRow, pk)


def add_refresh_token(session: Session, *, token: RefreshTokenRow) -> RefreshTokenRow:
    session.add(token)
    session.flush()
    return token


def get_refresh_token(session: Session, *, token_hash: str) -> RefreshTokenRow | None:
    return session.exec(select(RefreshTokenRow).where(RefreshTokenRow.token_hash == token_hash)).first()


def mark_refresh_replaced(session: Session, *, pk: int) -> bool:
    """Marks a refresh token exchanged; False when another exchange came first."""
    result = session.exec(
        update(RefreshTokenRow)
        .where(
            col(RefreshTokenRow.id) == pk,
            col(RefreshTokenRow.replaced).is_(False),
            col(RefreshTokenRow.revoked).is_(False),
        )
        .values(replaced=True)
    )
    return result.rowcount == 1


def get_access_token(session: Session, *, token_hash: str) -> AccessTokenRow | None:
    return session.exec(select(AccessTokenRow).where(AccessTokenRow.token_hash == token_hash)).first()


def revoke_access_token(session: Session, *, pk: int) -> None:
    session.exec(update(AccessTokenRow).where(col(AccessTokenRow.id) == pk).values(revoked=True))


# --- signing keys ---


def signing_keys(session: Session, *, retired_after: datetime) -> list[SigningKeyRow]:
    """Active keys and keys retired after ``retired_after``, newest first."""
    return list(
        session.exec(
            select(SigningKeyRow)
            .where(col(SigningKeyRow.retired_at).is_(None) | (col(SigningKeyRow.retired_at) > retired_after))
            .order_by(col(SigningKeyRow.id).desc())
        )
    )


def active_signing_key(session: Session) -> SigningKeyRow | None:
    return session.exec(
        select(SigningKeyRow)
        .where(col(SigningKeyRow.retired_at).is_(None))
        .order_by(col(SigningKeyRow.id).desc())
    ).first()


def add_signing_key(
    session: Session, *, key: SigningKeyRow, retire_others_at: datetime | None
) -> SigningKeyRow:
    if retire_others_at is not None:
        session.exec(
            update(SigningKeyRow)
            .where(col(SigningKeyRow.retired_at).is_(None))
            .values(retired_at=retire_others_at)
        )
    session.add(key)
    session.flush()
    return key


# --- patients for the consent page ---


def patient_choices(session: Session, *, clinic_pk: int, limit: int) -> list[tuple[str, bytes]]:
    """(FHIR id, stored JSON) of the clinic's current patients, by id."""
    rows = session.exec(
        select(ResourceRow.resource_id, ResourceRow.content)
        .where(
            ResourceRow.clinic_pk == clinic_pk,
            ResourceRow.resource_type == "Patient",
            col(ResourceRow.deleted).is_(False),
        )
        .order_by(col(ResourceRow.resource_id))
        .limit(limit)
    )
    return [(rid, content) for rid, content in rows]


def patient_in_clinic(session: Session, *, clinic_pk: int, patient_id: str) -> bool:
    return resource_in_clinic(session, clinic_pk=clinic_pk, resource_type="Patient", resource_id=patient_id)


def resource_in_clinic(session: Session, *, clinic_pk: int, resource_type: str, resource_id: str) -> bool:
    """Whether the clinic holds a current (not deleted) resource of this type and id."""
    return (
        resource_content(session, clinic_pk=clinic_pk, resource_type=resource_type, resource_id=resource_id)
        is not None
    )


def resource_content(
    session: Session, *, clinic_pk: int, resource_type: str, resource_id: str
) -> bytes | None:
    """The stored JSON of the clinic's current (not deleted) resource of this type and id, or None."""
    return session.exec(
        select(ResourceRow.content).where(
            ResourceRow.clinic_pk == clinic_pk,
            ResourceRow.resource_type == resource_type,
            ResourceRow.resource_id == resource_id,
            col(ResourceRow.deleted).is_(False),
        )
    ).first()


# --- EHR launches ---


def add_ehr_launch(session: Session, *, launch: EhrLaunchRow) -> EhrLaunchRow:
    session.add(launch)
    session.flush()
    return launch


def use_ehr_launch(
    session: Session, *, launch_hash: str, client_pk: int, now: datetime
) -> EhrLaunchRow | None:
    """The launch, marked used, if it is this client's, unused and unexpired; else None (nothing changes).

    One UPDATE decides, so two authorization requests racing for one launch cannot both win."""
    result = session.exec(
        update(EhrLaunchRow)
        .where(
            col(EhrLaunchRow.launch_hash) == launch_hash,
            col(EhrLaunchRow.client_pk) == client_pk,
            col(EhrLaunchRow.used_at).is_(None),
            col(EhrLaunchRow.expires_at) > now,
        )
        .values(used_at=now)
    )
    if result.rowcount != 1:
        return None
    return session.exec(select(EhrLaunchRow).where(EhrLaunchRow.launch_hash == launch_hash)).first()


def delete_spent_launches(session: Session, *, before: datetime) -> int:
    """Launches that expired before ``before`` (used or not) mean nothing any more."""
    result = session.exec(delete(EhrLaunchRow).where(col(EhrLaunchRow.expires_at) < before))
    return int(result.rowcount or 0)
