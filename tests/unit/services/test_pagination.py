"""services/pagination.py: the bounds the one-statement page queries take (every bound set, an open
one at infinity), and keyset cursors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from posterr.cursors import CursorCodec
from posterr.errors import ValidationFailed
from posterr.services.pagination import (
    EARLIEST,
    LATEST,
    MAX_ID,
    MAX_SCORE,
    Keyset,
    newest_first_window,
    trending_window,
)

T1 = datetime(2026, 11, 1, tzinfo=UTC)
T2 = datetime(2026, 11, 20, tzinfo=UTC)
T3 = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.mark.parametrize("after, since, until, expected", [
    (None, None, None, (EARLIEST, LATEST, MAX_ID)),
    (None, T1, None, (T1, LATEST, MAX_ID)),
    (None, None, T3, (EARLIEST, T3, 0)),  # (T3, 0) comes before every post created at T3
    ((T2, 42), None, None, (EARLIEST, T2, 42)),
    ((T2, 42), T1, T3, (T1, T2, 42)),  # the cursor is inside the range: it decides
    ((T3, 42), None, T2, (EARLIEST, T2, 0)),  # a cursor past the range's end: the end decides
    ((T2, 42), None, T2, (EARLIEST, T2, 0)),  # the end is exclusive, even at the cursor's instant
])
def test_a_newest_first_page_starts_before_both_the_cursor_and_the_end_of_the_range(after, since, until, expected):
    window = newest_first_window(after, since, until)
    assert (window["since"], window["before_created_at"], window["before_id"]) == expected


@pytest.mark.parametrize("after, expected", [
    (None, (MAX_SCORE, LATEST, MAX_ID)),
    ((3, T2, 42), (3, T2, 42)),
])
def test_a_trending_page_starts_after_the_cursor_or_at_the_top(after, expected):
    window = trending_window(after)
    assert (window["before_score"], window["before_created_at"], window["before_id"]) == expected


FOLLOWED = Keyset("followers", ("followed_at", "id"))
CODEC = CursorCodec("pagination-test")


def test_a_keyset_cursor_gives_back_the_position_it_was_made_from():
    row = {"followed_at": T2, "id": 42, "username": "ann"}
    cursor = CODEC.encode(FOLLOWED.kind, FOLLOWED.position(row))
    assert FOLLOWED.position(row) == [T2.isoformat(), 42]
    assert FOLLOWED.after(CODEC, cursor) == {"after_followed_at": T2, "after_id": 42}
    assert FOLLOWED.before(CODEC, cursor, (LATEST, MAX_ID)) == {"before_followed_at": T2, "before_id": 42}


def test_a_first_page_starts_nowhere_or_past_every_row():
    assert FOLLOWED.after(CODEC, None) == {"after_followed_at": None, "after_id": None}
    assert FOLLOWED.before(CODEC, None, (LATEST, MAX_ID)) == {"before_followed_at": LATEST, "before_id": MAX_ID}


@pytest.mark.parametrize("start", ["after", "before"])
@pytest.mark.parametrize("values", [
    [T2.isoformat()], [T2.isoformat(), 42, 7], ["not a time", 42], [None, 42], [T2.isoformat(), "x"],
    [T2.isoformat(), None], [T2.isoformat(), 4.2], [T2.isoformat(), True], [T2.isoformat(), -1],
    [T2.isoformat(), MAX_ID + 1], [T2.isoformat(), [42]], ["2026-11-20T00:00:00", 42], ["2026-11-20", 42],
    [1700000000, 42], 42, "ab", {"followed_at": T2.isoformat(), "id": 42}, None])
def test_a_signed_cursor_that_is_no_position_of_the_list_is_refused(values, start):
    """A cursor signed with the server's key (a leaked or development key) is still only a position:
    values of the wrong type, a timestamp without its offset or an id out of range are 422, never a
    500 further down."""
    cursor = CODEC.encode(FOLLOWED.kind, values)
    with pytest.raises(ValidationFailed):
        FOLLOWED.after(CODEC, cursor) if start == "after" else FOLLOWED.before(CODEC, cursor, (LATEST, MAX_ID))


TRENDING = Keyset("posts:trending", ("score", "created_at", "id"))


@pytest.mark.parametrize("score", [-1, MAX_SCORE + 1, "3", 2.5, False])
def test_a_signed_trending_cursor_with_a_score_out_of_range_is_refused(score):
    cursor = CODEC.encode(TRENDING.kind, [score, T2.isoformat(), 42])
    with pytest.raises(ValidationFailed):
        TRENDING.after(CODEC, cursor)


def test_a_trending_cursor_gives_back_its_score():
    cursor = CODEC.encode(TRENDING.kind, [MAX_SCORE, T2.isoformat(), 42])
    assert TRENDING.after(CODEC, cursor) == {"after_score": MAX_SCORE, "after_created_at": T2, "after_id": 42}
