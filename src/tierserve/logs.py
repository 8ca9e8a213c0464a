"""Logging of `tierserve serve`: text as uvicorn writes it, or one JSON object per line (TIERSERVE_LOG_FORMAT).

`log_config` is the `logging.config.dictConfig` configuration uvicorn applies in the server process and
in every worker. The access log is tierserve's own (`ACCESS_LOGGER`, written by
`api.accounting.RequestAccounting` when a request ends, to stdout as uvicorn's was): it knows the
duration, the body bytes and the request id. Other lines go to stderr. In JSON each line carries the
request id of the request it was written for (`REQUEST_ID`), when there is one.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]

#: The access log: one record per request, its fields in `ACCESS_FIELDS` (the record's extra attributes).
ACCESS_LOGGER = "tierserve.access"
ACCESS_FIELDS = ("method", "path", "status", "duration_ms", "bytes", "client")
#: The id of the request being answered (set by `api.accounting.RequestAccounting`).
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


class JsonFormatter(logging.Formatter):
    """A record as one JSON object: time (UTC), level, logger, message, request_id, the access fields
    of an access record, and the traceback as `exception`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        for field in ACCESS_FIELDS:
            if hasattr(record, field):
                entry[field] = getattr(record, field)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def log_config(log_format: LogFormat) -> dict[str, Any]:
    """uvicorn's `log_config`: uvicorn's, tierserve's and other libraries' lines to stderr, the access
    log to stdout, all as `log_format` says (text: uvicorn's ``INFO:     message`` lines)."""
    if log_format == "json":
        formatter: dict[str, Any] = {"()": "tierserve.logs.JsonFormatter"}
    else:
        formatter = {"()": "uvicorn.logging.DefaultFormatter", "fmt": "%(levelprefix)s %(message)s"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {
            "default": {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr"},
            "access": {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stdout"},
        },
        "root": {"handlers": ["default"], "level": "WARNING"},
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
            "tierserve": {"level": "INFO"},
            ACCESS_LOGGER: {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
    }
