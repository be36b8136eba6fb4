from __future__ import annotations

from datetime import UTC, datetime

import pytest
import redis

from posterr.limits import seconds_to_utc_midnight
from posterr.redis_client import Redis


@pytest.mark.parametrize("now, expected", [
    (datetime(2026, 11, 26, 0, 0, 0, tzinfo=UTC), 86400),
    (datetime(2026, 11, 26, 23, 59, 59, tzinfo=UTC), 1),
    (datetime(2026, 11, 26, 23, 59, 59, 500000, tzinfo=UTC), 1),
    (datetime(2026, 11, 26, 12, 0, 0, 1, tzinfo=UTC), 43200),
])
def test_retry_after_counts_whole_seconds_to_the_next_utc_midnight(now, expected):
    assert seconds_to_utc_midnight(now) == expected


def test_after_a_redis_failure_calls_skip_redis_until_retry_after():
    """The breaker (posterr/redis_client.py, mechanism 2): one failure, then no call for `retry_after`."""
    calls = []

    def times_out(_client):
        calls.append(1)
        raise redis.TimeoutError("Timeout reading from socket")

    breaker = Redis("redis://127.0.0.1:1/0", timeout=0.1, retry_after=60, invalidation_deadline=1)
    breaker.cluster = False  # nothing listens on port 1: as if a standalone server had answered once
    assert [breaker.run(times_out) for _ in range(5)] == [None] * 5
    assert len(calls) == 1
    breaker._down_until = 0.0  # the interval has passed
    assert breaker.run(lambda _client: "answered") == "answered"
