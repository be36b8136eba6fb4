"""Every named query, EXPLAINed over about 50,000 seeded posts: none may scan posts or follows
sequentially."""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from psycopg import sql as pgsql

from loadtests.harness import seed
from posterr.db import load_queries
from posterr.services.pagination import EARLIEST, LATEST, MAX_ID, MAX_SCORE
from posterr.services.posts import GLOBAL_FEED
from posterr.validation import MAX_LIMIT, has_trigram
from tests.conftest import TABLES
from tests.integration.plans import nodes, sequential_scans

QUERIES = load_queries()
NOW = datetime.now(UTC)
DIGEST = bytes(32)
AFTER = {"after_score": None, "after_created_at": None, "after_id": None}
FEED = {"author_id": None, "followed_by": None, "pattern": None, "since": None, "until": None,
        "floor_created_at": None, "floor_id": None, "include_replies": False, "limit": 11, **AFTER}
# The floor of a keyword without a trigram (recent_posts_floor), here about the newest tenth of the seed.
FLOOR = {"floor_created_at": NOW - timedelta(hours=1), "floor_id": 20000}

# One or more parameter sets per named query: (label, parameters).
CASES = {
    "insert_user": [("new", {"username": "planner", "password_hash": None})],
    "user_by_id": [("one", {"id": 5})],
    "author_of_new_post": [("legacy", {"id": 5, "token_digest": None}), ("token", {"id": 5, "token_digest": DIGEST})],
    "account_by_username": [("one", {"username": "SEED42"})],
    "set_password_hash": [("one", {"id": 5, "password_hash": "$argon2id$"})],
    "insert_token": [("new", {"user_id": 5, "digest": DIGEST, "hint": "pst_abcd", "scopes": ["read"],
                              "token_name": "", "expires_in": 60})],
    "live_token": [("one", {"digest": DIGEST})],
    "touch_tokens": [("batch", {"ids": [5, 6], "minutes": [NOW, NOW]})],
    "write_token_is_live": [("one", {"digest": DIGEST, "user_id": 5})],
    "tokens_page": [("first", {"user_id": 5, "limit": 11, "before_created_at": LATEST, "before_id": MAX_ID})],
    "revoke_token": [("one", {"id": 5, "user_id": 5}), ("an operator's", {"id": 5, "user_id": None})],
    "revoke_user_tokens": [("all", {"user_id": 5})],
    "users_page": [("first", {"after_id": None, "username": None, "limit": 11}),
                   ("deep", {"after_id": 1500, "username": None, "limit": 11}),
                   ("lookup", {"after_id": None, "username": "SEED42", "limit": 11})],
    "lock_users": [("pair", {"follower_id": 1, "followee_id": 2})],
    "insert_follow": [("pair", {"follower_id": 1, "followee_id": 2})],
    "delete_follow": [("pair", {"follower_id": 1, "followee_id": 2})],
    "follow_exists": [("pair", {"follower_id": 1, "followee_id": 2})],
    "follow_list_page": [
        (f"{kind} {page}", {"list": kind, "user_id": 3, "limit": 11, **start})
        for kind in ("followers", "following")
        for page, start in (("first", {"before_followed_at": LATEST, "before_id": MAX_ID}),
                            ("next", {"before_followed_at": NOW - timedelta(days=1), "before_id": 9}))],
    "ping": [("ping", {})],
    "statement_stats": [("all", {})],
    "running_statements": [("all", {})],
    "replies_page": [("first", {"post_id": 10, "after_created_at": None, "after_id": None, "limit": 11}),
                     ("next", {"post_id": 10, "after_created_at": NOW - timedelta(days=1), "after_id": 9, "limit": 11})],
    "thread_ancestors": [("reply", {"post_id": 10, "limit": 40})],
    "thread_descendants": [("post", {"post_id": 10, "limit": 200})],
    "post_exists": [("one", {"id": 10})],
    "write_position": [("now", {})],
    "primary_position": [("now", {})],
    "replica_position": [("now", {})],
    "member_state": [("now", {})],
    "insert_post": [("post", {"user_id": 1, "type": "post", "content": "x", "repost_id": None, "reply_to_id": None,
                              "day": date.today(), "daily_limit": 5}),
                    ("reply", {"user_id": 1, "type": "reply", "content": "x", "repost_id": None, "reply_to_id": 10,
                               "day": date.today(), "daily_limit": 5})],
    "repost_exists": [("one", {"repost_id": 10, "user_id": 3})],
    "post_by_id": [("one", {"id": 10})],
    "posts_by_ids": [("page", {"ids": list(range(100, 111))})],
    "posts_estimate": [("estimate", {})],
    "recent_posts_floor": [("the contract's window", {"window": 100_000}), ("a window within the seed", {"window": 5_000})],
    "posts_newer_than": [("near the top", {"created_at": NOW - timedelta(minutes=5), "id": 49_000, "most": 100_000})],
    "search_segment_bounds": [("all", {})],
    "seal_search_segments": [("the job", {})],
    "claim_idempotency_key": [("new", {"scope": "POST /api/posts", "user_id": 1, "key": "k", "fingerprint": "f",
                                       "claim": 7, "token_digest": DIGEST})],
    "complete_idempotency_key": [("one", {"scope": "POST /api/posts", "user_id": 1, "key": "k", "status": 201,
                                          "location": "/api/posts/1", "body": b"{}", "claim": 7})],
    "release_idempotency_key": [("one", {"scope": "POST /api/posts", "user_id": 1, "key": "k", "claim": 7})],
    "redelivery_claim": [("one", {"scope": "POST /api/posts", "user_id": 1, "key": "k"})],
    "delete_expired_idempotency_keys": [("batch", {})],
    "fanout_followers": [("up to the limit", {"user_id": 3, "limit": 1001})],
    "timeline_followees": [("reader", {"user_id": 7, "fanout_max": 1000})],
    "page_by_authors_latest": [
        ("build", {"author_ids": list(range(1, 201)), "limit": 800, "after_created_at": None, "after_id": None}),
        ("merge after a cursor", {"author_ids": [3, 5], "limit": 11, "after_created_at": NOW - timedelta(days=90),
                                  "after_id": 25000})],
}
FEED_CASES = [
    ("global", {}),
    ("global with replies", {"include_replies": True}),
    ("global deep page", {"after_created_at": NOW - timedelta(days=90), "after_id": 25000, "after_score": 0}),
    ("author", {"author_id": 7}),
    ("author with replies (Posts and Replies)", {"author_id": 7, "include_replies": True}),
    ("author deep page", {"author_id": 7, "after_created_at": NOW - timedelta(days=90), "after_id": 25000,
                          "after_score": 0}),
    ("followed_by", {"followed_by": 7}),
    ("followed_by with replies", {"followed_by": 7, "include_replies": True}),
    ("followed_by and author", {"followed_by": 7, "author_id": 8}),
    ("rare keyword", {"pattern": "%axolotl%"}),
    ("keyword with replies", {"pattern": "%axolotl%", "include_replies": True}),
    ("common keyword", {"pattern": "%the%"}),
    ("absent keyword", {"pattern": "%nothing-like-this%"}),
    ("two-letter keyword", {"pattern": "%ok%"}),
    ("keyword by author", {"pattern": "%zebra%", "author_id": 7}),
    ("date range", {"since": NOW - timedelta(days=30), "until": NOW - timedelta(days=29)}),
    ("keyword and dates", {"pattern": "%kitten%", "since": NOW - timedelta(days=60), "until": NOW}),
    ("keyword without a trigram", {"pattern": "%zq%", **FLOOR}),
    ("common keyword without a trigram", {"pattern": "%an%", **FLOOR}),
    ("keyword without a trigram, deep page", {"pattern": "%a.b%", **FLOOR, "after_created_at": NOW - timedelta(minutes=30),
                                              "after_id": 25000, "after_score": 0}),
    ("keyword without a trigram by author", {"pattern": "%zq%", "author_id": 7, **FLOOR}),
    ("keyword without a trigram with replies and dates", {"pattern": "%~~%", "include_replies": True, **FLOOR,
                                                          "since": NOW - timedelta(days=1), "until": NOW}),
]
# A keyword reaches these with an author only (services/search.py): any other, post_search's segments.
for name in ("page_latest", "page_trending"):
    CASES[name] = [(label, {**FEED, **params}) for label, params in FEED_CASES
                   if "followed_by" not in params and ("pattern" not in params or "author_id" in params)]
CASES["page_latest_scan"] = [(label, {**FEED, "scan": 20_000, **params}) for label, params in FEED_CASES
                             if "pattern" in params and "followed_by" not in params]
# A time range of post_search (search_segments_page takes one at a time, newest first).
SEARCH_CASES = [(label, {**FEED, **params}) for label, params in FEED_CASES
                if "pattern" in params and has_trigram(params["pattern"]) and "author_id" not in params]
SEGMENT_RANGES = [("newest", {"since": NOW - timedelta(days=1), "until": None}),
                  ("oldest", {"since": None, "until": NOW - timedelta(days=90)})]
CASES["search_segments_page"] = [(f"{label}, {where}", {**params, **bounds})
                                 for label, params in SEARCH_CASES for where, bounds in SEGMENT_RANGES]
CASES["search_trending_page"] = SEARCH_CASES
for name in ("page_recent_latest", "page_recent_trending"):
    CASES[name] = [(label, {**FEED, **params}) for label, params in FEED_CASES
                   if "floor_id" in params and "followed_by" not in params]
for name in ("page_followed_latest", "page_followed_trending"):
    CASES[name] = [(label, {**FEED, "followed_by": 7, **params}) for label, params in FEED_CASES] + [
        ("follows nobody", {**FEED, "followed_by": 1999})]

# The one-statement pages take every bound (pagination.EARLIEST, LATEST, MAX_ID when unset).
WINDOW = {"since": EARLIEST, "before_created_at": LATEST, "before_id": MAX_ID, "include_replies": False, "limit": 11}
WINDOW_CASES = [
    ("first page", {}),
    ("with replies", {"include_replies": True}),
    ("deep page", {"before_created_at": NOW - timedelta(days=90), "before_id": 25000}),
    ("date range", {"since": NOW - timedelta(days=30), "before_created_at": NOW - timedelta(days=29), "before_id": 0}),
]
TRENDING_CASES = [("first page", {"before_score": MAX_SCORE}),
                  ("deep page", {"before_score": 0, "before_created_at": NOW - timedelta(days=90), "before_id": 25000})]
FEEDS = [("global", {"feed": GLOBAL_FEED}), ("author", {"feed": 7})]
CASES["posts_page_latest"] = [(f"{feed} {label}", {**WINDOW, **which, **params})
                              for feed, which in FEEDS for label, params in WINDOW_CASES]
CASES["posts_page_trending"] = [(f"{feed} {label}", {**WINDOW, **which, **params})
                                for feed, which in FEEDS for label, params in TRENDING_CASES]

PLAN_CASES = [(name, label, params) for name, cases in CASES.items() for label, params in cases]


def test_every_named_query_has_plan_cases():
    assert set(CASES) == set(QUERIES)


@pytest.fixture(scope="module")
def seeded(servers, sql):
    sql.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
    seed(servers.database_url, users=2000, posts=50_000, follows_per_user=15, progress=io.StringIO())
    assert sql.execute("SELECT count(*) FROM posts").fetchone()[0] > 45_000
    sql.execute("SELECT seal_search_segments(10000, split => true)")  # a segment per 10,000 posts
    sql.execute("ANALYZE post_search")
    yield sql


@pytest.fixture(autouse=True)
def clean_state():
    """These tests read the seeded data (the module-wide `seeded` fixture), so nothing is truncated."""


def plan_as_run(sql, name: str, params: dict) -> dict:
    """The plan the app runs `name` with: a per-call query's, made with its values; a prepared one's
    generic plan (PostgreSQL may settle on it after five executions), by PREPARE and EXPLAIN EXECUTE
    under force_generic_plan, since an EXPLAIN with parameters is always planned with their values."""
    query = QUERIES[name]
    if query.per_call_plan:
        return sql.execute(f"EXPLAIN (FORMAT JSON) {query.sql}", params).fetchone()[0][0]["Plan"]
    names = list(dict.fromkeys(re.findall(r"%\((\w+)\)s", query.sql)))
    numbered = re.sub(r"%\((\w+)\)s", lambda found: f"${names.index(found[1]) + 1}", query.sql)
    sql.execute(f"PREPARE plan_check AS {numbered}")
    sql.execute("SET plan_cache_mode = force_generic_plan")
    try:
        explain = pgsql.SQL("EXPLAIN (FORMAT JSON) EXECUTE plan_check({})").format(
            pgsql.SQL(", ").join(pgsql.Literal(params[name]) for name in names))
        return sql.execute(explain.as_string(None) if names else "EXPLAIN (FORMAT JSON) EXECUTE plan_check"
                           ).fetchone()[0][0]["Plan"]
    finally:
        sql.execute("RESET plan_cache_mode")
        sql.execute("DEALLOCATE plan_check")


@pytest.mark.parametrize("name, label, params", PLAN_CASES, ids=[f"{n}-{lbl}" for n, lbl, _ in PLAN_CASES])
def test_no_sequential_scan_of_big_tables(seeded, name, label, params):
    plan = plan_as_run(seeded, name, params)
    # users (2,000 rows here) may be hashed whole when that is cheaper; posts and follows never.
    scans = [table for table in sequential_scans(plan) if table in ("posts", "follows")]
    assert not scans, f"{name} ({label}) scans {scans} sequentially:\n{plan}"


def node_types(plan: dict) -> set[str]:
    return {plan["Node Type"]}.union(*(node_types(child) for child in plan.get("Plans", [])))


def reads(plan: dict) -> bool:
    """A scan, or what only gates or merges scans (a Result with a one-time filter, an Append): a
    node that reads rows rather than joins them."""
    if "Scan" in plan["Node Type"]:
        return True
    return plan["Node Type"] in ("Result", "Append", "Merge Append") and all(map(reads, plan.get("Plans", [])))


def max_rows_above_scans(plan: dict) -> float:
    """The most rows any node but a read is estimated to pass on: what the joins are planned for."""
    own = 0 if reads(plan) else plan["Plan Rows"]
    return max([own, *(max_rows_above_scans(child) for child in plan.get("Plans", []))])


ONE_STATEMENT_PAGES = ("posts_page_latest", "posts_page_trending", "follow_list_page")


@pytest.mark.parametrize("name, label, params", [case for case in PLAN_CASES if case[0] in ONE_STATEMENT_PAGES],
                         ids=lambda value: value if isinstance(value, str) else "")
def test_one_statement_pages_walk_an_index_and_join_only_the_page(seeded, name, label, params):
    """Their generic plan (the one the app settles on) is made for a page, not for a tenth of the
    table, as a LIMIT parameter alone is costed (at 1M posts that plan memoized or hashed users and
    posts on every page, 3 to 16 ms): it reads the page in index order and looks up each post's
    details by key, with no sort, hash or memo."""
    plan = plan_as_run(seeded, name, params)
    assert max_rows_above_scans(plan) <= MAX_LIMIT + 1, plan
    assert not node_types(plan) & {"Sort", "Incremental Sort", "Hash", "Hash Join", "Merge Join", "Memoize"}, plan


# Each one-statement page serves two lists from a view of two branches, one index each.
BRANCH_INDEXES = {
    "posts_page_latest": {"posts_created_at_id_idx", "posts_user_id_created_at_id_idx"},
    "posts_page_trending": {"posts_trending_idx", "posts_user_trending_idx"},
    "follow_list_page": {"follows_followee_created_idx", "follows_follower_created_idx"},
}


@pytest.mark.parametrize("name, label, params", [case for case in PLAN_CASES if case[0] in ONE_STATEMENT_PAGES],
                         ids=lambda value: value if isinstance(value, str) else "")
def test_each_list_of_a_one_statement_page_walks_its_own_index_from_its_position(seeded, name, label, params):
    """One statement serves two lists (the global feed and an author's; followers and following): in
    its generic plan each list has its own index walk, which starts at the page's position (an index
    condition, so a deep page reads nothing before it), and a list the page is not for is skipped by
    a one-time filter (an author's walk for the global feed finds no user 0)."""
    plan = plan_as_run(seeded, name, params)
    walks = {node["Index Name"]: node["Index Cond"] for node in nodes(plan)
             if node.get("Index Name") in BRANCH_INDEXES[name]}
    assert set(walks) == BRANCH_INDEXES[name], plan
    assert all("ROW(" in condition for condition in walks.values()), walks
    assert any("One-Time Filter" in node for node in nodes(plan)), plan


EXECUTIONS = 12  # the cases of each page in turn


@pytest.mark.parametrize("name", ONE_STATEMENT_PAGES)
def test_the_app_settles_on_the_one_statement_pages_generic_plan(seeded, name):
    """PostgreSQL plans a prepared statement with its values five times, then keeps the generic plan
    unless it costs more than those did. The one-statement pages are built for their generic plan (the
    test above): it must be the one the app settles on, or every call would be planned again."""
    query = QUERIES[name]
    names = list(dict.fromkeys(re.findall(r"%\((\w+)\)s", query.sql)))
    numbered = re.sub(r"%\((\w+)\)s", lambda found: f"${names.index(found[1]) + 1}", query.sql)
    seeded.execute("DEALLOCATE ALL")
    seeded.execute(f"PREPARE settling AS {numbered}")
    try:
        for number in range(EXECUTIONS):
            params = CASES[name][number % len(CASES[name])][1]
            seeded.execute(pgsql.SQL("EXECUTE settling({})").format(
                pgsql.SQL(", ").join(pgsql.Literal(params[name]) for name in names))).fetchall()
        generic, custom = seeded.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = 'settling'").fetchone()
    finally:
        seeded.execute("DEALLOCATE settling")
    assert (generic, custom) == (EXECUTIONS - 5, 5)


WINDOWED = [case for case in PLAN_CASES
            if case[2].get("floor_created_at") and case[0] in ("page_latest_scan", "page_recent_latest",
                                                               "page_recent_trending")]


@pytest.mark.parametrize("name, label, params", WINDOWED, ids=[f"{n}-{lbl}" for n, lbl, _ in WINDOWED])
def test_a_keyword_without_a_trigram_reads_only_the_newest_posts(seeded, name, label, params):
    """Contract v2.1: its floor (recent_posts_floor) is an index condition of the walk down
    posts_created_at_id_idx, or the author's posts_user_id_created_at_id_idx, so the search reads no
    post older than the window, whatever the order; and the trigram index, which has nothing to look
    up for such a keyword (every post would be a candidate) or only a padded trigram (`a.b`), is never
    asked. (page_latest and page_trending take the floor too, but are not planned for it: the service
    sends such a keyword to these three.)"""
    plan = plan_as_run(seeded, name, params)
    assert "posts_content_trgm_idx" not in {node.get("Index Name") for node in nodes(plan)}, plan
    walks = [node for node in nodes(plan)
             if node.get("Index Name") in ("posts_created_at_id_idx", "posts_user_id_created_at_id_idx")]
    assert walks and all(">=" in node["Index Cond"] for node in walks), plan


def test_a_search_reads_only_the_segments_of_its_range(seeded):
    """search_segments_page is planned with its time range, so post_search is pruned to the segments
    the range overlaps, each searched through its own trigram index: a rare word pays for its
    matches there, not in the table."""
    newest = seeded.execute("SELECT starts_at FROM search_segments ORDER BY starts_at DESC LIMIT 1").fetchone()[0]
    plan = plan_as_run(seeded, "search_segments_page", {**FEED, "pattern": "%axolotl%", "since": newest, "until": None})
    read = {node["Relation Name"] for node in nodes(plan) if "Relation Name" in node}
    assert len(read) == 2 and "post_search_open" in read, plan
    assert any(node.get("Index Name", "").endswith("_content_idx") for node in nodes(plan)), plan
