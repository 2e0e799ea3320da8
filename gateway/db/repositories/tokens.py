"""Issued access tokens (stored by hash)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select, update

from gateway.db.tables import AccessTokenRow, ClientRow


def add_token(session: Session, *, token: AccessTokenRow) -> AccessTokenRow:
    session.add(token)
    session.flush()
    return token


def find_active_token(
    session: Session, *, token_hash: str, now: datetime
) -> tuple[AccessTokenRow, ClientRow] | None:
    row = session.exec(
        select(AccessTokenRow, ClientRow)
        .join(ClientRow, ClientRow.id == AccessTokenRow.client_pk)  # type: ignore[arg-type]
        .where(AccessTokenRow.token_hash == token_hash)
    ).first()
    if row is None:
        return None
    token, client = row
    if token.revoked or client.disabled or token.expires_at <= now:
        return None
    return token, client


def revoke_token(session: Session, *, token_hash: str) -> bool:
    result = session.exec(
        update(AccessTokenRow).where(col(AccessTokenRow.token_hash) == token_hash).values(revoked=True)
    )
    return bool(result.rowcount)
