"""Redis: the client, a circuit breaker around it, and the one place that builds key names.

PostgreSQL is the source of truth. Every Redis call goes through `Redis.run`, which answers None
when Redis is unreachable or slow, and then skips Redis for a short while instead of waiting on a
dead server at every request.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import date
from typing import Any, Callable

import redis

log = logging.getLogger("posterr.cache")

PREFIX = "posterr"


def daily_quota_key(user_id: int, day: date) -> str:
    return f"{PREFIX}:quota:{user_id}:{day.isoformat()}"


class Redis:
    def __init__(self, url: str, *, timeout: float, retry_after: float):
        self.client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry_on_timeout=False,
        )
        self._retry_after = retry_after
        self._down_until = 0.0
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def run(self, operation: Callable[[redis.Redis], Any]) -> Any | None:
        """operation(client), or None when Redis is down (the breaker stays open `retry_after` s)."""
        if not self.available:
            return None
        return self._attempt(operation)

    def ping(self) -> bool:
        """A real round trip even while the breaker is open (readiness must tell the truth); a
        success closes the breaker at once."""
        if self._attempt(lambda client: client.ping()):
            self._down_until = 0.0
            return True
        return False

    def _attempt(self, operation: Callable[[redis.Redis], Any]) -> Any | None:
        try:
            return operation(self.client)
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as error:
            with self._lock:
                if self.available:
                    log.warning("redis_degraded: %s; skipping Redis for %.1fs", error, self._retry_after)
                self._down_until = time.monotonic() + self._retry_after
            return None

    def close(self) -> None:
        self.client.close()
