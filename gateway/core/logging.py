"""JSON-lines logging with a request id on every line.

PHI rule: log resource types, ids, status codes, outcome codes and durations; never names, birth
dates, identifier values, bodies or an EHR's error text. Exceptions are logged by type and
traceback frames only (``_scrub`` drops the exception message, which may echo input).
"""

from __future__ import annotations

import contextvars
import logging
import sys
import traceback
from datetime import UTC, datetime
from typing import Any

import orjson

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": request_id_var.get(),
        }
        line.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info and record.exc_info[0] is not None:
            line["exc_type"] = record.exc_info[0].__name__
            line["stack"] = _scrub(record.exc_info[2])
        return orjson.dumps(line, default=str).decode()


def _scrub(tb: object) -> list[str]:
    """Frames only (file, line, function) — the exception message may contain request data."""
    return [f"{f.filename}:{f.lineno} {f.name}" for f in traceback.extract_tb(tb)]  # type: ignore[arg-type]


def configure_logging(level: str = "INFO", *, json_lines: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if json_lines else logging.Formatter("%(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger(
        "uvicorn.access"
    ).disabled = True  # the gateway logs requests itself, without query strings
