"""GET /api/posts and /api/posts/search: filters, sort orders and keyset pagination."""

from __future__ import annotations

import re
from itertools import chain
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.integration.conftest import assert_problem


def next_url(response) -> str | None:
    link = response.headers.get("Link")
    return re.fullmatch(r'<([^>]+)>; rel="next"', link).group(1) if link else None


def walk(api, url: str) -> list[list[int]]:
    """The ids of every page, following Link headers."""
    pages = []
    while url:
        response = api.get(url)
        assert response.status_code == 200, response.text
        pages.append([post["id"] for post in response.json()])
        url = next_url(response)
    return pages


def make_posts(api, count: int, prefix: str = "post") -> list[dict]:
    """`count` posts spread over as many users as the daily limit needs, oldest first."""
    users = [api.new_user(f"{prefix}{n}")["id"] for n in range((count + 4) // 5)]
    return [api.new_post(users[n // 5], f"{prefix} number {n}") for n in range(count)]


def ids(response) -> list[int]:
    assert response.status_code == 200, response.text
    return [post["id"] for post in response.json()]


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


def test_unknown_author_or_follower_is_404(api):
    assert_problem(api.get("/api/posts?author_id=999"), 404)
    assert_problem(api.get("/api/posts?followed_by=999"), 404)


def test_empty_parameters_count_as_absent(api):
    posts = make_posts(api, 2)
    assert ids(api.get("/api/posts?sort_by=&keyword=&author_id=&limit=&cursor=&start_date=")) == \
        [p["id"] for p in reversed(posts)]


@pytest.mark.parametrize("query", ["limit=%FF", "sort_by=%FF", "author_id=%FF", "start_date=%FF", "cursor=%FF",
                                   "keyword=%FF", "keyword=" + "x" * 257])
def test_undecodable_or_oversized_parameters_are_422_not_ignored(api, query):
    assert_problem(api.get(f"/api/posts?{query}"), 422)
