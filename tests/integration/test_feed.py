"""GET /api/posts and /api/posts/search: filters, sort orders and keyset pagination."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import chain
from urllib.parse import parse_qs, urlsplit

import pytest

from posterr.cursors import CursorCodec
from tests.conftest import TEST_SECRET_KEY
from tests.integration.conftest import assert_problem
from tests.integration.pages import ids, next_url, walk


def make_posts(api, count: int, prefix: str = "post") -> list[dict]:
    """`count` posts spread over as many users as the daily limit needs, oldest first."""
    users = [api.new_user(f"{prefix}{n}")["id"] for n in range((count + 4) // 5)]
    return [api.new_post(users[n // 5], f"{prefix} number {n}") for n in range(count)]


def test_feed_is_newest_first_and_frontend_fields_are_there(api):
    posts = make_posts(api, 3)
    response = api.get("/api/posts")
    assert ids(response) == [p["id"] for p in reversed(posts)]
    for item in response.json():
        assert {"id", "username", "content", "created_at", "repost_count", "repost_id"} <= item.keys()


def test_link_chain_over_23_items_yields_every_item_once(api):
    posts = make_posts(api, 23)
    pages = walk(api, "/api/posts?limit=10")
    assert [len(page) for page in pages] == [10, 10, 3]
    assert list(chain.from_iterable(pages)) == [p["id"] for p in reversed(posts)]


def test_link_chain_is_stable_while_new_posts_arrive(api):
    posts = make_posts(api, 23)
    newcomer = api.new_user("newcomer")["id"]
    seen, url = [], "/api/posts?limit=10"
    while url:
        response = api.get(url)
        seen += ids(response)
        url = next_url(response)
        api.new_post(newcomer, "arrived between pages") if len(seen) < 23 else None
    assert seen == [p["id"] for p in reversed(posts)]


def test_link_repeats_every_filter(api):
    author = api.new_user("author")["id"]
    for n in range(3):
        api.new_post(author, f"cats {n}")
    response = api.get(f"/api/posts?limit=2&author_id={author}&keyword=cats&start_date=2000-01-01"
                       "&end_date=2999-12-31&sort_by=latest&followed_by=")
    query = parse_qs(urlsplit(next_url(response)).query)
    assert {k: v[0] for k, v in query.items() if k != "cursor"} == {
        "limit": "2", "author_id": str(author), "keyword": "cats", "start_date": "2000-01-01",
        "end_date": "2999-12-31", "sort_by": "latest"}


def test_trending_orders_by_reposts_and_quotes_then_newest(api):
    fans = [api.new_user(f"fan{n}")["id"] for n in range(3)]
    author = api.new_user("author")["id"]
    quiet, popular, medium, newest = (api.new_post(author, t)["id"] for t in ("quiet", "popular", "medium", "new"))
    for fan in fans:
        api.new_post(fan, None, repost_id=popular)
    api.new_post(fans[0], "a quote", repost_id=medium)
    api.new_post(fans[1], None, repost_id=medium)
    feed = api.get("/api/posts?sort_by=trending&limit=100").json()
    order = [post["id"] for post in feed]
    assert order[:2] == [popular, medium]
    zero_score = [p["id"] for p in feed if p["repost_count"] + p["quote_count"] == 0]
    assert zero_score == sorted(zero_score, reverse=True)
    assert order.index(newest) < order.index(quiet)
    scores = [p["repost_count"] + p["quote_count"] for p in feed]
    assert scores == sorted(scores, reverse=True)


def test_trending_pages_cover_every_item_once(api):
    posts = make_posts(api, 12)
    fan = api.new_user("fan")["id"]
    for post in posts[3:6]:
        api.new_post(fan, None, repost_id=post["id"])
    pages = walk(api, "/api/posts?sort_by=trending&limit=4")
    everything = list(chain.from_iterable(pages))
    assert sorted(everything) == sorted(p["id"] for p in api.get("/api/posts?limit=100").json())
    assert len(everything) == len(set(everything)) == 15
    assert set(everything[:3]) == {p["id"] for p in posts[3:6]}


def test_cursor_of_the_other_sort_order_is_422(api):
    make_posts(api, 3)
    latest_next = next_url(api.get("/api/posts?limit=1"))
    cursor = parse_qs(urlsplit(latest_next).query)["cursor"][0]
    assert_problem(api.get(f"/api/posts?sort_by=trending&cursor={cursor}"), 422)


@pytest.mark.parametrize("path, kind, values", [
    ("/api/posts", "posts:latest", ["2026-01-01T00:00:00+00:00", "x"]),
    ("/api/posts", "posts:latest", ["2026-01-01T00:00:00", 5]),
    ("/api/posts?sort_by=trending", "posts:trending", [2**40, "2026-01-01T00:00:00+00:00", 5]),
    ("/api/posts?keyword=hello", "posts:latest", [{}, 5]),
    ("/api/users", "users", ["1"]),
    ("/api/users/{user}/followers", "followers", ["2026-01-01T00:00:00+00:00", 2**63]),
    ("/api/posts/{post}/replies", "replies", [None, 1]),
])
def test_a_cursor_signed_with_the_servers_key_but_holding_wrong_values_is_422(api, path, kind, values):
    """Someone who holds the signing key (a development key left in a deployment) still cannot reach
    a 500 with a cursor: every decoded value is checked."""
    alice = api.new_user("alice")["id"]
    path = path.format(user=alice, post=api.new_post(alice)["id"])
    cursor = CursorCodec(TEST_SECRET_KEY).encode(kind, values)
    separator = "&" if "?" in path else "?"
    problem = assert_problem(api.get(f"{path}{separator}cursor={cursor}"), 422)
    assert problem["errors"][0]["field"] == "cursor"


def test_author_feed_holds_every_type(api):
    alice, bob = api.new_user("alice")["id"], api.new_user("bob")["id"]
    original = api.new_post(bob, "bob's")
    mine = [api.new_post(alice, "post")["id"], api.new_post(alice, None, repost_id=original["id"])["id"],
            api.new_post(alice, "quote", repost_id=original["id"])["id"]]
    assert ids(api.get(f"/api/posts?author_id={alice}")) == mine[::-1]


def test_followed_by_feed_holds_followees_posts_of_every_type_not_own(api):
    alice, bob, carol, dave = (api.new_user(n)["id"] for n in ("alice", "bob", "carol", "dave"))
    api.follow(alice, bob)
    api.follow(alice, carol)
    original = api.new_post(dave, "dave's")
    expected = [api.new_post(bob, "bob")["id"], api.new_post(carol, None, repost_id=original["id"])["id"],
                api.new_post(bob, "quote", repost_id=original["id"])["id"]]
    api.new_post(alice, "alice's own")
    assert ids(api.get(f"/api/posts?followed_by={alice}")) == expected[::-1]
    assert ids(api.get(f"/api/posts?followed_by={dave}")) == []
    assert ids(api.get(f"/api/posts?followed_by={alice}&author_id={carol}")) == [expected[1]]
    assert ids(api.get(f"/api/posts?followed_by={alice}&author_id={dave}")) == []


def test_keyword_search(api):
    alice, bob = api.new_user("alice")["id"], api.new_user("bob")["id"]
    cats = api.new_post(alice, "I love CATS")["id"]
    api.new_post(alice, "dogs only")
    repost = api.new_post(bob, None, repost_id=cats)["id"]
    quote_about = api.new_post(bob, "cat pictures please", repost_id=cats)["id"]
    api.new_post(bob, "no animals here", repost_id=cats)
    found = ids(api.get("/api/posts?keyword=cAt"))
    assert found == [quote_about, cats] and repost not in found
    assert ids(api.get("/api/posts/search?keyword=cat")) == found
    assert ids(api.get(f"/api/posts?keyword=cat&author_id={bob}")) == [quote_about]


@pytest.mark.parametrize("keyword, expected", [("100%", ["100% sure"]), ("a_b", ["a_b"]), ("%", ["100% sure"]),
                                               ("\\", ["back\\slash"])])
def test_keyword_wildcards_are_literal(api, keyword, expected):
    user = api.new_user("alice")["id"]
    for text in ("100% sure", "a_b", "axb", "back\\slash"):
        api.new_post(user, text)
    found = api.get("/api/posts", params={"keyword": keyword}).json()
    assert [post["content"] for post in found] == expected


def test_search_without_keyword_is_empty(api):
    make_posts(api, 2)
    assert api.get("/api/posts/search").json() == []
    assert api.get("/api/posts/search?keyword=").json() == []


def test_date_range_is_inclusive_utc_days(api, sql):
    user = api.new_user("alice")["id"]
    days = {}
    for stamp in ("2026-01-01 00:00:00+00", "2026-01-02 23:59:59.999999+00", "2026-01-03 00:00:00+00",
                  "2026-01-02 20:00:00-05"):
        post = api.new_post(user, stamp)
        sql.execute("UPDATE posts SET created_at = %s WHERE id = %s", (stamp, post["id"]))
        days[stamp] = post["id"]
    between = ids(api.get("/api/posts?start_date=2026-01-02&end_date=2026-01-02"))
    assert between == [days["2026-01-02 23:59:59.999999+00"]]
    assert ids(api.get("/api/posts?start_date=2026-01-03")) == [days["2026-01-02 20:00:00-05"],
                                                                 days["2026-01-03 00:00:00+00"]]
    assert ids(api.get("/api/posts?end_date=2026-01-01")) == [days["2026-01-01 00:00:00+00"]]


@pytest.mark.parametrize("query", [
    "sort_by=oldest", "limit=0", "limit=101", "limit=x", "start_date=2026-13-01", "end_date=yesterday",
    "start_date=2026-02-02&end_date=2026-02-01", "cursor=forged.cursor", "author_id=abc", "author_id=0",
    "followed_by=-1", "author_id=1.5",
])
def test_bad_feed_parameters_are_422(api, query):
    assert_problem(api.get(f"/api/posts?{query}"), 422)
    assert_problem(api.get(f"/api/posts/search?keyword=x&{query}"), 422)


@pytest.mark.parametrize("path", [
    "/api/posts?author_id=999", "/api/posts?author_id=999&start_date=2000-01-01",
    "/api/posts?author_id=999&sort_by=trending", "/api/posts?author_id=999&include_replies=true",
    "/api/posts/search?keyword=hello&author_id=999", "/api/posts?followed_by=999",
    "/api/posts?followed_by=999&sort_by=trending", "/api/posts?followed_by=999&keyword=hello",
])
def test_unknown_author_or_follower_is_404_in_every_shape_of_page(api, path):
    """A page with posts shows its author exists, so existence is asked only of an empty page: in
    every shape of page (one statement, ids then posts, home timeline) the 404 must still come."""
    someone = api.new_user("someone")["id"]
    api.new_post(someone, "hello there")
    assert_problem(api.get(path), 404)


def test_empty_parameters_count_as_absent(api):
    posts = make_posts(api, 2)
    assert ids(api.get("/api/posts?sort_by=&keyword=&author_id=&limit=&cursor=&start_date=")) == \
        [p["id"] for p in reversed(posts)]


@pytest.mark.parametrize("query", ["limit=%FF", "sort_by=%FF", "author_id=%FF", "start_date=%FF", "cursor=%FF",
                                   "keyword=%FF", "keyword=" + "x" * 257])
def test_undecodable_or_oversized_parameters_are_422_not_ignored(api, query):
    assert_problem(api.get(f"/api/posts?{query}"), 422)


# --- every feed, paged to its end over posts that share their created_at ------------------------

TIES_DAY = date(2026, 3, 2)
# Few distinct moments for many posts, so that page boundaries fall inside runs of equal created_at;
# microseconds and both edges of TIES_DAY, so that a cursor or a date bound that loses precision or
# shifts the time zone shows.
TIES_STAMPS = [datetime(2026, 3, 1, 23, 59, 59, 999999, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC),
               datetime(2026, 3, 2, 12, 0, 0, 500000, tzinfo=UTC), datetime(2026, 3, 2, 23, 59, 59, 999999, tzinfo=UTC),
               datetime(2026, 3, 3, tzinfo=UTC)]


@dataclass
class Tied:
    users: dict[str, int]
    posts: list[dict]  # id, user_id, type, content, created_at, score


@pytest.fixture
def tied(api, sql) -> Tied:
    """130 posts, reposts and quotes by five users (the reader follows bob and carol) at five moments
    only, with equal trending scores too, inserted in shuffled order so that ids do not follow time."""
    users = {name: api.new_user(name)["id"] for name in ("alice", "bob", "carol", "dave", "reader")}
    api.follow(users["reader"], users["bob"])
    api.follow(users["reader"], users["carol"])
    rng = random.Random(20260302)
    originals = [(rng.choice(list(users.values())), f"{rng.choice(['needle', 'NeEdLe', 'hay'])} {n}",
                  rng.choice(TIES_STAMPS), rng.choice([0, 0, 1, 2])) for n in range(100)]
    rng.shuffle(originals)
    posts = []
    for user_id, content, stamp, score in originals:
        post_id = sql.execute(
            "INSERT INTO posts (user_id, type, content, created_at, repost_count) VALUES (%s, 'post', %s, %s, %s) "
            "RETURNING id", (user_id, content, stamp, score)).fetchone()[0]
        posts.append({"id": post_id, "user_id": user_id, "type": "post", "content": content, "created_at": stamp,
                      "score": score})
    targets = rng.sample(posts, 30)
    for n, target in enumerate(targets):
        user_id, stamp, score = rng.choice(list(users.values())), rng.choice(TIES_STAMPS), rng.choice([0, 1])
        kind, content = ("repost", None) if n % 2 else ("quote", f"quote {rng.choice(['needle', 'hay'])} {n}")
        post_id = sql.execute(
            "INSERT INTO posts (user_id, type, content, repost_id, created_at, quote_count) "
            "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id", (user_id, kind, content, target["id"], stamp, score)
        ).fetchone()[0]
        posts.append({"id": post_id, "user_id": user_id, "type": kind, "content": content, "created_at": stamp,
                      "score": score})
    return Tied(users, posts)


def _on_ties_day(post):
    return post["created_at"].astimezone(UTC).date() == TIES_DAY


def _has_needle(post):
    return post["type"] != "repost" and "needle" in post["content"].lower()


# name: (path and query, given the users; which posts belong)
TIED_FEEDS = {
    "everything": (lambda u: "/api/posts?", lambda p, u: True),
    "author": (lambda u: f"/api/posts?author_id={u['alice']}", lambda p, u: p["user_id"] == u["alice"]),
    "followed_by": (lambda u: f"/api/posts?followed_by={u['reader']}",
                    lambda p, u: p["user_id"] in (u["bob"], u["carol"])),
    "keyword": (lambda u: "/api/posts?keyword=needle", lambda p, u: _has_needle(p)),
    "search": (lambda u: "/api/posts/search?keyword=NEEDLE", lambda p, u: _has_needle(p)),
    "one day": (lambda u: f"/api/posts?start_date={TIES_DAY}&end_date={TIES_DAY}", lambda p, u: _on_ties_day(p)),
    "from a day on": (lambda u: f"/api/posts?start_date={TIES_DAY}",
                      lambda p, u: p["created_at"] >= TIES_STAMPS[1]),
    "until a day": (lambda u: f"/api/posts?end_date={TIES_DAY}", lambda p, u: p["created_at"] < TIES_STAMPS[4]),
    "author on a day": (lambda u: f"/api/posts?author_id={u['bob']}&start_date={TIES_DAY}&end_date={TIES_DAY}",
                        lambda p, u: p["user_id"] == u["bob"] and _on_ties_day(p)),
    "followed_by, keyword, day": (
        lambda u: f"/api/posts?followed_by={u['reader']}&keyword=needle&start_date={TIES_DAY}&end_date={TIES_DAY}",
        lambda p, u: p["user_id"] in (u["bob"], u["carol"]) and _has_needle(p) and _on_ties_day(p)),
}


@pytest.mark.parametrize("order", ["latest", "trending"])
@pytest.mark.parametrize("feed", list(TIED_FEEDS))
def test_every_feed_pages_to_its_end_over_equal_timestamps(api, tied, feed, order):
    """Following Link to the end, at several page sizes, yields exactly the posts the filters select,
    each once, in the order's total order (ties on created_at, and on score, broken by id)."""
    path, belongs = TIED_FEEDS[feed]
    if order == "latest":
        def rank(post):
            return post["created_at"], post["id"]
    else:
        def rank(post):
            return post["score"], post["created_at"], post["id"]
    expected = [p["id"] for p in sorted((p for p in tied.posts if belongs(p, tied.users)), key=rank, reverse=True)]
    assert len(expected) >= 8, "the data should give every feed several pages"
    for limit in (1, 4, 10):
        size = "" if limit == 10 else f"&limit={limit}"  # 10: the default page size
        pages = walk(api, f"{path(tied.users)}&sort_by={order}{size}", max_pages=len(expected) + 1)
        seen = list(chain.from_iterable(pages))
        assert seen == expected, f"limit={limit}: {len(seen)} items, {len(set(seen))} distinct, " \
                                 f"missing {sorted(set(expected) - set(seen))}, extra {sorted(set(seen) - set(expected))}"
        # Full pages, then a last one that is not empty: no Link is given when nothing follows.
        assert all(len(page) == limit for page in pages[:-1]) and 1 <= len(pages[-1]) <= limit, \
            [len(page) for page in pages]
