"""X-Request-ID: the client's own when it is sane, else a new one; the same for the whole request."""

from __future__ import annotations

import random
import re

import bottle

_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id() -> str:
    environ = bottle.request.environ
    if "posterr.request_id" not in environ:
        given = environ.get("HTTP_X_REQUEST_ID", "")
        # Python's generator, not os.urandom: no system call per request, and it is seeded afresh in
        # every forked worker, so ids stay unique across workers (they are not secrets).
        environ["posterr.request_id"] = given if _SANE_REQUEST_ID.fullmatch(given) else f"{random.getrandbits(128):032x}"
    return environ["posterr.request_id"]
