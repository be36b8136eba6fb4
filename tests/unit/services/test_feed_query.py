"""services/feed_query.py: the feed request as a value, and where its page comes from, as tables."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from posterr.cursors import CursorCodec
from posterr.errors import ValidationFailed
from posterr.services.feed_query import FeedQuery, Server, Source

CURSORS = CursorCodec("feed-query-test")
AT = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
LATEST_CURSOR = CURSORS.encode("posts:latest", [AT.isoformat(), 42])
TRENDING_CURSOR = CURSORS.encode("posts:trending", [7, AT.isoformat(), 42])


def query(**params: str) -> FeedQuery:
    return FeedQuery.parse(params, CURSORS)


def test_no_parameters_is_the_first_page_of_the_global_feed():
    found = query()
    assert (found.author_id, found.followed_by, found.keyword, found.start, found.end, found.with_replies,
            found.order, found.size) == (None, None, None, None, None, False, "latest", 10)
    assert found.after == {"after_score": None, "after_created_at": None, "after_id": None}
    assert found.last is None


@pytest.mark.parametrize(("params", "after"), [
    ({"cursor": LATEST_CURSOR}, {"after_score": None, "after_created_at": AT, "after_id": 42}),
    ({"cursor": TRENDING_CURSOR, "sort_by": "trending"}, {"after_score": 7, "after_created_at": AT, "after_id": 42}),
])
def test_a_cursor_gives_the_position_the_page_starts_after(params, after):
    assert query(**params).after == after
    assert query(**params).last == (AT, 42)


@pytest.mark.parametrize("params", [
    {"cursor": TRENDING_CURSOR},  # issued for the other order
    {"cursor": LATEST_CURSOR, "sort_by": "trending"},
    {"cursor": "forged.cursor"},
    {"cursor": CURSORS.encode("posts:latest", [AT.isoformat()])},  # signed, but not a position
    {"author_id": "0"}, {"limit": "101"}, {"start_date": "2026-12-02", "end_date": "2026-12-01"},
])
def test_bad_parameters_are_refused(params):
    with pytest.raises(ValidationFailed):
        query(**params)


def test_the_date_range_becomes_instants_with_an_exclusive_end():
    found = query(start_date="2026-11-30", end_date="2026-12-01")
    assert (found.start, found.end) == (date(2026, 11, 30), date(2026, 12, 1))
    assert found.bounds == (datetime(2026, 11, 30, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC))
    assert query(end_date="9999-12-31").bounds == (None, None)  # no instant after the last date


@pytest.mark.parametrize(("params", "source", "server"), [
    ({}, Source.ONE_STATEMENT, Server.CACHE),
    ({"author_id": "3"}, Source.ONE_STATEMENT, Server.CACHE),
    ({"sort_by": "trending"}, Source.ONE_STATEMENT, Server.CACHE),
    ({"include_replies": "true"}, Source.ONE_STATEMENT, Server.CACHE),
    ({"cursor": LATEST_CURSOR}, Source.ONE_STATEMENT, Server.REPLICA),
    ({"start_date": "2026-01-01"}, Source.ONE_STATEMENT, Server.REPLICA),
    ({"start_date": "2026-01-01", "sort_by": "trending"}, Source.IDS_THEN_POSTS, Server.REPLICA),
    ({"keyword": "cat"}, Source.IDS_THEN_POSTS, Server.REPLICA),
    ({"followed_by": "5"}, Source.HOME_TIMELINE, Server.PRIMARY),
    ({"followed_by": "5", "cursor": LATEST_CURSOR}, Source.HOME_TIMELINE, Server.PRIMARY),
    ({"followed_by": "5", "sort_by": "trending"}, Source.IDS_THEN_POSTS, Server.REPLICA),
    ({"followed_by": "5", "author_id": "3"}, Source.IDS_THEN_POSTS, Server.REPLICA),
    ({"followed_by": "5", "include_replies": "true"}, Source.IDS_THEN_POSTS, Server.REPLICA),
    ({"followed_by": "5", "keyword": "cat"}, Source.IDS_THEN_POSTS, Server.REPLICA),
])
def test_where_a_page_comes_from(params, source, server):
    found = query(**params)
    assert (found.source(), found.server()) == (source, server)


def test_the_page_queries_take_every_filter_and_one_row_more():
    found = query(author_id="3", keyword="50%", limit="5", start_date="2026-11-30", cursor=LATEST_CURSOR)
    assert found.filters() == {"author_id": 3, "followed_by": None, "pattern": "%50\\%%",
                               "since": datetime(2026, 11, 30, tzinfo=UTC), "until": None,
                               "floor_created_at": None, "floor_id": None,
                               "include_replies": False, "limit": 6, "after_score": None,
                               "after_created_at": AT, "after_id": 42}


@pytest.mark.parametrize(("params", "recent"), [
    ({}, False), ({"keyword": "zq"}, True), ({"keyword": "a.b", "author_id": "3"}, True), ({"keyword": "~~"}, True),
    ({"keyword": "zqx"}, False), ({"keyword": "日本語"}, False), ({"keyword": ""}, False),
])
def test_a_keyword_without_a_trigram_is_searched_among_the_newest_posts_only(params, recent):
    assert query(**params).recent_only is recent


def test_the_floor_of_the_newest_posts_bounds_the_page_queries():
    floor = {"created_at": AT, "id": 7}
    assert query(keyword="zq").filters(floor).items() >= {"floor_created_at": AT, "floor_id": 7}.items()
