"""posterr/limits.py without servers: the daily limit's Retry-After, in whole seconds to the next UTC
midnight (the breaker that lets limits skip Redis: tests/unit/test_redis_client.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from posterr.limits import seconds_to_utc_midnight


@pytest.mark.parametrize("now, expected", [
    (datetime(2026, 11, 26, 0, 0, 0, tzinfo=UTC), 86400),
    (datetime(2026, 11, 26, 23, 59, 59, tzinfo=UTC), 1),
    (datetime(2026, 11, 26, 23, 59, 59, 500000, tzinfo=UTC), 1),
    (datetime(2026, 11, 26, 12, 0, 0, 1, tzinfo=UTC), 43200),
])
def test_retry_after_counts_whole_seconds_to_the_next_utc_midnight(now, expected):
    assert seconds_to_utc_midnight(now) == expected
