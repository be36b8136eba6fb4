"""The state one request sets for the code below it (the request id in the logs, the client for
read-your-writes, the named queries' times, the deferred rate-limit check, the unconfirmed commits),
set when the request starts and reset when it ends, in one place."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any

from posterr import db, deferred_check, logs, replicas
from posterr.context import Context
from posterr.edge import rate_limit
from posterr.edge.clients import client_address
from posterr.edge.request_id import request_id
from posterr.watchdog import Watchdog


@dataclass
class RequestScope:
    query_times: list[tuple[str, float]] = field(default_factory=list)  # (name, seconds), when timed
    unconfirmed: list[str] = field(default_factory=list)  # commits no synchronous standby confirmed


@contextmanager
def request_scope(ctx: Context, route_rule: str, watchdog: Watchdog) -> Iterator[RequestScope]:
    scope = RequestScope()
    rid = request_id()
    tokens: list[tuple[ContextVar[Any], Token]] = []
    watchdog.begin(rid, route_rule)
    try:  # whatever was set is reset, even when setting the rest failed
        tokens.append((logs.REQUEST_ID, logs.REQUEST_ID.set(rid)))
        if ctx.db.replicas:
            tokens.append((replicas.CLIENT, replicas.CLIENT.set(client_address())))
        if ctx.settings.slow_request_ms:
            tokens.append((db.QUERY_TIMES, db.QUERY_TIMES.set(scope.query_times)))
        rate_checked = rate_limit.defer(ctx, route_rule)
        if rate_checked:
            tokens.append((deferred_check.PENDING, rate_checked))
        tokens.append((db.UNCONFIRMED_COMMITS, db.UNCONFIRMED_COMMITS.set(scope.unconfirmed)))
        yield scope
    finally:
        watchdog.end()
        for variable, token in reversed(tokens):
            variable.reset(token)
