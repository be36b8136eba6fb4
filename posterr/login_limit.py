"""Failed logins, limited per username and per client (contract v2.0): at most LIMIT in any WINDOW,
then 429 even for the right password, counted in Redis so that the limit holds across workers and
hosts. Each is a sorted set of failures scored by their time (keys.login_failures_key): a
sliding window, so no burst fits at a window's edge.

Unlike the caches, this fails closed: when Redis cannot say how many failures there were, or cannot
count one more, a login is 503, never unlimited."""

from __future__ import annotations

import math
import random
import time
from typing import Any

from posterr.errors import ServiceUnavailable, TooManyRequests
from posterr.keys import login_failures_key
from posterr.redis_client import Redis

LIMIT = 10
WINDOW_SECONDS = 15 * 60
_UNAVAILABLE = "logins are refused while their failures cannot be counted (Redis is unavailable); retry shortly"


class LoginAttempts:
    def __init__(self, redis: Redis, limit: int = LIMIT, window_seconds: int = WINDOW_SECONDS):
        self.redis = redis
        self.limit = limit
        self.window_ms = window_seconds * 1000

    def check(self, username: str | None, client: str) -> None:
        """Raises 429 when either has failed `limit` times in the window (Retry-After: until its
        oldest failure there leaves it), 503 when Redis cannot say. `username` None: a name no
        account can have, counted against the client only."""
        now_ms = _now_ms()

        def counts(redis) -> list[Any]:
            pipe = redis.pipeline(transaction=False)
            for key in _keys(username, client):
                pipe.zremrangebyscore(key, "-inf", now_ms - self.window_ms)
                pipe.zcard(key)
                pipe.zrange(key, 0, 0, withscores=True)
            return pipe.execute()

        replies = self.redis.run(counts)
        if replies is None:
            raise ServiceUnavailable(_UNAVAILABLE)
        waits = [math.ceil((oldest[0][1] + self.window_ms - now_ms) / 1000)
                 for count, oldest in zip(replies[1::3], replies[2::3], strict=True) if count >= self.limit and oldest]
        if waits:
            raise TooManyRequests(f"too many failed logins: at most {self.limit} in {self.window_ms // 60000} "
                                  "minutes for a username and for a client", retry_after=max(*waits, 1))

    def failed(self, username: str | None, client: str) -> None:
        """Counts one failure against both; 503 when it cannot be counted (an uncounted failure
        would let the next guess through for free)."""
        now_ms = _now_ms()

        def count(redis) -> list[Any]:
            pipe = redis.pipeline(transaction=False)
            for key in _keys(username, client):
                pipe.zadd(key, {f"{now_ms}:{random.getrandbits(32):08x}": now_ms})
                pipe.pexpire(key, self.window_ms)
            return pipe.execute()

        if self.redis.run(count) is None:
            raise ServiceUnavailable(_UNAVAILABLE)


def _keys(username: str | None, client: str) -> list[str]:
    names = [login_failures_key("client", client)]
    if username is not None:
        names.append(login_failures_key("user", username.lower()))
    return names


def _now_ms() -> int:
    """The wall clock: hosts' clocks agree far better than the 15-minute window needs."""
    return int(time.time() * 1000)
