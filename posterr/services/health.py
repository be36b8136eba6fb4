"""Readiness: PostgreSQL is required, Redis only makes things faster, replicas only take reads."""

from __future__ import annotations

from posterr.context import Context
from posterr.errors import ServiceUnavailable


def readiness(ctx: Context) -> dict:
    redis = "ok" if ctx.redis.ping() else "down"
    try:
        ctx.db("ping")
    except ServiceUnavailable:
        raise ServiceUnavailable(f"PostgreSQL is unreachable (redis: {redis})", retry_after=5) from None
    readiness: dict = {"postgres": "ok", "redis": redis}
    if ctx.db.replicas:  # a replica down or behind only sends its reads to the primary: still ready
        readiness["replicas"] = ctx.db.replicas.readiness()
    return readiness
