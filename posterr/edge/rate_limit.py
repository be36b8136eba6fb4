"""The per-client rate limit at the edge: which requests count, the refusal, and the RateLimit
headers (the limiter itself, a GCRA on Redis, is posterr.limits.ClientRateLimit)."""

from __future__ import annotations

import bottle

from posterr.context import Context
from posterr.edge.clients import client_address
from posterr.errors import TooManyRequests

# Only /api is limited (so never /healthz, /readyz nor /metrics, as the contract says), and not the
# API's own description either.
UNLIMITED = frozenset({"/api/openapi.json"})


def refusal(ctx: Context, route_rule: str) -> TooManyRequests | None:
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


def add_rate_headers(response: bottle.BaseResponse) -> None:
    decision = bottle.request.environ.get("posterr.rate")
    if decision is not None:
        for name, value in decision.headers().items():
            response.set_header(name, value)
