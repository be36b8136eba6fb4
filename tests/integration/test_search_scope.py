"""Contract v2.1: a keyword without three consecutive letters or digits is matched against the newest
100,000 posts only, and its answers carry `Search-Scope: recent`; every other keyword searches every
post. Over 100,050 posts bulk-inserted in SQL, with created_at tied in runs of ten (seeded data has
1-second ties), so that the window's floor, the 100,000th newest post, shares its instant with the
post just below it: only the id tells the two apart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import chain

import pytest

from posterr import validation
from posterr.services.search import RECENT_POSTS
from tests.conftest import TABLES
from tests.integration.conftest import Api
from tests.integration.pages import ids, walk

POSTS = RECENT_POSTS + 50  # ids 1..POSTS, oldest first: the newest RECENT_POSTS are FLOOR and above
FLOOR = POSTS - RECENT_POSTS + 1  # 51, at the same instant as 50 (ids 50..59 share one second)
START = datetime(2026, 1, 1, tzinfo=UTC)
USERS = 3  # post n is by user 1 + n % USERS; user READER (made last) follows users 1 and 2
READER = USERS + 1
# Posts that hold "zq" (no trigram) and "edge": 1 (the oldest), 50 (just outside), FLOOR (just inside), and 2,000.
ZQ = {1: "oldest zq", 50: "zq edge below", FLOOR: "zq edge floor", POSTS - 2000: "zq near the top"}
# Posts that hold "q~" (no trigram) straddling the floor: 24 outside the window, 75 inside, so that
# pages of a search cross it; post 2 (outside) has the highest score, 100 (inside) the next.
MANY = [n for n in range(2, 201, 2) if n not in ZQ]
SCORES = {2: 50, 100: 10}


@pytest.fixture(scope="module")
def seeded(sql):
    """The posts, inserted in one statement (a second or two with the trigram index), then ANALYZEd;
    the module's tests only read them, and the next module's clean_state empties the tables."""
    sql.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
    sql.execute("INSERT INTO users (username) SELECT 'scope' || g FROM generate_series(1, %s) g", (READER,))
    sql.execute("INSERT INTO follows (follower_id, followee_id) VALUES (%(r)s, 1), (%(r)s, 2)", {"r": READER})
    sql.execute(
        """INSERT INTO posts (id, user_id, type, content, created_at, repost_count) OVERRIDING SYSTEM VALUE
           SELECT g, 1 + g %% %(users)s, 'post',
                  coalesce(special.content, CASE WHEN g %% 2 = 0 AND g <= 200 THEN 'q~ note ' || g
                                                 ELSE 'filler ' || g END),
                  %(start)s::timestamptz + (g / 10) * interval '1 second', coalesce(scored.score, 0)
           FROM generate_series(1, %(posts)s) g
           LEFT JOIN unnest(%(special_ids)s::bigint[], %(special_contents)s::text[]) AS special(id, content)
             ON special.id = g
           LEFT JOIN unnest(%(score_ids)s::bigint[], %(scores)s::integer[]) AS scored(id, score) ON scored.id = g""",
        {"users": USERS, "start": START, "posts": POSTS, "special_ids": list(ZQ), "special_contents": list(ZQ.values()),
         "score_ids": list(SCORES), "scores": list(SCORES.values())})
    sql.execute("SELECT setval(pg_get_serial_sequence('posts', 'id'), %s)", (POSTS,))
    sql.execute("ANALYZE posts")
    yield


@pytest.fixture(autouse=True)
def clean_state():
    """These tests read the module's posts (`seeded`), so nothing is truncated between them."""


def newest_first(ns) -> list[int]:
    return sorted(ns, reverse=True)  # ids grow with created_at here, ties included


def search(api: Api, path: str = "/api/posts/search", **params):
    response = api.get(path, params=params)
    assert response.status_code == 200, response.text
    return response


def test_the_fixture_matches_the_contract_words(seeded, sql):
    """The 100,000th newest post is FLOOR, tied in created_at with the one below it; the rule agrees."""
    newest = sql.execute("SELECT id, created_at FROM posts ORDER BY created_at DESC, id DESC OFFSET %s LIMIT 2",
                         (RECENT_POSTS - 1,)).fetchall()
    assert [row[0] for row in newest] == [FLOOR, FLOOR - 1] and newest[0][1] == newest[1][1]
    assert not validation.has_trigram("zq") and not validation.has_trigram("q~")
    assert validation.has_trigram("zq edge") and validation.has_trigram("oldest")
    holding = sql.execute("SELECT array_agg(id ORDER BY id) FILTER (WHERE content LIKE '%%q~%%'), "
                          "array_agg(id ORDER BY id) FILTER (WHERE content LIKE '%%zq%%') FROM posts").fetchone()
    assert holding == (MANY, sorted(ZQ))


@pytest.mark.parametrize("path", ["/api/posts/search", "/api/posts"])
def test_a_keyword_without_a_trigram_finds_only_what_the_newest_posts_hold(seeded, api, path):
    response = search(api, path, keyword="zq", limit=100)
    assert ids(response) == [POSTS - 2000, FLOOR]  # not 50 (tied with FLOOR, one id below) nor 1
    assert response.headers["Search-Scope"] == "recent"
    assert response.headers["Access-Control-Expose-Headers"].endswith("Search-Scope")
    nothing = search(api, path, keyword="~~")
    assert ids(nothing) == [] and nothing.headers["Search-Scope"] == "recent"


@pytest.mark.parametrize("path", ["/api/posts/search", "/api/posts"])
def test_a_keyword_with_a_trigram_searches_every_post(seeded, api, path):
    response = search(api, path, keyword="zq edge", limit=100)
    assert ids(response) == [FLOOR, 50]
    assert "Search-Scope" not in response.headers
    oldest = search(api, path, keyword="OLDEST zq")
    assert ids(oldest) == [1] and "Search-Scope" not in oldest.headers


def test_every_page_of_a_recent_search_keeps_the_header_and_the_window(seeded, api):
    pages, url = [], "/api/posts/search?keyword=q~&limit=20"
    while url:
        response = api.get(url)
        assert response.status_code == 200 and response.headers["Search-Scope"] == "recent", response.text
        pages.append(ids(response))
        link = response.headers.get("Link")
        url = link[1:link.index(">")] if link else None
    assert [len(page) for page in pages] == [20, 20, 20, 15]
    assert list(chain.from_iterable(pages)) == newest_first(n for n in MANY if n >= FLOOR)


def test_trending_order_stays_in_the_window(seeded, api):
    response = search(api, keyword="q~", sort_by="trending", limit=100)
    inside = [n for n in MANY if n >= FLOOR]
    assert ids(response) == [100] + newest_first(n for n in inside if n != 100)  # not 2, the highest score
    assert response.headers["Search-Scope"] == "recent"
    pages = walk(api, "/api/posts/search?keyword=q~&sort_by=trending&limit=30")
    assert list(chain.from_iterable(pages)) == ids(response)


@pytest.mark.parametrize("sort_by", ["latest", "trending"])
def test_author_and_followed_by_stay_in_the_window(seeded, api, sort_by):
    by_author = search(api, keyword="q~", author_id=2, sort_by=sort_by, limit=100)
    assert sorted(ids(by_author)) == [n for n in MANY if n >= FLOOR and 1 + n % USERS == 2]
    followed = search(api, "/api/posts", keyword="q~", followed_by=READER, sort_by=sort_by, limit=100)
    expected = [n for n in MANY if n >= FLOOR and 1 + n % USERS in (1, 2)]
    assert sorted(ids(followed)) == expected
    assert by_author.headers["Search-Scope"] == followed.headers["Search-Scope"] == "recent"
    if sort_by == "latest":
        assert ids(followed) == newest_first(expected)
    zq = search(api, keyword="zq", followed_by=READER, sort_by=sort_by, limit=100)  # 1 is by user 2, outside
    assert ids(zq) == [n for n in (POSTS - 2000, FLOOR) if 1 + n % USERS in (1, 2)]


def test_dates_combine_with_the_window(seeded, api):
    """A date range reaching below the floor still finds nothing there."""
    day = START.date().isoformat()
    response = search(api, keyword="zq", start_date=day, end_date=day, limit=100)
    assert ids(response) == [POSTS - 2000, FLOOR] and response.headers["Search-Scope"] == "recent"
    assert (START + timedelta(seconds=POSTS // 10)).date() == START.date()  # every post is on that day


def test_the_rule_counts_only_what_the_database_counts_as_letters_or_digits(sql):
    """has_trigram's letters and digits, over every code point, are among the database's alphanumerics
    (pg_trgm's word characters: a single one makes two trigrams, `  x` and ` x `), so no keyword it sends
    to the whole table lacks a trigram; the database's others are the combining marks and symbols of
    Unicode's Alphabetic property that Python cannot name (the docstring of has_trigram)."""
    database = {row[0] for row in sql.execute(
        "SELECT cp FROM generate_series(1, 1114111) cp "
        "WHERE (cp < 55296 OR cp > 57343) AND cardinality(show_trgm(chr(cp))) > 0")}
    ours = {cp for cp in range(1, 0x110000) if not 0xD800 <= cp <= 0xDFFF and validation.has_trigram(chr(cp) * 3)}
    assert ours <= database
    import unicodedata

    assert {unicodedata.category(chr(cp)) for cp in database - ours} <= {"Mn", "Mc", "So"}
