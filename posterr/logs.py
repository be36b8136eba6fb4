"""Structured logs: one JSON object per line on stdout, for the app and for gunicorn alike.

Events are logged with their name as the message and their facts as fields, e.g.
log.info("post_created", extra={"event": "post_created", "post_id": 7, "user_id": 3}).
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

FORMAT = "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s"
RENAMES = {"asctime": "time", "levelname": "level", "name": "logger", "process": "pid"}


def formatter() -> JsonFormatter:
    return JsonFormatter(FORMAT, rename_fields=RENAMES, datefmt="%Y-%m-%dT%H:%M:%S%z")


def configure(level: str = "INFO") -> None:
    """The app's loggers write JSON to stdout (once per process, whoever calls first)."""
    root = logging.getLogger()
    if not any(getattr(handler, "posterr", False) for handler in root.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(formatter())
        handler.posterr = True
        root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("psycopg.pool").setLevel("WARNING")


def gunicorn_config(level: str) -> dict:
    """gunicorn's `logconfig_dict`: its own lines in the same JSON shape."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "posterr.logs.formatter"}},
        "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}},
        "root": {"level": level.upper(), "handlers": []},  # the app's own handler: configure() in each worker
        "loggers": {
            "gunicorn.error": {"handlers": ["stdout"], "level": level.upper(), "propagate": False},
            "gunicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
        },
    }


# The id of the request this thread is answering (set by the HTTP edge), so that every event line
# can be tied to its request's access line.
REQUEST_ID: ContextVar[str | None] = ContextVar("posterr_request_id", default=None)


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields) -> None:
    request_id = REQUEST_ID.get()
    if request_id is not None:
        fields.setdefault("request_id", request_id)
    logger.log(level, name, extra={"event": name, **fields})
