"""FastAPI dependencies shared by the routers (aliases end in ``Dep``).

Sessions are lazy (no connection, no transaction until the first query) and close when the route
function returns (``scope="function"``), before the response is sent. The bearer-token check uses its
own short read-only session, so no connection or lock is held while a request body streams in.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request

from gateway.audit.trail import record_bearer_refused
from gateway.auth.service import CLINIC_SCOPE, Principal, authenticate_bearer
from gateway.clinic_api.services import ClinicScope
from gateway.core.config import Settings
from gateway.core.errors import ForbiddenError, UnauthorizedError
from gateway.db.engine import Engine, Session, session_scope
from gateway.db.repositories import clinics as clinic_repo


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


def get_session(request: Request) -> Iterator[Session]:
    """A session for a write use case (on SQLite its transaction takes the write lock when it begins)."""
    with session_scope(request.app.state.engine) as session:
        yield session


def get_read_session(request: Request) -> Iterator[Session]:
    """A session for a read use case: never takes SQLite's write lock."""
    with session_scope(request.app.state.engine, read_only=True) as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
ReadSessionDep = Annotated[Session, Depends(get_read_session, scope="function")]
AuthorizationHeader = Annotated[str | None, Header(include_in_schema=False)]


def get_principal(
    request: Request, settings: SettingsDep, authorization: AuthorizationHeader = None
) -> Principal:
    with session_scope(request.app.state.engine, read_only=True) as session:
        try:
            principal = authenticate_bearer(session, settings, authorization=authorization)
        except UnauthorizedError as error:
            if authorization:  # a token was presented and refused: a failed authentication
                record_bearer_refused(
                    request.app.state.audit,
                    settings,
                    path=request.url.path,
                    description=str(error),
                    address=request.client.host if request.client else None,
                )
            raise
    request.state.principal = principal  # for the audit trail (gateway.audit.middleware)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def get_clinic_scope(
    request: Request, settings: SettingsDep, authorization: AuthorizationHeader = None
) -> ClinicScope:
    """The clinic a clinic-records token acts for; one read-only session for the token and the clinic."""
    with session_scope(request.app.state.engine, read_only=True) as session:
        principal = authenticate_bearer(session, settings, authorization=authorization)
        if principal.kind != "clinic" or principal.clinic_pk is None or CLINIC_SCOPE not in principal.scopes:
            raise ForbiddenError("this token is not a clinic records token")
        clinic = clinic_repo.get_clinic_by_pk(session, pk=principal.clinic_pk)
        if clinic is None or clinic.id is None:
            raise ForbiddenError("the token's clinic no longer exists")
        return ClinicScope(pk=clinic.id, slug=clinic.slug, name=clinic.name)


ClinicDep = Annotated[ClinicScope, Depends(get_clinic_scope)]
