"""Limits. The daily posting limit: Redis counters in front, PostgreSQL's `post_quota` row behind.

Redis answers the common case in one round trip and refuses over-limit requests before they reach
PostgreSQL. It is not trusted for correctness: the insert statement itself takes the quota in
`post_quota` (see db/queries/posts.sql, insert_post), so the limit is exact when Redis was flushed,
restarted or is down. The README explains the algorithm. The per-client rate limit (below)
lives in Redis alone and fails open when Redis is down.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from posterr.cache import Redis, daily_quota_key, rate_limit_key

# KEYS[1] = counter; ARGV = limit, ttl seconds, seed ('' when the caller has not read PostgreSQL).
# Returns the new count, 0 when the limit is reached, -1 when the key is missing and needs a seed.
_RESERVE = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  if ARGV[3] == '' then return -1 end
  redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[2])
end
local used = redis.call('INCR', KEYS[1])
if used > tonumber(ARGV[1]) then
  redis.call('DECR', KEYS[1])
  return 0
end
return used
"""
# Gives a reservation back, unless the key vanished meanwhile (a DECR would recreate it at -1).
_RELEASE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('DECR', KEYS[1]) end
return 0
"""


def utc_today(now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(UTC).date()


def seconds_to_utc_midnight(now: datetime | None = None) -> int:
    now = (now or datetime.now(UTC)).astimezone(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), time.min, tzinfo=UTC)
    return max(1, int((midnight - now).total_seconds() + 0.999999))


class DailyQuota:
    def __init__(self, redis: Redis, limit: int):
        self.redis = redis
        self.limit = limit
        self._reserve = redis.client.register_script(_RESERVE)
        self._release = redis.client.register_script(_RELEASE)

    def reserve(self, user_id: int, day: date, used_in_postgres: Callable[[], int]) -> bool | None:
        """Take one unit in Redis: True if taken, False if the limit is reached, None if Redis is down.

        A missing key (new day, flushed, Redis restarted) is seeded from PostgreSQL's count.
        """
        key = daily_quota_key(user_id, day)
        ttl = seconds_to_utc_midnight() + 3600
        result = self.redis.run(lambda _: self._reserve(keys=[key], args=[self.limit, ttl, ""]))
        if result == -1:
            seed = used_in_postgres()
            result = self.redis.run(lambda _: self._reserve(keys=[key], args=[self.limit, ttl, seed]))
        if result is None:
            return None
        return result > 0

    def release(self, user_id: int, day: date) -> None:
        key = daily_quota_key(user_id, day)
        self.redis.run(lambda _: self._release(keys=[key]))


# --- the per-client rate limit (GCRA) -----------------------------------------------------------
#
# One key per client holds its "theoretical arrival time" (TAT) in milliseconds of Redis's own
# clock (so every app host agrees). A request is allowed when TAT - now <= period - interval,
# i.e. at most `limit` requests in any `period`, refilling one every `interval` (no edge bursts).
# KEYS[1] = client key; ARGV = interval ms, period ms.
# Returns {allowed, remaining, seconds to full reset, seconds to retry}.
_GCRA = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local interval, period = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or now), now)
local new_tat = tat + interval
if new_tat - now > period then
  return {0, 0, math.ceil((tat - now) / 1000), math.ceil((new_tat - now - period) / 1000)}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now))
return {1, math.floor((period - (new_tat - now)) / interval), math.ceil((new_tat - now) / 1000), 0}
"""


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    period: int
    remaining: int
    reset: int  # seconds until the client's full allowance is back
    retry_after: int

    def headers(self) -> dict[str, str]:
        """IETF httpapi RateLimit headers (draft 9): the policy, and where this client stands."""
        return {"RateLimit-Policy": f'"default";q={self.limit};w={self.period}',
                "RateLimit": f'"default";r={self.remaining};t={self.reset}'}


class ClientRateLimit:
    def __init__(self, redis: Redis, limit: int, period: int):
        self.redis = redis
        self.limit = limit
        self.period = period
        self._check = redis.client.register_script(_GCRA)
        self._interval_ms = period * 1000 / limit

    def check(self, client: str) -> RateDecision | None:
        """The decision for one more request from `client`; None when Redis is down (fail open)."""
        key = rate_limit_key(client)
        result = self.redis.run(lambda _: self._check(keys=[key], args=[self._interval_ms, self.period * 1000]))
        if result is None:
            return None
        allowed, remaining, reset, retry_after = (int(value) for value in result)
        return RateDecision(bool(allowed), self.limit, self.period, max(remaining, 0), max(reset, 0),
                            max(retry_after, 1) if not allowed else 0)
