"""SMART App Launch storage: authorization codes (grants), their tokens, refresh tokens, signing keys,
and the patients a consent page may offer."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select, update

from gateway.db.tables import (
    AccessTokenRow,
    AuthorizationCodeRow,
    ClientRow,
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
    return (
        session.exec(
            select(ResourceRow.id).where(
                ResourceRow.clinic_pk == clinic_pk,
                ResourceRow.resource_type == "Patient",
                ResourceRow.resource_id == patient_id,
                col(ResourceRow.deleted).is_(False),
            )
        ).first()
        is not None
    )
