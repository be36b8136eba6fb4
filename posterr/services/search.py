"""Keyword search: the page's ids, newest first or by trending, found the cheapest way that gives the
exact answer. A common word fills its page from a short walk down the newest posts; any other is
looked for in the time segments of post_search, newest first, each with its own trigram index, until
the page is full (docs/architecture.md, "Keyword search"); a keyword without a trigram among the
newest RECENT_POSTS posts only (contract v2.1)."""

from __future__ import annotations

import math
from datetime import datetime
from time import monotonic

from posterr.services.feed_query import FeedQuery

# A keyword is first looked for among this many of the newest posts (see page_latest_scan), and
# only on a table of at least SCAN_FROM_POSTS posts: below that the trigram index is always cheap.
# Short, since a rare word walks it all for nothing (500 posts: about 0.7 ms of PostgreSQL at 1M,
# against 2.7 ms for the 2,000 walked before segments); a word that it finds a few times is walked
# further.
FIRST_WALK = 500
SCAN_FROM_POSTS = 20_000
# The posts of a sealed segment (seal_search_segments' default, in the schema): what asking the
# trigram index costs at most, a row per match in the newest segment rather than in the table.
SEGMENT_POSTS = 100_000
# Contract v2.1: a keyword without three consecutive letters or digits (validation.has_trigram) gives
# pg_trgm no trigram to look up, so without a bound its search would read every post; it is matched
# against this many of the newest posts only, and its answers say so (Search-Scope: recent).
RECENT_POSTS = 100_000
# Per process. Segment bounds may be a little old: sealed ranges never change, so any list of them
# still cuts time into ranges that cover it all (a segment sealed since is searched with the open one).
_estimate = {"posts": 0, "until": 0.0}
_segments: dict = {"bounds": [], "until": 0.0}
SEGMENTS_TTL = 10.0
_FOLLOWED = {"latest": "page_followed_latest", "trending": "page_followed_trending"}


def keyword_page(run, query: FeedQuery) -> list[dict]:
    """The ids of one page of a keyword search in order (by trending, each with its score)."""
    if query.recent_only:
        return _recent_page(run, query)
    filters = query.filters()
    if query.followed_by:  # a walk per followee, whatever the keyword
        return run(_FOLLOWED[query.order], **filters)
    if query.order == "trending":  # every match counts: no segment can be left out
        return run("page_trending" if query.author_id else "search_trending_page", **filters)
    rows = _walk(run, filters)
    if len(rows) == filters["limit"]:
        return rows
    if query.author_id:  # the author's own posts, through their index
        return run("page_latest", **filters)
    return _segments_page(run, filters)


def _recent_page(run, query: FeedQuery) -> list[dict]:
    """A keyword without a trigram, among the newest RECENT_POSTS posts. A page that a walk fills, and
    whose last post has fewer than RECENT_POSTS posts newer than it, is all within the window (a
    count of those newer posts costs what the walk did); otherwise the window's floor is read (a walk
    of RECENT_POSTS index entries) and the window searched whole."""
    walked = [] if query.followed_by or query.order == "trending" else _walk(run, query.filters())
    if len(walked) == query.size + 1:
        last = walked[-1]
        if run("posts_newer_than", created_at=last["created_at"], id=last["id"], most=RECENT_POSTS)["newer"] < RECENT_POSTS:
            return walked
    # The floor and the page are two statements, so that the page query is planned with the floor's
    # value: a window the statistics put at 100,000 posts, walked through an index condition (a
    # subquery's value would be guessed at a third of the table).
    filters = query.filters(run("recent_posts_floor", window=RECENT_POSTS))
    if query.followed_by:  # its walks are per followee, each down to the floor
        return run(_FOLLOWED[query.order], **filters)
    # The window read whole, the keyword matched apart from it: given no trigram to look up, a query
    # of the trigram index or of the trending one may scan it whole.
    return run("page_recent_latest" if query.order == "latest" else "page_recent_trending", **filters)


def _walk(run, filters: dict) -> list[dict]:
    """The page's ids when walking down the newest posts finds a full page (an exact answer: the
    walk keeps the feed's order and filters); fewer when the trigram index is to be asked."""
    posts = _posts_estimate(run)
    walked, rows = 0, []
    while (further := next_walk(walked, len(rows), filters["limit"], posts)) > walked:
        walked = further
        rows = run("page_latest_scan", scan=walked, **filters)
    return rows


def next_walk(walked: int, found: int, wanted: int, posts: int) -> int:
    """How many of the newest posts to search for a keyword next, given that the newest `walked`
    held `found` of the `wanted` matches; `walked` (no further walk) when the trigram index is the
    cheaper way. A walk costs a row per post passed, the trigram index a row per match in the newest
    segment (of at most SEGMENT_POSTS posts), so a word in a share s of the posts is walked while
    wanted / s < 2 * s * min(posts, SEGMENT_POSTS); a second walk goes 1.5 times as far as the share
    seen in the first says a page needs, and is the last (so at most 1.5 * sqrt(2 * wanted *
    SEGMENT_POSTS) posts: 2,500 for a page of 11)."""
    if found >= wanted or posts < SCAN_FROM_POSTS or walked > FIRST_WALK:
        return walked
    if walked == 0:
        return FIRST_WALK
    share = found / walked
    if share * share * 2 * min(posts, SEGMENT_POSTS) < wanted:
        return walked
    return math.ceil(1.5 * wanted / share)


def _segments_page(run, filters: dict) -> list[dict]:
    """The page from post_search's segments, newest first: each range's matches come after those of
    every newer range, so the first full page is the page."""
    rows: list[dict] = []
    for since, until in segment_ranges(_segment_bounds(run), filters["since"], filters["until"],
                                       filters["after_created_at"]):
        rows += run("search_segments_page", **{**filters, "since": since, "until": until,
                                               "limit": filters["limit"] - len(rows)})
        if len(rows) == filters["limit"]:
            break
    return rows


Range = tuple[datetime | None, datetime | None]  # [since, until); None: no bound


def segment_ranges(sealed: list[Range], since: datetime | None, until: datetime | None,
                   after: datetime | None) -> list[Range]:
    """The time ranges to search, newest first: the open segment, then the sealed ones (`sealed`,
    newest first, the oldest starting at None), each kept within [since, until) and to what can hold
    a post at or before the cursor's `after`; grouped two, two, four, eight… segments to a range (the
    open one may hold a few posts only), so that a keyword in no post takes a statement per doubling
    of the segments, not one per segment."""
    segments = [(sealed[0][1] if sealed else None, None), *sealed]
    kept = [(_later(start, since), _earlier(end, until)) for start, end in segments
            if not (until is not None and start is not None and start >= until)
            and not (since is not None and end is not None and end <= since)
            and not (after is not None and start is not None and start > after)]
    ranges, size = [], 2
    while kept:
        group, kept = kept[:size], kept[size:]
        ranges.append((group[-1][0], group[0][1]))
        size = size if len(ranges) == 1 else 2 * size
    return ranges


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def _earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _segment_bounds(run) -> list[Range]:
    now = monotonic()
    if now >= _segments["until"]:
        _segments.update(bounds=[(row["starts_at"], row["ends_at"]) for row in run("search_segment_bounds")],
                         until=now + SEGMENTS_TTL)
    return _segments["bounds"]


def _posts_estimate(run) -> int:
    """PostgreSQL's estimate of the number of posts, refreshed each minute."""
    now = monotonic()
    if now >= _estimate["until"]:
        _estimate.update(posts=run("posts_estimate")["posts"], until=now + 60)
    return _estimate["posts"]


def seal_segments(db) -> int:
    """The job of posterr/segment_sealer.py: seals the open segment when it is full (the segments made)."""
    return db("seal_search_segments")["sealed"]
