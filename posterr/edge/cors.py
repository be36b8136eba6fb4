"""CORS for /api: which origins may read the answers, which headers they see, and preflights."""

from __future__ import annotations

import bottle

from posterr.edge import current_context

EXPOSED_HEADERS = ("Link, Retry-After, RateLimit, RateLimit-Policy, X-Request-ID, Location, WWW-Authenticate, "
                   "Search-Scope")
ALLOWED_REQUEST_HEADERS = "Authorization, Content-Type, Idempotency-Key, X-Request-ID"
ALLOWED_METHODS = "GET, POST, PUT, DELETE, OPTIONS"


def add_cors_headers(response: bottle.BaseResponse) -> None:
    request = bottle.request
    if not request.path.startswith("/api"):
        return
    origins = current_context().settings.cors_origins
    origin = request.get_header("Origin")
    if "*" in origins:
        response.set_header("Access-Control-Allow-Origin", "*")
    elif origin in origins:
        response.set_header("Access-Control-Allow-Origin", origin)
        response.add_header("Vary", "Origin")
    response.set_header("Access-Control-Expose-Headers", EXPOSED_HEADERS)


def preflight(**_path_args: str) -> bottle.HTTPResponse:
    return bottle.HTTPResponse(status=204, headers={
        "Access-Control-Allow-Methods": ALLOWED_METHODS,
        "Access-Control-Allow-Headers": ALLOWED_REQUEST_HEADERS,
        "Access-Control-Max-Age": "600",
    })
