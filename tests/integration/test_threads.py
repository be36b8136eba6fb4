"""Threads in PostgreSQL (db/queries/threads.sql) over a thread 1,000 replies deep and one 10,000
replies wide, beside the 50,000 posts of `make seed`: the shape CHECK, what each query returns, and
plans without a sequential scan of posts (generic plans, as the app prepares these queries)."""

from __future__ import annotations

import io

import psycopg
import pytest

from loadtests.harness import seed
from posterr.db import load_queries
from tests.conftest import TABLES
from tests.integration.plans import sequential_scans

QUERIES = load_queries()
DEEP, WIDE = 1_000, 10_000


@pytest.fixture(scope="module")
def threads(servers, sql):
    """(deep root, deep leaf, wide root, the wide root's replies oldest first)."""
    sql.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
    seed(servers.database_url, users=200, posts=50_000, follows_per_user=5, progress=io.StringIO())
    deep_root = sql.execute("INSERT INTO posts (user_id, type, content) VALUES (1, 'post', 'deep') RETURNING id").fetchone()[0]
    deep_leaf = _chain(sql, deep_root, DEEP)
    wide_root = sql.execute("INSERT INTO posts (user_id, type, content) VALUES (2, 'post', 'wide') RETURNING id").fetchone()[0]
    wide = [row[0] for row in sql.execute("""
        INSERT INTO posts (user_id, type, content, reply_to_id, created_at)
        SELECT 1 + n %% 200, 'reply', 'wide ' || n, %(root)s, now() + n * interval '1 ms'
        FROM generate_series(1, %(count)s) AS n RETURNING id""", {"root": wide_root, "count": WIDE})]
    sql.execute("ANALYZE posts")
    yield deep_root, deep_leaf, wide_root, wide


def _chain(sql, root: int, depth: int) -> int:
    """`depth` replies, each answering the one before: the id of the last."""
    parent = root
    for n in range(depth):
        parent = sql.execute("INSERT INTO posts (user_id, type, content, reply_to_id) VALUES (%s, 'reply', %s, %s) "
                             "RETURNING id", (1 + n % 200, f"deep {n}", parent)).fetchone()[0]
    return parent


@pytest.fixture(autouse=True)
def clean_state():
    """These tests read the module's threads, so nothing is truncated between them."""


def ids(sql, name: str, **params) -> list[int]:
    return [row[0] for row in sql.execute(QUERIES[name].sql, params)]


@pytest.mark.parametrize("name, params", [
    ("replies_page", {"after_created_at": None, "after_id": None, "limit": 101}),
    ("thread_ancestors", {"limit": 40}),
    ("thread_descendants", {"limit": 200}),
])
@pytest.mark.parametrize("thread", ["deep root", "deep leaf", "wide root"])
def test_thread_queries_never_scan_posts(threads, sql, name, params, thread):
    deep_root, deep_leaf, wide_root, _ = threads
    post_id = {"deep root": deep_root, "deep leaf": deep_leaf, "wide root": wide_root}[thread]
    sql.execute("SET plan_cache_mode = force_generic_plan")  # as the app runs them: prepared
    try:
        plan = sql.execute(f"EXPLAIN (FORMAT JSON) {QUERIES[name].sql}", {"post_id": post_id, **params}).fetchone()[0]
    finally:
        sql.execute("RESET plan_cache_mode")
    assert "posts" not in sequential_scans(plan[0]["Plan"]), f"{name} on the {thread} scans posts:\n{plan}"


def test_ancestors_are_the_nearest_forty_nearest_first(threads, sql):
    deep_root, deep_leaf, _, _ = threads
    chain = ids(sql, "thread_ancestors", post_id=deep_leaf, limit=DEEP + 1)
    assert chain[0] == deep_leaf  # the post itself comes first: it exists
    assert len(chain) == DEEP + 1 and chain[-1] == deep_root  # the whole chain, up to the root
    assert ids(sql, "thread_ancestors", post_id=deep_leaf, limit=40) == chain[:41]
    assert ids(sql, "thread_ancestors", post_id=deep_root, limit=40) == [deep_root]
    assert ids(sql, "thread_ancestors", post_id=10**12, limit=40) == []


def test_descendants_come_depth_first_and_stop_at_the_limit(threads, sql):
    deep_root, deep_leaf, wide_root, wide = threads
    chain = list(reversed(ids(sql, "thread_ancestors", post_id=deep_leaf, limit=DEEP + 1)))[1:]
    assert ids(sql, "thread_descendants", post_id=deep_root, limit=200) == chain[:200]
    assert ids(sql, "thread_descendants", post_id=wide_root, limit=200) == wide[:200]
    assert ids(sql, "thread_descendants", post_id=deep_leaf, limit=200) == []


def test_descendants_put_each_reply_before_the_next_sibling(sql, threads):
    """r1 then its reply r1a, then r2: depth first, each level oldest first."""
    root = sql.execute("INSERT INTO posts (user_id, type, content) VALUES (3, 'post', 'tree') RETURNING id").fetchone()[0]
    r1, r2 = (sql.execute("INSERT INTO posts (user_id, type, content, reply_to_id, created_at) VALUES "
                          "(3, 'reply', %s, %s, now() + %s * interval '1 s') RETURNING id", (text, root, n)).fetchone()[0]
              for n, text in enumerate(("r1", "r2")))
    r1a = sql.execute("INSERT INTO posts (user_id, type, content, reply_to_id, created_at) VALUES "
                      "(3, 'reply', 'r1a', %s, now() + interval '5 s') RETURNING id", (r1,)).fetchone()[0]
    assert ids(sql, "thread_descendants", post_id=root, limit=200) == [r1, r1a, r2]


def test_replies_page_walks_the_wide_thread_oldest_first(threads, sql):
    _, _, wide_root, wide = threads
    seen, after = [], (None, None)
    while len(seen) < 300:
        rows = sql.execute("SELECT p.id, p.created_at FROM posts p WHERE p.id = ANY(%(ids)s) ORDER BY p.created_at, p.id",
                           {"ids": ids(sql, "replies_page", post_id=wide_root, after_created_at=after[0],
                                       after_id=after[1], limit=100)}).fetchall()
        seen += [row[0] for row in rows]
        after = (rows[-1][1], rows[-1][0])  # (created_at, id) of the last one
    assert seen == wide[:300]


@pytest.mark.parametrize("row", [
    "(1, 'reply', 'no parent', NULL, NULL)",
    "(1, 'reply', NULL, NULL, 1)",
    "(1, 'reply', 'and a repost', 1, 1)",
    "(1, 'post', 'answers', NULL, 1)",
    "(1, 'quote', 'answers', 1, 1)",
    "(1, 'repost', NULL, 1, 1)",
])
def test_the_shape_check_refuses_inconsistent_replies(threads, sql, row):
    with pytest.raises(psycopg.errors.CheckViolation):
        sql.execute(f"INSERT INTO posts (user_id, type, content, repost_id, reply_to_id) VALUES {row}")
