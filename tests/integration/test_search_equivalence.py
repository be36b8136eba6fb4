"""Keyword search gives exactly what a plain scan gives: for random words and filters, its pages are
the posts whose own text holds the word in any case (never a repost; a quote by its own text;
replies only with include_replies), in the feed's order, whichever path found them (a walk down the
newest posts, a second longer walk, or the time segments of post_search newest first, here a
segment per SEGMENT posts, with ids out of time order). A keyword without three consecutive letters
or digits (`t`, `%`, `a_b`, `#42`) is looked for among the newest RECENT_POSTS posts only, and says so
in Search-Scope (contract v2.1); the table here is smaller than that window, so the scan and the
header tell whether the rule was applied, and tests/integration/test_search_scope.py crosses a floor."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest

from posterr.services.search import RECENT_POSTS, SCAN_FROM_POSTS
from posterr.validation import has_trigram
from tests.conftest import running_app
from tests.integration.conftest import Api, statement_calls
from tests.integration.pages import next_url

SEED = 20261202
POSTS = SCAN_FROM_POSTS + 4_000  # enough for the walks to be tried (the service asks PostgreSQL's estimate)
START = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 60
FILLER = ["lorem", "ipsum", "dolor", "sit", "amet", "elit", "sed", "do", "tempor", "#4", "#4242", "100%", "a_b",
          "snake_case", "back\\slash"]
SEGMENT = 2_000
# Only in posts of the first FOSSIL_DAYS: older than every segment but the oldest few.
FOSSIL, FOSSIL_DAYS = "fossil", 2
# word: the share of posts that hold it. From the share of a common word down to one too rare to
# fill a page from the newest 2,000 posts; "otter" needs a second walk for a page of 100.
MARKED = {"the": 0.3, "otter": 0.045, "zebra": 0.01, "quokka": 0.0007}
KEYWORDS = ["the", "THE", "otter", "Zebra", "quokka", "QUOKKA", "ebr", "otte", "#42", "100%", "a_b", "%", "_",
            "e_cas", "k\\sla", "\\", "absent", "t", "Fossil"]
# Pages 1 to 3 of each, whatever the random draws: rare and common words, a word inside others, the
# LIKE wildcards and escape taken literally, a word found only in the oldest segments.
FIXED = [{"keyword": keyword, "limit": limit, "sort_by": "latest"} for keyword, limit in (
    ("quokka", 2), ("the", 10), ("ebr", 10), ("otte", 100), ("100%", 10), ("e_cas", 10), ("k\\sla", 10),
    ("fossil", 5), ("fossil", 100))] + [{"keyword": "fossil", "limit": 5, "sort_by": "trending"}]
# A few moments shared by many posts, so that page boundaries fall inside runs of equal created_at.
TIED = [START + timedelta(days=day, microseconds=1) for day in (3, 30, 59)]


@pytest.fixture
def search_api(servers):
    """An app of its own: a new process asks PostgreSQL how many posts there are (the walks are only
    tried on a large table), where the suite's app may have asked an hour ago."""
    with running_app(servers, "search-equivalence.log") as base:
        yield Api(base)


def test_search_pages_equal_a_plain_scan(search_api, sql):
    posts = _seed(sql, random.Random(SEED))
    assert sql.execute("SELECT seal_search_segments(%s, split => true)", (SEGMENT,)).fetchone()[0] > 5
    rng = random.Random(SEED + 1)
    scans, segment_reads = statement_calls(sql, "page_latest_scan"), statement_calls(sql, "search_segments_page")
    users = sorted({post["user_id"] for post in posts})
    for query in [*FIXED, *(_random_query(rng, users) for _ in range(70))]:
        path = rng.choice(["/api/posts", "/api/posts/search"])
        expected = [post["id"] for post in _plain_scan(posts, query)]
        seen = _first_pages(search_api, path, query, pages=3, recent=not has_trigram(query["keyword"]))
        assert seen == expected[:len(seen)], f"{path} {query}"
        assert len(seen) == min(len(expected), 3 * query["limit"]), f"{path} {query}"
    assert statement_calls(sql, "page_latest_scan") > scans, "no search walked down the newest posts"
    assert statement_calls(sql, "search_segments_page") > segment_reads, "no search asked the segments"


def _random_query(rng: random.Random, users: list[int]) -> dict:
    query = {"keyword": rng.choice(KEYWORDS), "limit": rng.choice([1, 10, 100]),
             "sort_by": rng.choice(["latest", "latest", "trending"])}
    if rng.random() < 0.3:
        query["author_id"] = rng.choice(users)
    if rng.random() < 0.3:
        query["include_replies"] = "true"
    if rng.random() < 0.3:
        first = START.date() + timedelta(days=rng.randrange(DAYS))
        query.update(rng.choice([{"start_date": first}, {"end_date": first},
                                 {"start_date": first, "end_date": first + timedelta(days=rng.randrange(8))}]))
    return query


def _first_pages(api: Api, path: str, query: dict, pages: int, recent: bool) -> list[int]:
    """The ids of up to `pages` pages, following Link; every page but the last is full, and each has
    Search-Scope: recent when the keyword is searched among the newest posts only, else none."""
    response = api.get(path, params=query)
    seen = []
    for _ in range(pages):
        assert response.status_code == 200, response.text
        assert response.headers.get("Search-Scope") == ("recent" if recent else None), f"{path} {query}"
        page = [post["id"] for post in response.json()]
        seen += page
        url = next_url(response)
        if url is None:
            break
        assert len(page) == query["limit"], f"{path} {query}: a page of {len(page)} followed by a Link"
        response = api.get(url)
    return seen


def _plain_scan(posts: list[dict], query: dict) -> list[dict]:
    word = query["keyword"].lower()
    if not has_trigram(word):  # the newest RECENT_POSTS of every post, reposts included
        posts = sorted(posts, key=lambda post: (post["created_at"], post["id"]), reverse=True)[:RECENT_POSTS]
    since = _midnight(query["start_date"]) if "start_date" in query else None
    until = _midnight(query["end_date"]) + timedelta(days=1) if "end_date" in query else None
    found = [post for post in posts
             if post["type"] != "repost" and word in post["content"].lower()
             and (post["type"] != "reply" or "include_replies" in query)
             and post["user_id"] == query.get("author_id", post["user_id"])
             and (since is None or post["created_at"] >= since) and (until is None or post["created_at"] < until)]
    if query["sort_by"] == "trending":
        return sorted(found, key=lambda post: (post["score"], post["created_at"], post["id"]), reverse=True)
    return sorted(found, key=lambda post: (post["created_at"], post["id"]), reverse=True)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _seed(sql, rng: random.Random) -> list[dict]:
    """POSTS posts, reposts, quotes and replies by 12 users, ids not in the order of time, written
    straight to PostgreSQL (the API's daily limit would take weeks), then ANALYZEd."""
    users = [row[0] for row in sql.execute(
        "INSERT INTO users (username) SELECT 'searcher' || g FROM generate_series(1, 12) g RETURNING id")]
    posts: list[dict] = []
    reposted = set()  # (post, user): a user reposts a post once
    for post_id in range(1, POSTS + 1):
        kind = rng.choices(["post", "repost", "quote", "reply"], [75, 10, 10, 5])[0] if posts else "post"
        target, user_id = rng.choice(posts) if posts else None, rng.choice(users)
        if kind == "repost" and (target["id"], user_id) in reposted or kind != "post" and target["type"] == "repost":
            kind = "post"
        if kind == "repost":
            reposted.add((target["id"], user_id))
        created_at = (rng.choice(TIED) if rng.random() < 0.05
                      else START + timedelta(seconds=rng.randrange(DAYS * 86400), microseconds=rng.randrange(10**6)))
        posts.append({"id": post_id, "user_id": user_id, "type": kind,
                      "content": None if kind == "repost" else _content(rng, created_at),
                      "repost_id": target["id"] if kind in ("repost", "quote") else None,
                      "reply_to_id": target["id"] if kind == "reply" else None,
                      "created_at": created_at, "score": rng.choice([0, 0, 0, 1, 2])})
    sql.execute(
        "INSERT INTO posts (id, user_id, type, content, repost_id, reply_to_id, created_at, repost_count) "
        "OVERRIDING SYSTEM VALUE SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[], "
        "%s::bigint[], %s::bigint[], %s::timestamptz[], %s::integer[])",
        [[post[field] for post in posts] for field in
         ("id", "user_id", "type", "content", "repost_id", "reply_to_id", "created_at", "score")])
    sql.execute("SELECT setval(pg_get_serial_sequence('posts', 'id'), %s)", (POSTS,))
    sql.execute("ANALYZE posts")
    return posts


def _content(rng: random.Random, created_at: datetime) -> str:
    words = rng.choices(FILLER, k=rng.randint(2, 7))
    if created_at < START + timedelta(days=FOSSIL_DAYS) and rng.random() < 0.05:
        words.append(FOSSIL)
    for word, share in MARKED.items():
        if rng.random() < share:
            words.insert(rng.randrange(len(words) + 1), rng.choice([word, word.upper(), word.capitalize()]))
    return " ".join(words)
