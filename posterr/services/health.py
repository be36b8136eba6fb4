"""Readiness: PostgreSQL is required, Redis only makes things faster."""

from __future__ import annotations

from posterr.context import Context
from posterr.errors import ServiceUnavailable


def readiness(ctx: Context) -> dict[str, str]:
    redis = "ok" if ctx.redis.ping() else "down"
    try:
        ctx.db("ping")
    except ServiceUnavailable:
        raise ServiceUnavailable(f"PostgreSQL is unreachable (redis: {redis})", retry_after=5) from None
    return {"postgres": "ok", "redis": redis}
