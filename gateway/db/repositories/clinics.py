"""Clinics and OAuth clients, with their clinic grants."""

from __future__ import annotations

from sqlmodel import Session, col, select

from gateway.db.tables import ClientClinicRow, ClientRow, ClinicRow, utcnow


def get_clinic(session: Session, *, slug: str) -> ClinicRow | None:
    return session.exec(select(ClinicRow).where(ClinicRow.slug == slug)).first()


def get_clinic_by_pk(session: Session, *, pk: int) -> ClinicRow | None:
    return session.get(ClinicRow, pk)


def list_clinics(session: Session) -> list[ClinicRow]:
    return list(session.exec(select(ClinicRow).order_by(col(ClinicRow.slug))))


def add_clinic(session: Session, *, slug: str, name: str) -> ClinicRow:
    row = ClinicRow(slug=slug, name=name, created_at=utcnow())
    session.add(row)
    session.flush()
    return row


def get_client(session: Session, *, client_id: str) -> ClientRow | None:
    return session.exec(select(ClientRow).where(ClientRow.client_id == client_id)).first()


def add_client(session: Session, *, client: ClientRow, clinic_pks: list[int]) -> ClientRow:
    client.created_at = utcnow()
    session.add(client)
    session.flush()
    assert client.id is not None
    for clinic_pk in clinic_pks:
        session.add(ClientClinicRow(client_pk=client.id, clinic_pk=clinic_pk))
    session.flush()
    return client


def list_clients(session: Session) -> list[ClientRow]:
    return list(session.exec(select(ClientRow).order_by(col(ClientRow.client_id))))


def granted_clinic_pks(session: Session, *, client_pk: int) -> list[int]:
    rows = session.exec(select(ClientClinicRow.clinic_pk).where(ClientClinicRow.client_pk == client_pk))
    return sorted(rows)


def app_client_urls(session: Session) -> list[str]:
    """The redirect URIs and launch URLs of every enabled app client (their origins may call from browsers)."""
    rows = session.exec(
        select(ClientRow.redirect_uris, ClientRow.launch_url).where(
            ClientRow.kind == "app", col(ClientRow.disabled).is_(False)
        )
    )
    urls: list[str] = []
    for redirect_uris, launch_url in rows:
        urls.extend(redirect_uris.split())
        if launch_url:
            urls.append(launch_url)
    return urls
