"""posterr/presenters.py: the API's formats, timestamps in RFC 3339 UTC with a Z and the joined date
as the unpadded UTC date."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from posterr import presenters


@pytest.mark.parametrize("moment, expected", [
    (datetime(2026, 11, 26, 6, 38, 45, 123456, UTC), "2026-11-26T06:38:45.123456Z"),
    (datetime(2026, 1, 2, 3, 4, 5, 0, UTC), "2026-01-02T03:04:05.000000Z"),
    (datetime(2026, 1, 1, 23, 0, 0, 0, timezone(timedelta(hours=-5))), "2026-01-02T04:00:00.000000Z"),
    (datetime(2026, 1, 1, 23, 0, 0, 1, timezone(timedelta(hours=-5))), "2026-01-02T04:00:00.000001Z"),
    (datetime(2026, 12, 31, 23, 59, 59, 999999, UTC), "2026-12-31T23:59:59.999999Z"),
    (datetime(2026, 5, 6, 7, 8, 9, 10, UTC), "2026-05-06T07:08:09.000010Z"),
    (datetime(999, 5, 6, 7, 8, 9, 10, UTC), "0999-05-06T07:08:09.000010Z"),
])
def test_timestamps_are_rfc3339_utc_with_z(moment, expected):
    assert presenters.timestamp(moment) == expected


@pytest.mark.parametrize("moment, expected", [
    (datetime(2021, 3, 25, 12, 0, tzinfo=UTC), "March 25, 2021"),
    (datetime(2021, 3, 5, 12, 0, tzinfo=UTC), "March 5, 2021"),
    (datetime(2021, 12, 31, 22, 0, tzinfo=timezone(timedelta(hours=-5))), "January 1, 2022"),
])
def test_joined_is_the_unpadded_utc_date(moment, expected):
    assert presenters.joined(moment) == expected
