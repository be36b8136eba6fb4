"""The state one request sets for the code below it (the request id in the logs, the client for
read-your-writes, the named queries' times, the unconfirmed commits, and, once the caller is known,
the deferred rate-limit check), set when the request starts and reset when it ends, in one place."""

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
    unconfirmed: list[str] = field(default_factory=list)  # servers of commits no standby may have confirmed
    _set: list[tuple[ContextVar[Any], Token]] = field(default_factory=list)  # reset when the request ends

    def count_rate(self, ctx: Context, route_rule: str, client: str) -> None:
        """Counts the request against `client` (an address, or a token's user) at its first call to a
        server (posterr/edge/rate_limit.py); once per request."""
        rate_checked = rate_limit.defer(ctx, route_rule, client)
        if rate_checked:
            self._set.append((deferred_check.PENDING, rate_checked))


@contextmanager
def request_scope(ctx: Context, route_rule: str, watchdog: Watchdog) -> Iterator[RequestScope]:
    scope = RequestScope()
    rid = request_id()
    tokens = scope._set
    watchdog.begin(rid, route_rule)
    try:  # whatever was set is reset, even when setting the rest failed
        tokens.append((logs.REQUEST_ID, logs.REQUEST_ID.set(rid)))
        if ctx.db.replicas:
            tokens.append((replicas.CLIENT, replicas.CLIENT.set(client_address())))
        if ctx.settings.slow_request_ms:
            tokens.append((db.QUERY_TIMES, db.QUERY_TIMES.set(scope.query_times)))
        tokens.append((db.UNCONFIRMED_COMMITS, db.UNCONFIRMED_COMMITS.set(scope.unconfirmed)))
        yield scope
    finally:
        watchdog.end()
        for variable, token in reversed(tokens):
            variable.reset(token)
