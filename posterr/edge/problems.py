"""Errors as problem+json (RFC 9457): every error answer, from a route, from Bottle itself or from a
bug, is rendered by `render_problem`, with the contract's members (`error` = `detail`, for the old
frontend) and the refusals it should count and log."""

from __future__ import annotations

import logging

import bottle
import orjson

from posterr import logs, metrics
from posterr.edge.clients import client_address
from posterr.edge.request_id import request_id
from posterr.errors import (
    ApiError,
    BadRequest,
    DailyLimitReached,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    TooManyRequests,
)

log = logging.getLogger("posterr.http")
BUG_DETAIL = "an unexpected error occurred; it has been logged"


def render_problem(error: ApiError) -> bottle.HTTPResponse:
    _count_refusal(error)
    body = {"type": f"/problems/{error.type_slug}", "title": error.title, "status": error.status,
            "detail": error.detail, "error": error.detail, **error.extra_members()}
    return bottle.HTTPResponse(orjson.dumps(body), error.status, error.headers, content_type="application/problem+json")


def bug() -> ApiError:
    """The error to answer a bug with, once it is logged with its traceback: no internals in it."""
    log.exception("unhandled_error", extra={"event": "unhandled_error", "request_id": request_id(),
                                            "method": bottle.request.method, "path": bottle.request.path})
    return ApiError(BUG_DETAIL)


def from_bottle(error: bottle.HTTPError) -> ApiError:
    """What Bottle itself refused (no route, a wrong method, its own failures) as the project's error."""
    request = bottle.request
    if error.status_code == 404:
        return NotFound(f"no route matches {request.path}")
    if error.status_code == 405:
        allowed = dict(error.headerlist).get("Allow", "")
        return MethodNotAllowed(f"{request.method} is not allowed on {request.path}", allowed=allowed)
    if error.status_code == 400:
        return BadRequest(str(error.body))
    if error.status_code == 413:
        return PayloadTooLarge(str(error.body))
    log.error("unhandled_error", extra={"event": "unhandled_error", "request_id": request_id(),
                                        "traceback": error.traceback or str(error.body)})
    return ApiError(BUG_DETAIL)


def _count_refusal(error: ApiError) -> None:
    if isinstance(error, TooManyRequests):
        limit = "daily_posts" if isinstance(error, DailyLimitReached) else "client_rate"
        metrics.REFUSALS.labels(limit).inc()
        logs.event(log, "daily_limit_refused" if limit == "daily_posts" else "rate_limited",
                   client=client_address(), user_id=bottle.request.environ.get("posterr.user_id"),
                   retry_after=error.retry_after)
    elif isinstance(error, ServiceUnavailable):
        logs.event(log, "service_unavailable", logging.WARNING, detail=error.detail, request_id=request_id())
