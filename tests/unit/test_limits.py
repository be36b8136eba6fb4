from __future__ import annotations

from datetime import UTC, date, datetime, timezone

import pytest

from posterr.limits import seconds_to_utc_midnight, utc_today


@pytest.mark.parametrize("now, expected", [
    (datetime(2026, 11, 26, 0, 0, 0, tzinfo=UTC), 86400),
    (datetime(2026, 11, 26, 23, 59, 59, tzinfo=UTC), 1),
    (datetime(2026, 11, 26, 23, 59, 59, 500000, tzinfo=UTC), 1),
    (datetime(2026, 11, 26, 12, 0, 0, 1, tzinfo=UTC), 43200),
])
def test_retry_after_counts_whole_seconds_to_the_next_utc_midnight(now, expected):
    assert seconds_to_utc_midnight(now) == expected


def test_the_day_is_the_utc_calendar_day():
    from datetime import timedelta
    evening_in_new_york = datetime(2026, 11, 26, 21, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert utc_today(evening_in_new_york) == date(2026, 11, 27)
