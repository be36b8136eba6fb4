"""Structured logs: one JSON object per line on stdout, for the app and for gunicorn alike.

Events are logged with their name as the message and their facts as fields, e.g.
log.info("post_created", extra={"event": "post_created", "post_id": 7, "user_id": 3}).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from contextvars import ContextVar

import orjson
from pythonjsonlogger.json import JsonFormatter

FORMAT = "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s"
RENAMES = {"asctime": "time", "levelname": "level", "name": "logger", "process": "pid"}
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"
ACCESS_LOGGER = "posterr.access"
_handler: logging.StreamHandler | None = None  # the app's own, once configure() has installed it


def formatter() -> JsonFormatter:
    return JsonFormatter(FORMAT, rename_fields=RENAMES, datefmt=DATE_FORMAT)


def configure(level: str = "INFO") -> None:
    """The app's loggers write JSON to stdout (once per process, whoever calls first)."""
    global _handler
    root = logging.getLogger()
    if not any(getattr(handler, "posterr", False) for handler in root.handlers):
        _handler = logging.StreamHandler(sys.stdout)
        _handler.setFormatter(formatter())
        _handler.posterr = True
        root.addHandler(_handler)
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


_access_logger = logging.getLogger(ACCESS_LOGGER)
_second = {"at": -1, "text": ""}  # the time field, formatted once per second
_process = {"pid": os.getpid()}  # asked once per process, not by a system call on every line
os.register_at_fork(after_in_child=lambda: _process.update(pid=os.getpid()))


def access(fields: dict) -> None:
    """One request's access line: logger posterr.access, message "request", `fields`, in the shape of
    every other line. Written straight to the app's handler, since every request pays for it: a
    LogRecord and the JSON formatter cost several times the line itself (docs/performance.md).
    Through logging while the app's handler is not installed (configure() was not called)."""
    if not _access_logger.isEnabledFor(logging.INFO):
        return
    if _handler is None:
        _access_logger.info("request", extra=fields)
        return
    now = int(time.time())
    if now != _second["at"]:
        _second.update(at=now, text=time.strftime(DATE_FORMAT, time.localtime(now)))
    line = orjson.dumps({"time": _second["text"], "level": "INFO", "logger": ACCESS_LOGGER, "pid": _process["pid"],
                         "message": "request", **fields}).decode()
    with _handler.lock:  # a whole line at a time, between other threads' records
        _handler.stream.write(line + "\n")
        _handler.stream.flush()
