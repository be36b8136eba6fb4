"""Redis: the client, a circuit breaker around it, and the one place that builds key names.

PostgreSQL is the source of truth. Every Redis call goes through `Redis.run`, which answers None
when Redis is unreachable or slow, and then skips Redis for a short while instead of waiting on a
dead server at every request.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import date
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from posterr import logs, metrics
from posterr.nearcache import NearCache

log = logging.getLogger("posterr.cache")

PREFIX = "posterr"


def daily_quota_key(user_id: int, day: date) -> str:
    return f"{PREFIX}:quota:{user_id}:{day.isoformat()}"


def rate_limit_key(client: str) -> str:
    return f"{PREFIX}:rl:{client}"


class Redis:
    def __init__(self, url: str, *, timeout: float, retry_after: float):
        self.client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry_on_timeout=False,
            retry=Retry(NoBackoff(), 1), redis_connect_func=self._on_connect,
        )
        self.retry_after = retry_after
        self._down_until = 0.0
        self._lock = threading.Lock()
        # The server's run_id, learnt on every (re)connect. Cache keys carry it, so entries written
        # before a Redis restart (and reloaded from its append-only file) are never read again.
        self.epoch: str | None = None
        self.on_reconnect: list[Callable[[Any], None]] = []

    def _on_connect(self, connection) -> None:
        connection.on_connect()
        connection.send_command("INFO", "server")
        info = connection.read_response()
        info = info.decode() if isinstance(info, bytes) else info
        self.epoch = next(line.split(":", 1)[1].strip()[:12] for line in info.splitlines()
                          if line.startswith("run_id:"))
        for hook in self.on_reconnect:
            hook(connection)

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def run(self, operation: Callable[[redis.Redis], Any]) -> Any | None:
        """operation(client), or None when Redis is down (the breaker stays open `retry_after` s)."""
        if not self.available:
            return None
        return self.run_now(operation)

    def ping(self) -> bool:
        """A real round trip even while the breaker is open: readiness must tell the truth."""
        return bool(self.run_now(lambda client: client.ping()))

    def run_now(self, operation: Callable[[redis.Redis], Any]) -> Any | None:
        """operation(client) even while the breaker is open; a success closes it."""
        try:
            result = operation(self.client)
            self._down_until = 0.0
            return result
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as error:
            with self._lock:
                if self.available:
                    logs.event(log, "redis_degraded", logging.WARNING, error=str(error), skip_seconds=self.retry_after)
                self._down_until = time.monotonic() + self.retry_after
            return None

    def close(self) -> None:
        self.client.close()


# --- the document cache -------------------------------------------------------------------------
#
# Ready-to-send JSON bytes in Redis hashes. Each hash carries a generation token (field `~gen`)
# made by the first reader that missed; a reader stores its result only if the token is still
# the one it saw, so a write that deletes the hash meanwhile (invalidation) cannot be undone by a
# slow reader putting an older page back. A write deletes the hashes it affects before answering.

# Document keys get the Redis epoch appended by DocumentCache (see Redis.epoch). The part in
# braces is the Cluster hash tag: one post's or user's hash lives in one slot, different ones spread.

FEEDS_KEY = f"{PREFIX}:{{feeds}}"  # every cached first page of the global and author feeds


def feed_field(order: str, limit: int, author_id: int | None) -> str:
    return f"author:{author_id}:{order}:{limit}" if author_id else f"all:{order}:{limit}"


def post_key(post_id: int) -> str:
    return f"{PREFIX}:post:{{{post_id}}}"


def user_key(user_id: int) -> str:
    return f"{PREFIX}:user:{{{user_id}}}"


KEY_PATTERNS = {  # pattern → what it holds (`python -m posterr cache stats` counts these)
    f"{PREFIX}:quota:*": "daily post counters",
    f"{PREFIX}:rl:*": "per-client rate limit state",
    f"{FEEDS_KEY}:*": "first pages of the global and author feeds",
    f"{PREFIX}:post:*": "post objects",
    f"{PREFIX}:user:*": "user profiles (without viewer)",
}

_READ = """
local hit = redis.call('HGET', KEYS[1], ARGV[1])
if hit then return {1, hit} end
if redis.call('HSETNX', KEYS[1], '~gen', ARGV[2]) == 1 then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
return {0, redis.call('HGET', KEYS[1], '~gen')}
"""
_STORE = """
if redis.call('HGET', KEYS[1], '~gen') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""


class DocumentCache:
    def __init__(self, redis_: Redis):
        self.redis = redis_
        kwargs = redis_.client.connection_pool.connection_kwargs
        self.near = NearCache(kwargs, [FEEDS_KEY, f"{PREFIX}:post:", f"{PREFIX}:user:"],
                              timeout=kwargs.get("socket_connect_timeout") or 1.0,
                              retry_after=redis_.retry_after)
        self._read = redis_.client.register_script(_READ)
        self._store = redis_.client.register_script(_STORE)
        self._flights: dict[tuple[str, str, bytes], _Flight] = {}
        self._flights_lock = threading.Lock()
        self._pending: set[str] = set()  # invalidations Redis missed; nothing is read until they land
        self._pending_lock = threading.Lock()
        redis_.on_reconnect.append(self._flush_on_connect)

    def fetch(self, name: str, field: str, ttl: int, compute: Callable[[], bytes]) -> bytes:
        """The cached bytes of `field` in hash `name`, or compute() stored for the next reader.
        Concurrent misses of one generation in this process share one compute() (no stampede)."""
        if self._pending and self.redis.run(self._flush_pending) is None:
            return compute()
        if self.redis.epoch is None:
            self.redis.run(lambda client: client.ping())  # connect, to learn the epoch
        token = os.urandom(8).hex()
        epoch = self.redis.epoch
        key = f"{name}:{epoch}"
        copy, generation = self.near.lookup(key, field)
        if copy is not None:
            metrics.CACHE.labels("near_hit").inc()
            return copy
        found = self.redis.run(lambda _: self._read(keys=[key], args=[field, token, ttl]))
        if found is None or self.redis.epoch != epoch:
            return compute()  # Redis down, or it reconnected meanwhile and `key` may be pre-restart
        hit, value = found
        if hit:
            metrics.CACHE.labels("hit").inc()
            self.near.keep(key, field, value, generation)
            return value
        metrics.CACHE.labels("miss").inc()
        flight_key = (key, field, value)
        with self._flights_lock:
            flight = self._flights.get(flight_key)
            leader = flight is None
            if leader:
                flight = self._flights[flight_key] = _Flight()
        if not leader:
            return flight.wait(compute)
        body = None
        try:
            body = compute()
            # Stored before the flight ends, so a reader arriving now finds either one or the other.
            self.redis.run(lambda _: self._store(keys=[key], args=[field, value, body]))
            return body
        finally:
            flight.finish(body)
            with self._flights_lock:
                self._flights.pop(flight_key, None)

    def invalidate(self, *names: str) -> None:
        """Delete the hashes that a write changed, before the write is answered. If Redis cannot be
        reached they stay pending: this process reads nothing from the cache until the deletes have
        landed (at the latest on its next connection to Redis, before anything else is sent)."""
        epoch = self.redis.epoch
        if epoch is None:
            return  # never connected: nothing can have been cached under a key we would use
        keys = [f"{name}:{epoch}" for name in names]
        if self.redis.run(lambda client: _delete(client, keys)) is None:
            with self._pending_lock:
                self._pending.update(keys)
            logs.event(log, "cache_invalidation_pending", logging.WARNING, keys=keys)

    def _flush_pending(self, client: redis.Redis) -> bool:
        with self._pending_lock:
            keys = list(self._pending)
            _delete(client, keys)
            self._pending.difference_update(keys)
        return True

    def _flush_on_connect(self, connection) -> None:
        with self._pending_lock:
            for key in self._pending:
                connection.send_command("DEL", key)
                connection.read_response()
            self._pending.clear()


def _delete(client: redis.Redis, keys: list[str]) -> list:
    """DEL each key in one round trip, without a multi-key command (keys may live in other slots)."""
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.delete(key)
    return pipe.execute()


class _Flight:
    """One compute() in progress; followers wait for its result (or compute themselves if it failed)."""

    def __init__(self):
        self._done = threading.Event()
        self._body: bytes | None = None
        self.followers = 0

    def finish(self, body: bytes | None) -> None:
        self._body = body
        self._done.set()

    def wait(self, compute: Callable[[], bytes]) -> bytes:
        self.followers += 1
        self._done.wait(timeout=10)
        return self._body if self._body is not None else compute()
