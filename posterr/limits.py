"""The daily posting limit: Redis counters in front, PostgreSQL's `post_quota` row behind.

Redis answers the common case in one round trip and refuses over-limit requests before they reach
PostgreSQL. It is not trusted for correctness: the insert statement itself takes the quota in
`post_quota` (see db/queries/posts.sql, insert_post), so the limit is exact when Redis was flushed,
restarted or is down. The README explains the algorithm.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

from posterr.cache import Redis, daily_quota_key

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
