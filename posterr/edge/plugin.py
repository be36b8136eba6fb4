"""The edge around every route (`EdgePlugin`) and around what Bottle refuses by itself
(`install_error_handlers`): the rate limit, errors as problem+json, the headers every answer
carries, the access log line and the request metrics. Bottle runs neither hooks nor plugins on its
own refusals, and drops headers set in hooks on a 500, so both paths call `finish` themselves.
A request slower than POSTERR_SLOW_MS also logs a slow_request line with its named queries' times.
A request whose write no synchronous standby confirmed is answered 503 once the route has done its
work (posterr/db.py, UNCONFIRMED_COMMITS)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import bottle

from posterr import deferred_check, logs, metrics
from posterr.edge import current_context, rate_limit
from posterr.edge.auth import FOUND_AFTER_BODY, RequestCaller
from posterr.edge.clients import client_address
from posterr.edge.cors import add_cors_headers
from posterr.edge.problems import bug, from_bottle, render_problem
from posterr.edge.request_id import request_id
from posterr.edge.request_scope import request_scope
from posterr.errors import ApiError, UnconfirmedCommit
from posterr.watchdog import Watchdog

log = logging.getLogger("posterr.http")


class EdgePlugin:
    name = "posterr_edge"
    api = 2

    def __init__(self, watchdog: Watchdog):
        self.watchdog = watchdog

    def apply(self, callback: Callable, route: bottle.Route) -> Callable:
        rule = route.rule
        watchdog = self.watchdog

        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            ctx = current_context()
            with request_scope(ctx, rule, watchdog) as scope:
                caller = bottle.request.environ["posterr.caller"] = RequestCaller(ctx, route, scope)
                try:
                    try:
                        if bottle.request.method != FOUND_AFTER_BODY:
                            caller()
                        result = callback(*args, **kwargs)
                    except Exception:
                        caller.count_if_not_yet()
                        deferred_check.settle()  # a refusal wins over the route's own answer, as if checked first
                        raise
                    caller.count_if_not_yet()
                    deferred_check.settle()  # the route called no server, so nothing settled it
                    if scope.unconfirmed:
                        raise UnconfirmedCommit()
                except ApiError as error:
                    result = render_problem(error)
                except bottle.HTTPError as error:
                    result = render_problem(from_bottle(error))
                except bottle.HTTPResponse as response:
                    result = response
                except Exception:  # noqa: BLE001 -- bug() logs it, with its traceback
                    result = render_problem(bug())
            finish(result)
            _record(result, rule, started, scope.query_times)
            return result
        return wrapper


def install_error_handlers(app: bottle.Bottle) -> None:
    """What Bottle itself refuses (no route, wrong method, its own failures), as problem+json with
    the usual headers, counted against the client's rate limit like any /api request."""
    def handle(error: bottle.HTTPError) -> bytes:
        started = time.perf_counter()
        response = bottle.response
        try:
            ctx = current_context()
            refused = rate_limit.refusal(ctx, "/api/(unmatched)") if bottle.request.path.startswith("/api") else None
            rendered = render_problem(refused or from_bottle(error))
            _copy(rendered, response)
            finish(response)
            _record(response, "(unmatched)", started)
        except Exception:  # noqa: BLE001 -- never Bottle's HTML page; bug() logs it
            _copy(render_problem(bug()), response)
        return response.body

    for status in (400, 404, 405, 413, 500):
        app.error_handler[status] = handle


def finish(response: bottle.BaseResponse) -> None:
    """Headers every answer carries, success or error."""
    response.set_header("X-Request-ID", request_id())
    response.set_header("X-Content-Type-Options", "nosniff")
    add_cors_headers(response)
    rate_limit.add_rate_headers(response)


def _copy(rendered: bottle.HTTPResponse, response: bottle.BaseResponse) -> None:
    response.status = rendered.status_code
    for name, value in rendered.headerlist:
        response.set_header(name, value)
    response.body = rendered.body


def _record(response: bottle.BaseResponse, route_rule: str, started: float,
            query_times: Sequence[tuple[str, float]] = ()) -> None:
    """The access log line, the request metrics, and the slow_request line of a slow request."""
    request = bottle.request
    ctx = current_context()
    elapsed = time.perf_counter() - started
    status = response.status_code
    metrics.observe_request(request.method, route_rule, status, elapsed)
    metrics.observe_pool(ctx.db.pool_stats)
    fields = {"request_id": request_id(), "method": request.method, "route": route_rule, "path": request.path,
              "status": status, "duration_ms": milliseconds(elapsed), "client": client_address()}
    user_id = request.environ.get("posterr.user_id") or request.environ.get("route.url_args", {}).get("user_id")
    if user_id:
        fields["user_id"] = user_id
    logs.access(fields)
    if is_slow(elapsed, ctx.settings.slow_request_ms):
        logs.event(log, "slow_request", logging.WARNING,
                   **{name: fields[name] for name in ("request_id", "route", "method", "status", "duration_ms")},
                   **database_time(query_times))


def is_slow(elapsed: float, slow_request_ms: int | None) -> bool:
    """Whether a request that took `elapsed` seconds is over the threshold (None: there is none)."""
    return slow_request_ms is not None and elapsed * 1000 > slow_request_ms


def database_time(query_times: Sequence[tuple[str, float]]) -> dict:
    """Each named query run, in order, with its time, and their sum: what of a slow request was the
    database's (the rest went to Redis, Python, or waiting for a pooled connection)."""
    return {"queries": [{"name": name, "ms": milliseconds(seconds)} for name, seconds in query_times],
            "db_ms": milliseconds(sum(seconds for _, seconds in query_times))}


def milliseconds(seconds: float) -> float:
    return round(seconds * 1000, 2)
