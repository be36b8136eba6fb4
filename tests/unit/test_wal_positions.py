"""posterr/wal_positions.py: WAL positions as numbers and as Redis keeps them, and how current a
replica is as of the primary's samples."""

from __future__ import annotations

import pytest

from posterr.wal_positions import PrimaryHistory, lsn, position_text


@pytest.mark.parametrize("text, expected", [
    (None, 0), ("", 0), ("0/0", 0), ("0/3015FE0", 0x3015FE0), ("16/B374D848", (0x16 << 32) | 0xB374D848),
])
def test_wal_positions_become_numbers(text, expected):
    assert lsn(text) == expected


@pytest.mark.parametrize("earlier, later", [("9/FFFFFFFF", "10/0"), ("0/FFFFFFF", "0/10000000"), ("0/0", "0/1")])
def test_positions_kept_in_redis_order_as_strings_like_the_wal(earlier, later):
    """PostgreSQL's text (9/FFFFFFFF after 10/0 as strings) would not; Redis compares what is kept
    as strings (_REMEMBER), so the kept form must."""
    assert lsn(earlier) < lsn(later)
    assert position_text(earlier) < position_text(later) < position_text(None)


@pytest.mark.parametrize("replayed, expected", [
    (99, None),     # behind every sample kept: staler than we can say
    (100, 1.0),     # the primary was here at 1.0
    (150, 1.0),     # past 1.0's position, short of 2.0's: current as of 1.0 only
    (200, 2.0),
    (300, 3.0),
    (10**9, 3.0),   # nothing newer than the newest sample can be claimed
])
def test_a_replica_is_current_as_of_the_newest_sample_it_has_replayed(replayed, expected):
    history = PrimaryHistory(keep=10)
    for at, position in ((1.0, 100), (2.0, 200), (3.0, 300)):
        history.add(at, position)
    assert history.current_at(replayed) == expected


def test_old_samples_are_dropped_but_the_newest_is_always_kept():
    history = PrimaryHistory(keep=2)
    history.add(1.0, 100)
    history.add(2.0, 200)
    history.add(10.0, 200)  # an idle primary: the position did not move
    assert history.current_at(100) is None  # 1.0 is older than the window
    assert history.current_at(200) == 10.0
