"""One line an operator can act on for a database or migration error (the CLI prints it instead of a traceback).

The line never carries the database URL (it may hold a password) nor any row data.
"""

from __future__ import annotations

from alembic.util import CommandError
from sqlalchemy.exc import ArgumentError, DataError, DBAPIError, OperationalError, ProgrammingError

UPGRADE_HINT = "the database schema is missing or out of date: run `kap-gateway db upgrade`"


def describe_database_error(error: BaseException) -> str | None:
    """The line for ``error``, or None when it is no database error this module knows."""
    if isinstance(error, CommandError):  # alembic: unknown revision and the like
        return f"migration: {_first_line(str(error))}"
    if isinstance(error, ArgumentError):  # includes NoSuchModuleError (an unknown dialect)
        return f"KAPGW_DATABASE_URL: {_first_line(str(error))}"
    if not isinstance(error, DBAPIError):
        return None
    reason = _first_line(str(error.orig))
    if isinstance(error, ProgrammingError) and getattr(error.orig, "sqlstate", None) == "42P01":
        return UPGRADE_HINT
    if isinstance(error, OperationalError) and reason.startswith("no such table"):
        return UPGRADE_HINT
    if isinstance(error, OperationalError) and (
        error.statement is None or reason.startswith(("connection failed", "unable to open"))
    ):
        return f"cannot connect to the database (KAPGW_DATABASE_URL): {reason}"
    if isinstance(error, DataError):
        return f"the database refused a value: {reason}"
    return f"database error: {reason}"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "no details"
