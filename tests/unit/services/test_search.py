"""posterr/services/search.py: how far keyword search walks down the newest posts before it asks the
trigram index of the segments, and the time ranges it asks them in."""

from datetime import UTC, datetime, timedelta

import pytest

from posterr.services.search import FIRST_WALK, next_walk, segment_ranges


@pytest.mark.parametrize("walked, found, wanted, posts, expected", [
    (0, 0, 11, 1_000, 0),  # a small table: the trigram index at once
    (0, 0, 11, 1_000_000, FIRST_WALK),  # a large one: a short walk first
    (FIRST_WALK, 11, 11, 1_000_000, FIRST_WALK),  # the page is full: done
    (FIRST_WALK, 0, 11, 10_000_000, FIRST_WALK),  # nothing found: the segments
    (FIRST_WALK, 1, 11, 10_000_000, FIRST_WALK),  # 0.2%: 200 matches in a segment cost less than a 5,500-post walk
    (FIRST_WALK, 5, 11, 1_000_000, 1_650),  # 1%: a page is 1,100 posts away, 1.5 times that is walked
    (FIRST_WALK, 5, 11, 30_000, FIRST_WALK),  # 1% of a table smaller than a segment: 300 matches
    (FIRST_WALK, 10, 101, 10_000_000, FIRST_WALK),  # 2%, a page of 101: 2,000 matches against a 7,575-post walk
    (FIRST_WALK, 15, 101, 10_000_000, 5_050),  # 3%: a page is 3,367 posts away
    (5_050, 100, 101, 10_000_000, 5_050),  # the second walk is the last
])
def test_next_walk(walked, found, wanted, posts, expected):
    assert next_walk(walked, found, wanted, posts) == expected


T = datetime(2026, 12, 1, tzinfo=UTC)


def at(hour: int) -> datetime:
    return T + timedelta(hours=hour)


# Sealed segments, newest first: [8, 10), [6, 8), [4, 6), [2, 4), [0, 2), (-inf, 0).
SEALED = [(at(8), at(10)), (at(6), at(8)), (at(4), at(6)), (at(2), at(4)), (at(0), at(2)), (None, at(0))]


def test_no_sealed_segment_is_one_range_of_all_time():
    assert segment_ranges([], None, None, None) == [(None, None)]


def test_the_open_segment_with_the_newest_sealed_then_doubling():
    assert segment_ranges(SEALED, None, None, None) == [(at(8), None), (at(4), at(8)), (None, at(4))]


def test_dates_keep_the_segments_they_overlap_and_clip_them():
    assert segment_ranges(SEALED, at(5), at(9), None) == [(at(6), at(9)), (at(5), at(6))]


def test_a_cursor_skips_the_segments_newer_than_it():
    # A segment starting at the cursor's instant may hold posts at that instant with smaller ids.
    assert segment_ranges(SEALED, None, None, at(4)) == [(at(2), at(6)), (None, at(2))]
    assert segment_ranges(SEALED, None, None, at(4) + timedelta(microseconds=1))[0] == (at(2), at(6))
