"""The HTTP edge: JSON bodies in, JSON and problem+json out, the headers every response carries, the
per-client rate limit, access logs and request metrics.

Routes raise posterr.errors; `EdgePlugin` turns them (and any bug) into problem+json, and the
error handlers do the same for what Bottle itself refuses (unknown route, wrong method). Bottle
runs neither its hooks nor plugins on those, and drops headers set in hooks on a 500, so both
paths call `finish` themselves.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from http import HTTPStatus
from ipaddress import ip_address
from typing import Any
from urllib.parse import urlencode

import bottle
import orjson
from gunicorn.http.errors import ParseException

from posterr import logs, metrics, replicas, validation
from posterr.context import Context
from posterr.errors import (
    ApiError,
    BadRequest,
    DailyLimitReached,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    TooManyRequests,
    ValidationFailed,
)
from posterr.services import idempotency
from posterr.services.pagination import Page
from posterr.watchdog import Watchdog

log = logging.getLogger("posterr.http")
access_log = logging.getLogger("posterr.access")
# Operations endpoints are never rate-limited (the contract), nor is the API's own description.
UNLIMITED = frozenset({"/healthz", "/readyz", "/metrics", "/api/openapi.json"})

MAX_BODY = 64 * 1024
# Before a 413 the rest of the body is read and dropped (this much, for this long at most): a server
# that stops reading and closes while the client still sends makes the client's TCP stack discard
# the answer (a reset), so the client would see a dropped connection instead of the problem.
DRAIN_LIMIT = 8 * 1024 * 1024
DRAIN_SECONDS = 2.0
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
EXPOSED_HEADERS = "Link, Retry-After, RateLimit, RateLimit-Policy, X-Request-ID, Location"
ALLOWED_REQUEST_HEADERS = "Content-Type, Idempotency-Key, X-Request-ID"
ALLOWED_METHODS = "GET, POST, PUT, DELETE, OPTIONS"


# --- requests ---------------------------------------------------------------------------------

def request_id() -> str:
    """The client's X-Request-ID when it is sane, else a new one; the same for the whole request."""
    environ = bottle.request.environ
    if "posterr.request_id" not in environ:
        given = environ.get("HTTP_X_REQUEST_ID", "")
        environ["posterr.request_id"] = given if _SANE_REQUEST_ID.fullmatch(given) else os.urandom(16).hex()
    return environ["posterr.request_id"]


def json_body() -> dict[str, Any]:
    """The request body as a JSON object: 413 past 64 KiB, 400 when it is not a JSON object."""
    request = bottle.request
    body_input = request.environ["wsgi.input"]
    if (request.content_length or 0) > MAX_BODY:
        raise _too_large(body_input)
    # Not bottle's request.body, which reads a chunked body whole (to a temporary file) first. The
    # server (gunicorn) has already removed the chunked framing and stops at Content-Length.
    try:
        raw = body_input.read(MAX_BODY + 1)
    except (OSError, ParseException) as error:  # the client went away, or sent a malformed chunk
        raise BadRequest(f"the request body could not be read: {error}") from None
    if len(raw) > MAX_BODY:
        raise _too_large(body_input)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise BadRequest(f"the request body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    if isinstance(body.get("user_id"), int):
        request.environ["posterr.user_id"] = body["user_id"]  # for the access log
    return body


def _too_large(body_input) -> PayloadTooLarge:
    """The 413 to raise, once the rest of the body has been drained (see DRAIN_LIMIT)."""
    sock = bottle.request.environ.get("gunicorn.socket")
    previous = sock.gettimeout() if sock else None
    if sock:
        sock.settimeout(DRAIN_SECONDS)
    drained = 0
    try:
        while drained < DRAIN_LIMIT and (chunk := body_input.read(64 * 1024)):
            drained += len(chunk)
    except (OSError, ParseException):
        pass  # a client too slow, or a malformed chunk: answer anyway
    finally:
        if sock:
            sock.settimeout(previous)
    return PayloadTooLarge(f"the request body must be at most {MAX_BODY} bytes")


def path_id(text: str, what: str) -> int:
    """An id from the path; one that cannot name a resource is simply not found."""
    value = validation.path_id(text)
    if value is None:
        raise NotFound(f"there is no {what} {text}")
    return value


def query_params(*names: str) -> dict[str, str | None]:
    """The named query parameters as text; empty ones count as absent, undecodable ones are 422."""
    query = bottle.request.query
    params = {}
    for name in names:
        params[name] = query.getunicode(name) or None
        if params[name] is None and query.get(name):
            raise ValidationFailed.of(name, "must be valid UTF-8")
    return params


# --- responses --------------------------------------------------------------------------------

def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> bottle.HTTPResponse:
    """`data` encoded, or sent as it is when it is already JSON bytes (from the cache)."""
    body = data if isinstance(data, bytes) else orjson.dumps(data)
    return bottle.HTTPResponse(body, status, headers, content_type="application/json")


def created_once(ctx: Context, body: dict, location_prefix: str,
                 create: Callable[[idempotency.Record | None], dict]) -> bottle.HTTPResponse:
    """201 for create(), honouring an Idempotency-Key header (scoped to this route)."""
    request = bottle.request
    result = idempotency.create_once(
        ctx, scope=f"{request.method} {request.route.rule}", key_header=request.environ.get("HTTP_IDEMPOTENCY_KEY"),
        path=request.path, body=body, create=create, location_prefix=location_prefix)
    headers = {"Location": result.location}
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_response(result.body, 201, headers)


def no_content() -> bottle.HTTPResponse:
    return bottle.HTTPResponse(status=204)


def page_response(page: Page, params: dict[str, str | None]) -> bottle.HTTPResponse:
    """A list page; when more items exist, a Link to the next page repeating every filter."""
    headers = {}
    if page.next_cursor:
        query = {name: value for name, value in params.items() if value and name != "cursor"}
        query["cursor"] = page.next_cursor
        headers["Link"] = f'<{bottle.request.path}?{urlencode(query)}>; rel="next"'
    return json_response(page.body, headers=headers)


def problem(status: int, detail: str, *, title: str | None = None, type_slug: str | None = None,
            extra: dict | None = None) -> bytes:
    title = title or HTTPStatus(status).phrase
    slug = type_slug or title.lower().replace(" ", "-")
    body = {"type": f"/problems/{slug}", "title": title, "status": status, "detail": detail, "error": detail}
    body.update(extra or {})
    return orjson.dumps(body)


def problem_response(error: ApiError) -> bottle.HTTPResponse:
    body = problem(error.status, error.detail, title=error.title, type_slug=error.type_slug,
                   extra=error.extra_members())
    return bottle.HTTPResponse(body, error.status, error.headers, content_type="application/problem+json")


def finish(response: bottle.BaseResponse) -> None:
    """Headers every response carries, success or error."""
    request = bottle.request
    response.set_header("X-Request-ID", request_id())
    response.set_header("X-Content-Type-Options", "nosniff")
    if request.path.startswith("/api"):
        origins = request.app.config["posterr.cors_origins"]
        origin = request.get_header("Origin")
        if "*" in origins:
            response.set_header("Access-Control-Allow-Origin", "*")
        elif origin in origins:
            response.set_header("Access-Control-Allow-Origin", origin)
            response.add_header("Vary", "Origin")
        response.set_header("Access-Control-Expose-Headers", EXPOSED_HEADERS)
    decision = request.environ.get("posterr.rate")
    if decision is not None:
        for name, value in decision.headers().items():
            response.set_header(name, value)


def client_address() -> str:
    """The socket peer, or the first untrusted hop of X-Forwarded-For when the peer is a trusted proxy."""
    environ = bottle.request.environ
    trusted = bottle.request.app.config["posterr.trusted_proxies"]
    peer = environ.get("REMOTE_ADDR", "")
    if not trusted:
        return peer[:64]  # no proxy to look behind (and no address is that long)
    forwarded = environ.get("HTTP_X_FORWARDED_FOR", "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()] + [peer]
    for hop in reversed(hops):
        try:
            address = ip_address(hop)
        except ValueError:
            return hop[:64]  # not an address: an untrusted hop by definition
        if not any(address in network for network in trusted):
            return hop
    return hops[0]


def _rate_limit(ctx: Context, route_rule: str) -> ApiError | None:
    """Counts the request against its client; the refusal to answer with, if over the limit."""
    if ctx.rate_limit is None or bottle.request.method == "OPTIONS" or not route_rule.startswith("/api") \
            or route_rule in UNLIMITED:
        return None
    decision = ctx.rate_limit.check(client_address())
    bottle.request.environ["posterr.rate"] = decision
    if decision is None or decision.allowed:
        return None
    return TooManyRequests(f"too many requests from this client: the limit is {decision.limit} per "
                           f"{decision.period} seconds", retry_after=decision.retry_after)


def _record(response: bottle.BaseResponse, route_rule: str, started: float) -> None:
    """The access log line and the request metrics."""
    request = bottle.request
    elapsed = time.perf_counter() - started
    status = response.status_code
    metrics.observe_request(request.method, route_rule, status, elapsed)
    ctx = request.app.config["posterr.context"]
    metrics.observe_pool(ctx.db.pool)
    fields = {"request_id": request_id(), "method": request.method, "route": route_rule, "path": request.path,
              "status": status, "duration_ms": round(elapsed * 1000, 2), "client": client_address()}
    user_id = request.environ.get("posterr.user_id") or request.environ.get("route.url_args", {}).get("user_id")
    if user_id:
        fields["user_id"] = user_id
    access_log.info("request", extra=fields)


def preflight(**_path_args: str) -> bottle.HTTPResponse:
    return bottle.HTTPResponse(status=204, headers={
        "Access-Control-Allow-Methods": ALLOWED_METHODS,
        "Access-Control-Allow-Headers": ALLOWED_REQUEST_HEADERS,
        "Access-Control-Max-Age": "600",
    })


class EdgePlugin:
    """Wraps every route: the rate limit, domain errors and bugs as problem+json, the headers every
    response carries, the access log line and the metrics."""

    name = "posterr_edge"
    api = 2

    def __init__(self, watchdog: Watchdog):
        self.watchdog = watchdog

    def apply(self, callback: Callable, route: bottle.Route) -> Callable:
        rule = route.rule
        watchdog = self.watchdog

        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            ctx = bottle.request.app.config["posterr.context"]
            rid = request_id()
            watchdog.begin(rid, rule)
            in_request = logs.REQUEST_ID.set(rid)
            as_client = replicas.CLIENT.set(client_address()) if ctx.db.replicas else None
            try:
                refusal = _rate_limit(ctx, rule)
                if refusal:
                    raise refusal
                result = callback(*args, **kwargs)
            except ApiError as error:
                result = _problem_for(error)
            except bottle.HTTPError as error:
                result = _bottle_error_response(error)
            except bottle.HTTPResponse as response:
                result = response
            except Exception:
                log.exception("unhandled_error", extra={"event": "unhandled_error", "request_id": request_id(),
                                                        "method": bottle.request.method, "path": bottle.request.path})
                result = bottle.HTTPResponse(problem(500, "an unexpected error occurred; it has been logged"),
                                             500, content_type="application/problem+json")
            finally:
                watchdog.end()
                logs.REQUEST_ID.reset(in_request)
                if as_client:
                    replicas.CLIENT.reset(as_client)
            finish(result)
            _record(result, rule, started)
            return result
        return wrapper


def _problem_for(error: ApiError) -> bottle.HTTPResponse:
    if isinstance(error, TooManyRequests):
        limit = "daily_posts" if isinstance(error, DailyLimitReached) else "client_rate"
        metrics.REFUSALS.labels(limit).inc()
        logs.event(log, "daily_limit_refused" if limit == "daily_posts" else "rate_limited",
                   client=client_address(), user_id=bottle.request.environ.get("posterr.user_id"),
                   retry_after=error.retry_after)
    elif isinstance(error, ServiceUnavailable):
        logs.event(log, "service_unavailable", logging.WARNING, detail=error.detail, request_id=request_id())
    return problem_response(error)


def _bottle_error_response(error: bottle.HTTPError) -> bottle.HTTPResponse:
    detail = {404: f"no route matches {bottle.request.path}",
              405: f"{bottle.request.method} is not allowed on {bottle.request.path}"}.get(
        error.status_code, "an unexpected error occurred" if error.status_code >= 500 else str(error.body))
    if error.status_code >= 500:
        log.error("unhandled_error", extra={"event": "unhandled_error", "request_id": request_id(),
                                            "traceback": error.traceback or str(error.body)})
    headers = {name: value for name, value in error.headerlist if name.lower() == "allow"}
    return bottle.HTTPResponse(problem(error.status_code, detail), error.status_code, headers,
                               content_type="application/problem+json")


def install_error_handlers(app: bottle.Bottle) -> None:
    """What Bottle itself refuses (no route, wrong method, its own failures), as problem+json with
    the usual headers, counted against the client's rate limit like any /api request."""
    def handle(error: bottle.HTTPError) -> bytes:
        started = time.perf_counter()
        response = bottle.response
        try:
            ctx = bottle.request.app.config["posterr.context"]
            refusal = _rate_limit(ctx, "/api/(unmatched)") if bottle.request.path.startswith("/api") else None
            rendered = _problem_for(refusal) if refusal else _bottle_error_response(error)
            response.status = rendered.status_code
            for name, value in rendered.headerlist:
                response.set_header(name, value)
            finish(response)
            _record(response, "(unmatched)", started)
            return rendered.body
        except Exception:  # never Bottle's HTML page: the last resort is a bare problem
            log.exception("unhandled_error", extra={"event": "unhandled_error", "path": bottle.request.path})
            response.status = 500
            response.content_type = "application/problem+json"
            return problem(500, "an unexpected error occurred; it has been logged")

    for status in (400, 404, 405, 413, 500):
        app.error_handler[status] = handle
