"""The per-client rate limit at the edge: which requests count, the refusal, and the RateLimit
headers (the limiter itself, a GCRA on Redis, is posterr.limits.ClientRateLimit)."""

from __future__ import annotations

from contextvars import Token

import bottle

from posterr import deferred_check
from posterr.context import Context
from posterr.edge.clients import client_address
from posterr.errors import TooManyRequests
from posterr.limits import RateDecision

# Only /api is limited (so never /healthz, /readyz nor /metrics, as the contract says), and not the
# API's own description either.
UNLIMITED = frozenset({"/api/openapi.json"})


def refusal(ctx: Context, route_rule: str) -> TooManyRequests | None:
    """Counts the request against its client now; the refusal to answer with, if over the limit."""
    if not _limited(ctx, route_rule):
        return None
    return _refusal(ctx.rate_limit.check(client_address()))


def defer(ctx: Context, route_rule: str, client: str) -> Token | None:
    """Counts the request against `client` at its first call to a server (posterr/deferred_check.py),
    which raises the refusal if it is over the limit; reset the token when the request ends."""
    if not _limited(ctx, route_rule):
        return None
    limiter = ctx.rate_limit

    def deliver(reply) -> None:
        refused = _refusal(limiter.decision(reply))
        if refused:
            raise refused

    return deferred_check.PENDING.set(deferred_check.DeferredCheck(
        queue=lambda batch: limiter.queue_check(batch, client), deliver=deliver,
        run_alone=lambda: ctx.redis.run(lambda redis: limiter.queue_check(redis, client))))


def _limited(ctx: Context, route_rule: str) -> bool:
    return ctx.rate_limit is not None and bottle.request.method != "OPTIONS" and route_rule.startswith("/api") \
        and route_rule not in UNLIMITED


def _refusal(decision: RateDecision | None) -> TooManyRequests | None:
    """What the decision says to answer: nothing, or a 429; it is kept for the RateLimit headers."""
    bottle.request.environ["posterr.rate"] = decision
    if decision is None or decision.allowed:
        return None
    return TooManyRequests(f"too many requests from this client: the limit is {decision.limit} per "
                           f"{decision.period} seconds", retry_after=decision.retry_after)


def add_rate_headers(response: bottle.BaseResponse) -> None:
    decision = bottle.request.environ.get("posterr.rate")
    if decision is not None:
        for name, value in decision.headers().items():
            response.set_header(name, value)
