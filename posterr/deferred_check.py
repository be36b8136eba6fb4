"""A check the HTTP edge defers to the request's first call to a server: the per-client rate limit's.

Deferred, a read served from the document cache carries it in its own Redis round trip
(DocumentCache.fetch sends both together) instead of paying one round trip more. Whatever else the
request does, the check is settled before it does it: before any other Redis command
(redis_client.Redis.run), before any PostgreSQL statement (db.Session), and at the latest when the route
returns (the edge). So a refused request still costs no work beyond that one round trip.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DeferredCheck:
    queue: Callable[[Any], None]  # adds the check's command to a batch (a cluster_delivery.Batch)
    deliver: Callable[[Any], None]  # takes the command's reply (None: Redis failed); raises a refusal
    run_alone: Callable[[], Any]  # the command on its own: its reply, or None when Redis failed


PENDING: ContextVar[DeferredCheck | None] = ContextVar("posterr_deferred_check", default=None)


def take() -> DeferredCheck | None:
    """The pending check, for a caller that sends it along with its own command; None if none is."""
    check = PENDING.get()
    if check is not None:
        PENDING.set(None)
    return check


def settle() -> None:
    """Runs the pending check on its own (raising its refusal, if any); nothing when none is pending."""
    check = take()
    if check is not None:
        check.deliver(check.run_alone())
