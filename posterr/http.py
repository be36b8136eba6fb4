"""What routes use to read a request and write an answer: the JSON body (bounded), ids in paths,
query parameters, JSON and list responses, and a creating request's idempotency. Everything around
the route (request ids, CORS, the rate limit, errors as problem+json, logs) is posterr/edge."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import bottle
import orjson
from gunicorn.http.errors import ParseException

from posterr import credentials, validation
from posterr.client_deadlines import BodyTimeout
from posterr.context import Context
from posterr.errors import (
    BadRequest,
    NotFound,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
    ValidationFailed,
)
from posterr.services.acting import Actor, Caller, acting_user
from posterr.services.idempotency import Attempt, Created
from posterr.services.pagination import Page

MAX_BODY = 64 * 1024
# Before a 413 the rest of the body is read and dropped (this much at most, and only until the body's
# deadline, posterr/client_deadlines.py): a server that stops reading and closes while the client still
# sends makes the client's TCP stack discard the answer (a reset), so the client would see a dropped
# connection instead of the problem.
DRAIN_LIMIT = 8 * 1024 * 1024
# The one media type a request body may have. Any other is 415, which makes it a request a browser
# must ask about first (a CORS preflight): text/plain, forms and multipart are sent without asking.
JSON = "application/json"


# --- requests ---------------------------------------------------------------------------------

def json_body() -> dict[str, Any]:
    """The request body as a JSON object: 413 past 64 KiB, 408 when it does not arrive within
    POSTERR_BODY_TIMEOUT, 415 when it is not sent as application/json (whatever it holds: the type
    is checked before the body is parsed), 400 when it is not a JSON object."""
    request = bottle.request
    body_input = request.environ["wsgi.input"]
    if (request.content_length or 0) > MAX_BODY:
        raise _too_large(body_input)
    # Not bottle's request.body, which reads a chunked body whole (to a temporary file) first. The
    # server (gunicorn) has already removed the chunked framing and stops at Content-Length.
    try:
        raw = body_input.read(MAX_BODY + 1)
    except BodyTimeout as error:
        raise RequestTimeout(str(error)) from None
    except (OSError, ParseException) as error:  # the client went away, or sent a malformed chunk
        raise BadRequest(f"the request body could not be read: {error}") from None
    if len(raw) > MAX_BODY:
        raise _too_large(body_input)
    if not is_json_media_type(request.environ.get("CONTENT_TYPE")):
        raise UnsupportedMediaType(JSON)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise BadRequest(f"the request body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    credentials.refuse_token_outside_header(body.items(), "body")
    caller()  # checked once the body is known to be well formed (posterr/edge/auth.py)
    if isinstance(body.get("user_id"), int) and "posterr.user_id" not in request.environ:
        request.environ["posterr.user_id"] = body["user_id"]  # for the access log
    return body


def is_json_media_type(content_type: str | None) -> bool:
    """Whether a Content-Type says the body is JSON: application/json in any case, with any
    parameters (RFC 8259 defines none; a body not in UTF-8 is then refused as malformed). Not the
    structured `+json` types (merge-patch, problem, JSON-LD): each says more than "a JSON object",
    and the API implements none of them."""
    return (content_type or "").partition(";")[0].strip().lower() == JSON


def _too_large(body_input) -> PayloadTooLarge:
    """The 413 to raise, once the rest of the body has been drained (see DRAIN_LIMIT)."""
    drained = 0
    try:
        while drained < DRAIN_LIMIT and (chunk := body_input.read(64 * 1024)):
            drained += len(chunk)
    except (OSError, ParseException):
        pass  # the body's deadline (BodyTimeout), or a malformed chunk: answer anyway
    return PayloadTooLarge(f"the request body must be at most {MAX_BODY} bytes")


def path_id(text: str, what: str) -> int:
    """An id from the path; one that cannot name a resource is simply not found."""
    value = validation.path_id(text)
    if value is None:
        raise NotFound(f"there is no {what} {text}")
    return value


def caller() -> Caller:
    """The holder of the request's token (posterr/edge/auth.py finds it)."""
    return bottle.request.environ["posterr.caller"]()


def actor(ctx: Context, named: Any, field: str = "user_id") -> Actor:
    """Who this write acts for, given the user the request names (401, 403 or 422 otherwise)."""
    return acting_user(caller(), named, legacy=ctx.legacy, field=field)


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


def attempt(body: dict, location_prefix: str, acting: Actor | None = None) -> Attempt:
    """This creating request, for services.idempotency (keys are scoped to the route and the user
    it acts for)."""
    request = bottle.request
    return Attempt(scope=f"{request.method} {request.route.rule}", user_id=acting.user_id if acting else 0,
                   token_digest=acting.token_digest if acting else None, key_header=request.environ.get("HTTP_IDEMPOTENCY_KEY"),
                   path=request.path, body=body, location_prefix=location_prefix)


def created(result: Created) -> bottle.HTTPResponse:
    """201 with the created item and its Location (the first answer again, for a replayed key)."""
    headers = {"Location": result.location}
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_response(result.body, 201, headers)


def no_content() -> bottle.HTTPResponse:
    return bottle.HTTPResponse(status=204)


def page_response(page: Page, params: dict[str, str | None]) -> bottle.HTTPResponse:
    """A list page; when more items exist, a Link to the next page repeating every filter; a search
    among the newest posts only says so in Search-Scope."""
    headers = {}
    if page.next_cursor:
        query = {name: value for name, value in params.items() if value and name != "cursor"}
        query["cursor"] = page.next_cursor
        headers["Link"] = f'<{bottle.request.path}?{urlencode(query)}>; rel="next"'
    if page.search_scope:
        headers["Search-Scope"] = page.search_scope
    return json_response(page.body, headers=headers)
