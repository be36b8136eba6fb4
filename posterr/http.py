"""The HTTP edge: JSON bodies in, JSON and problem+json out, and the headers every response carries.

Routes raise posterr.errors; `ProblemPlugin` turns them (and any bug) into problem+json, and the
error handlers do the same for what Bottle itself refuses (unknown route, wrong method). Bottle
runs neither its hooks nor plugins on those, and drops headers set in hooks on a 500, so both
paths call `finish` themselves.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

import bottle
import orjson

from posterr import validation
from posterr.context import Context
from posterr.errors import ApiError, BadRequest, NotFound, PayloadTooLarge
from posterr.services import idempotency
from posterr.services.pagination import Page

log = logging.getLogger("posterr.http")

MAX_BODY = 64 * 1024
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
        environ["posterr.request_id"] = given if _SANE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    return environ["posterr.request_id"]


def json_body() -> dict[str, Any]:
    """The request body as a JSON object: 413 past 64 KiB, 400 when it is not a JSON object."""
    request = bottle.request
    if (request.content_length or 0) > MAX_BODY:
        raise PayloadTooLarge(f"the request body must be at most {MAX_BODY} bytes")
    raw = request.body.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise PayloadTooLarge(f"the request body must be at most {MAX_BODY} bytes")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise BadRequest(f"the request body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def path_id(text: str, what: str) -> int:
    """An id from the path; one that cannot name a resource is simply not found."""
    value = validation.path_id(text)
    if value is None:
        raise NotFound(f"there is no {what} {text}")
    return value


def query_params(*names: str) -> dict[str, str | None]:
    """The named query parameters as text; empty or undecodable ones count as absent."""
    query = bottle.request.query
    return {name: query.getunicode(name) or None for name in names}


# --- responses --------------------------------------------------------------------------------

def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> bottle.HTTPResponse:
    """`data` encoded, or sent as it is when it is already JSON bytes (from the cache)."""
    body = data if isinstance(data, bytes) else orjson.dumps(data)
    return bottle.HTTPResponse(body, status, headers, content_type="application/json")


def created_once(ctx: Context, body: dict, location_prefix: str, create: Callable[[], dict]) -> bottle.HTTPResponse:
    """201 for create(), honouring an Idempotency-Key header (scoped to this route)."""
    request = bottle.request
    result = idempotency.create_once(
        ctx, scope=f"{request.method} {request.route.rule}", key_header=request.get_header("Idempotency-Key"),
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


def preflight(**_path_args: str) -> bottle.HTTPResponse:
    return bottle.HTTPResponse(status=204, headers={
        "Access-Control-Allow-Methods": ALLOWED_METHODS,
        "Access-Control-Allow-Headers": ALLOWED_REQUEST_HEADERS,
        "Access-Control-Max-Age": "600",
    })


class ProblemPlugin:
    """Wraps every route: domain errors and bugs become problem+json, and `finish` runs on all."""

    name = "posterr_problems"
    api = 2

    def apply(self, callback: Callable, route: bottle.Route) -> Callable:
        def wrapper(*args, **kwargs):
            try:
                result = callback(*args, **kwargs)
            except ApiError as error:
                result = problem_response(error)
            except bottle.HTTPError as error:
                result = _bottle_error_response(error)
            except bottle.HTTPResponse as response:
                result = response
            except Exception:
                log.exception("unhandled error in %s %s (request %s)", bottle.request.method,
                              bottle.request.path, request_id())
                result = bottle.HTTPResponse(problem(500, "an unexpected error occurred; it has been logged"),
                                             500, content_type="application/problem+json")
            finish(result)
            return result
        return wrapper


def _bottle_error_response(error: bottle.HTTPError) -> bottle.HTTPResponse:
    detail = {404: f"no route matches {bottle.request.path}",
              405: f"{bottle.request.method} is not allowed on {bottle.request.path}"}.get(
        error.status_code, "an unexpected error occurred" if error.status_code >= 500 else str(error.body))
    if error.status_code >= 500:
        log.error("error in %s %s (request %s): %s", bottle.request.method, bottle.request.path, request_id(),
                  error.traceback or error.body)
    headers = {name: value for name, value in error.headerlist if name.lower() == "allow"}
    return bottle.HTTPResponse(problem(error.status_code, detail), error.status_code, headers,
                               content_type="application/problem+json")


def install_error_handlers(app: bottle.Bottle) -> None:
    """404, 405 and 500 from Bottle itself, as problem+json with the usual headers."""
    def handle(error: bottle.HTTPError) -> bytes:
        rendered = _bottle_error_response(error)
        response = bottle.response
        response.content_type = "application/problem+json"
        finish(response)
        return rendered.body

    for status in (400, 404, 405, 413, 500):
        app.error_handler[status] = handle
