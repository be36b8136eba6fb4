"""Limits. The daily posting limit: PostgreSQL's `post_quota` row decides, a Redis counter in front.

The statement that inserts a post takes the quota in `post_quota` (db/queries/posts.sql,
insert_post), so the limit is exact under concurrency and whatever happens to Redis. The Redis
counter only remembers PostgreSQL's committed count for the day, so that a user with nothing left
is refused without a PostgreSQL write. It is set from PostgreSQL and never above it, so it can make
a refusal faster but never wrong. docs/architecture.md explains the algorithm. The per-client rate limit
(below) lives in Redis alone and fails open when Redis is down.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from posterr.keys import daily_quota_key, rate_limit_key
from posterr.redis_client import Change, EpochOf, Redis

# KEYS[1] = counter; ARGV = PostgreSQL's count, ttl seconds. Raises the counter, never lowers it:
# the answers of two creations may arrive in either order.
_RAISE = """
local known = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > known then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) end
return 1
"""


def seconds_to_utc_midnight(now: datetime | None = None) -> int:
    now = (now or datetime.now(UTC)).astimezone(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), time.min, tzinfo=UTC)
    return max(1, int((midnight - now).total_seconds() + 0.999999))


class DailyQuota:
    def __init__(self, redis: Redis, limit: int):
        self.redis = redis
        self.limit = limit
        self._raise = redis.script(_RAISE)

    def used_up(self, user_id: int, day: date) -> bool:
        """Whether the counter says nothing is left today; False when Redis does not know or is down."""
        used = self.redis.run(lambda client: client.get(daily_quota_key(user_id, day)))
        return used is not None and int(used) >= self.limit

    def remember(self, user_id: int, day: date, used: int) -> None:
        """Keep PostgreSQL's committed count of the day (call it after the commit, never before)."""
        key, ttl = daily_quota_key(user_id, day), _counter_ttl()
        self.redis.run(lambda _: self._raise(keys=[key], args=[used, ttl]))

    def remembers(self, user_id: int, day: date, used: int) -> Change:
        """remember() as a change that a write delivers with its others (Redis.before_answer), in the
        same round trip; when Redis refuses the script (an error reply), the counter is deleted
        instead, which only sends the next creation to PostgreSQL's count."""
        key, ttl = daily_quota_key(user_id, day), _counter_ttl()

        def queue(pipe, _epoch_of: EpochOf) -> None:
            self._raise(keys=[key], args=[used, ttl], client=pipe)

        return Change(queue, [key], self.forgets(user_id, day).queue_commands)

    def forgets(self, user_id: int, day: date) -> Change:
        """The day's counter deleted, as a change a write delivers: after a commit that may yet be
        lost (unconfirmed), whose count the counter must not hold (it is never above PostgreSQL's);
        the next creation is counted by PostgreSQL."""
        key = daily_quota_key(user_id, day)

        def forget(pipe, _epoch_of: EpochOf) -> None:
            pipe.delete(key)

        return Change(forget, [key])


def _counter_ttl() -> int:
    """How long a day's counter is kept: until an hour past the end of its day (UTC)."""
    return seconds_to_utc_midnight() + 3600


# --- the per-client rate limit (GCRA) -----------------------------------------------------------
#
# One key per client holds its "theoretical arrival time" (TAT) in milliseconds of Redis's own
# clock (so every app host agrees). A request is allowed when TAT - now <= period - interval,
# i.e. at most `limit` requests in any `period`, refilling one every `interval` (no edge bursts).
# KEYS[1] = client key; ARGV = interval ms, period ms.
# Returns {allowed, remaining, seconds to full reset, seconds to retry}. An interval below the
# precision of a TAT near 2^40 ms adds nothing, so the key's expiry is at least a millisecond (0 is
# refused by SET, an error reply that would open the breaker for every Redis use).
_GCRA = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local interval, period = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or now), now)
local new_tat = tat + interval
if new_tat - now > period then
  return {0, 0, math.ceil((tat - now) / 1000), math.ceil((new_tat - now - period) / 1000)}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.max(math.ceil(new_tat - now), 1))
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
        self._check = redis.script(_GCRA)
        self._interval_ms = period * 1000 / limit

    def check(self, client: str) -> RateDecision | None:
        """The decision for one more request from `client`; None when Redis is down (fail open)."""
        return self.decision(self.redis.run(lambda pipe: self.queue_check(pipe, client)))

    def queue_check(self, pipe: Any, client: str) -> Any:
        """Counts one more request from `client`: runs the check on a client, or adds it to a batch."""
        return self._check(keys=[rate_limit_key(client)], args=[self._interval_ms, self.period * 1000], client=pipe)

    def decision(self, result: Any) -> RateDecision | None:
        """The decision in the check's reply; None when there is none (Redis is down: fail open)."""
        if result is None:
            return None
        allowed, remaining, reset, retry_after = (int(value) for value in result)
        return RateDecision(bool(allowed), self.limit, self.period, max(remaining, 0), max(reset, 0),
                            max(retry_after, 1) if not allowed else 0)
