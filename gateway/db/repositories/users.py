"""Clinician users (SMART App Launch sign-in) and the clinics they belong to."""

from __future__ import annotations

from sqlmodel import Session, col, select

from gateway.db.tables import UserClinicRow, UserRow, utcnow


def get_user(session: Session, *, username: str) -> UserRow | None:
    return session.exec(select(UserRow).where(UserRow.username == username)).first()


def get_user_by_pk(session: Session, *, pk: int) -> UserRow | None:
    return session.get(UserRow, pk)


def add_user(session: Session, *, user: UserRow, clinic_pks: list[int]) -> UserRow:
    user.created_at = utcnow()
    session.add(user)
    session.flush()
    assert user.id is not None
    for clinic_pk in clinic_pks:
        session.add(UserClinicRow(user_pk=user.id, clinic_pk=clinic_pk))
    session.flush()
    return user


def user_clinic_pks(session: Session, *, user_pk: int) -> list[int]:
    rows = session.exec(select(UserClinicRow.clinic_pk).where(UserClinicRow.user_pk == user_pk))
    return sorted(rows)


def list_users(session: Session) -> list[UserRow]:
    return list(session.exec(select(UserRow).order_by(col(UserRow.username))))
