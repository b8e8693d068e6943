"""Log lines: plain text by default, or one JSON object per line (TWOSTEP_LOG_FORMAT=json).

A JSON line holds `time` (ISO 8601, UTC), `level`, `logger`, `message`, and, inside a request,
`request_id` and `path`; an exception adds `exception` (the traceback as one string). Gunicorn's
error log and access log use the same shape (server.JsonGunicornLogger), so one collector reads
every line the server writes.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
from datetime import UTC, datetime

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("twostep_request_id", default=None)
_path: contextvars.ContextVar[str | None] = contextvars.ContextVar("twostep_request_path", default=None)

REQUEST_ID_HEADER = "X-Request-ID"
# A request id a trusted proxy passes on is kept only if it looks like one: no spaces, no quotes,
# nothing a log reader could mistake for another field.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

# Attributes every LogRecord has; anything else on a record was passed through `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def new_request_id(offered: str | None = None) -> str:
    """Return `offered` when it is a well-formed id, else a fresh random one."""
    if offered and _REQUEST_ID.fullmatch(offered):
        return offered
    return secrets.token_hex(8)


def bind_request(request_id: str, path: str):
    """Note the request being served for the log lines written while serving it; return a token."""
    return _request_id.set(request_id), _path.set(path)


def unbind_request(tokens) -> None:
    request_token, path_token = tokens
    _request_id.reset(request_token)
    _path.reset(path_token)


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id, path = _request_id.get(), _path.get()
        if request_id:
            entry["request_id"] = request_id
        if path:
            entry["path"] = path
        for key, value in vars(record).items():
            # Django's request logger passes the request object itself: keep only plain values.
            if key not in _STANDARD and key not in entry and not key.startswith("_") and key != "request":
                entry[key] = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def logging_config(log_format: str, level: str) -> dict:
    """Return the LOGGING dictionary for `log_format` ("plain" or "json")."""
    formatter = ({"()": "twostep.logs.JsonFormatter"} if log_format == "json"
                 else {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"})
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"main": formatter},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "main"}},
        "root": {"handlers": ["console"], "level": level.upper()},
        "loggers": {"django.request": {"level": "ERROR"}},
    }
