"""Home timelines (posterr/home_timelines.py): the "Following" feed, newest first, read from Redis is
exactly what the pull query over PostgreSQL returns, after every write, on random follow graphs and
write sequences (unfollows, Redis flushes, restarts and pushes lost to a stopped Redis included).

The app here has tiny limits, so that every path runs in a few steps: authors with more than
FANOUT_MAX followers are merged in at read time, and timelines keep only SIZE entries."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from itertools import chain

import pytest
import requests

from posterr.db import load_queries
from posterr.home_timelines import PUSH_BATCH, Build, HomeTimelines, member, post_id
from posterr.keys import timeline_keys, timeline_name
from posterr.redis_client import Redis
from tests.conftest import running_app
from tests.integration.conftest import Api, statement_calls
from tests.integration.pages import walk

FANOUT_MAX = 3
SIZE = 6
PULL = load_queries()["page_followed_latest"].sql
NO_FILTERS = {"author_id": None, "pattern": None, "since": None, "until": None, "include_replies": False,
              "after_score": None, "after_created_at": None, "after_id": None, "floor_created_at": None, "floor_id": None}


@pytest.fixture(scope="module")
def small_app(servers):
    with running_app(servers, "gunicorn-timelines.log", POSTERR_FANOUT_MAX_FOLLOWERS=str(FANOUT_MAX),
                     POSTERR_TIMELINE_SIZE=str(SIZE), POSTERR_DAILY_POST_LIMIT="10000") as base:
        yield base


@pytest.fixture
def app(small_app) -> Api:
    return Api(small_app)


def pulled(sql, reader: int) -> list[int]:
    """The truth: the pull query, run on PostgreSQL directly."""
    return [row[0] for row in sql.execute(PULL, {"followed_by": reader, "limit": 100_000, **NO_FILTERS})]


def served(api: Api, reader: int, limit: int) -> list[int]:
    return list(chain.from_iterable(walk(api, f"/api/posts?followed_by={reader}&limit={limit}")))


def timeline_reads(base: str) -> dict[str, float]:
    """posterr_timeline_reads_total by source, summed over the workers."""
    text = requests.get(f"{base}/metrics", timeout=5).text
    return {source: float(value) for source, value in
            re.findall(r'^posterr_timeline_reads_total\{source="(\w+)"\} (\S+)$', text, re.MULTILINE)}


def test_each_write_is_in_the_next_read(app, sql):
    reader, near, far = (app.new_user(name)["id"] for name in ("reader", "near", "far"))
    app.follow(reader, near)
    first = app.new_post(near, "before the timeline")
    assert served(app, reader, 10) == [first["id"]]  # builds the timeline
    post = app.new_post(near, "pushed")
    repost = app.new_post(near, repost_id=app.new_post(far, "by far")["id"])
    quote = app.new_post(near, "a quote", repost_id=first["id"])
    assert served(app, reader, 10) == [quote["id"], repost["id"], post["id"], first["id"]]
    app.follow(reader, far)
    assert served(app, reader, 2) == pulled(sql, reader)
    assert len(pulled(sql, reader)) == 5
    assert app.delete(f"/api/users/{reader}/following/{near}").status_code == 204
    assert served(app, reader, 10) == pulled(sql, reader) == [repost["repost_id"]]


def test_a_page_from_the_timeline_looks_up_no_user(app, sql):
    """A timeline is built only for a user that exists, so a page read from one needs no lookup (the
    read also carries the rate limit: one Redis round trip, then the posts)."""
    reader, author = app.new_user("reader")["id"], app.new_user("author")["id"]
    app.follow(reader, author)
    app.new_post(author, "hello")
    served(app, reader, 10)  # builds the timeline, after a lookup
    before = statement_calls(sql, "user_by_id")
    assert len(served(app, reader, 10)) == 1
    assert statement_calls(sql, "user_by_id") == before


def test_pages_come_from_the_timeline(small_app, app, sql):
    reader, author = app.new_user("reader"), app.new_user("author")
    app.follow(reader["id"], author["id"])
    for n in range(4):
        app.new_post(author["id"], f"post {n}")
    before = timeline_reads(small_app)
    for _ in range(3):
        assert served(app, reader["id"], 2) == pulled(sql, reader["id"])
    after = timeline_reads(small_app)
    # 3 walks of 2 pages: the first read builds the timeline (in Redis: for every worker), the
    # other five are served from it.
    assert {source: after.get(source, 0) - before.get(source, 0) for source in ("built", "hit", "pulled")} == {
        "built": 1, "hit": 5, "pulled": 0}


def test_an_author_past_the_fanout_limit_is_merged_at_read_time(app, sql):
    author = app.new_user("popular")["id"]
    readers = [app.new_user(f"fan{n}")["id"] for n in range(FANOUT_MAX + 1)]
    for reader in readers[:FANOUT_MAX]:
        app.follow(reader, author)
    app.new_post(author, "pushed to three")
    assert served(app, readers[0], 5) == pulled(sql, readers[0])  # timeline built, author pushed
    app.follow(readers[-1], author)  # crosses the limit: the author is merged from now on
    post = app.new_post(author, "merged for four")
    for reader in readers:
        assert served(app, reader, 1) == pulled(sql, reader)
        assert post["id"] in served(app, reader, 5)


ACTIONS = {"post": 20, "repost": 6, "quote": 6, "reply": 8, "follow": 16, "unfollow": 8, "read": 30, "flush": 2,
           "restart": 1, "lost push": 1, "evict": 4}


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_random_graphs_and_writes_match_the_pull_query(app, sql, servers, redis_client, seed):
    rng = random.Random(seed)
    users = [app.new_user(f"s{seed}u{n}")["id"] for n in range(8)]
    posts: list[dict] = []
    steps: list[str] = []

    def check(reader: int) -> None:
        limit = rng.randint(1, 4)
        truth = pulled(sql, reader)
        assert served(app, reader, limit) == truth, f"seed {seed}, reader {reader}, limit {limit}, after {steps[-12:]}"

    def create(author: int, content: str | None, target: int | None, reply_to: int | None = None) -> None:
        response = app.post("/api/posts", {"user_id": author, "content": content, "repost_id": target,
                                           "reply_to_id": reply_to})
        # 409 and 422: a second repost, a quote of a quote, a reply to a repost
        assert response.status_code in (201, 409, 422), response.text
        if response.status_code == 201:
            posts.append(response.json())

    for step in range(110):
        action = rng.choices(list(ACTIONS), weights=list(ACTIONS.values()))[0]
        actor, other = rng.sample(users, 2)
        steps.append(f"{step}:{action}:{actor}:{other}")
        if action == "post":
            create(actor, f"step {step}", None)
        elif action in ("repost", "quote") and posts:
            create(actor, f"step {step}" if action == "quote" else None, rng.choice(posts)["id"])
        elif action == "reply" and posts:  # never in a timeline: the pull query leaves replies out too
            create(actor, f"step {step}", None, rng.choice(posts)["id"])
        elif action == "follow":
            assert app.put(f"/api/users/{actor}/following/{other}").status_code == 204
        elif action == "unfollow":
            assert app.delete(f"/api/users/{actor}/following/{other}").status_code == 204
        elif action == "flush":
            redis_client.flushall()
        elif action == "restart":
            servers.stop_redis()
            servers.start_redis()
        elif action == "evict":  # one key of Redis gone, as under maxmemory with allkeys-lru
            evict_one_key(redis_client, rng)
        elif action == "lost push":  # the push meets a stopped Redis; the next one has another epoch
            servers.stop_redis()
            create(actor, f"step {step}, Redis down", None)
            servers.start_redis()
        # Read-your-writes: the reader a write concerns reads next (a follower of the author, or
        # the follower); and a random reader at random.
        concerned = [row[0] for row in sql.execute("SELECT follower_id FROM follows WHERE followee_id = %s",
                                                   (actor,))] if action in ("post", "repost", "quote", "reply") else [actor]
        if action == "read" or (concerned and rng.random() < 0.6):
            check(rng.choice(concerned) if action != "read" and concerned else rng.choice(users))
    for reader in users:
        check(reader)


def evict_one_key(redis_client, rng: random.Random) -> None:
    keys = sorted(redis_client.scan_iter(match="posterr:*", count=1000))
    if keys:
        redis_client.delete(rng.choice(keys))


@pytest.mark.parametrize("part", ["state", "entries", "followees"])
def test_a_timeline_missing_one_key_is_rebuilt(app, sql, redis_client, part):
    """Redis may evict any one key of a timeline: the rest is then not trusted (one followees key
    gone used to keep a followee's new posts out of the timeline until it expired)."""
    reader, author = app.new_user("reader")["id"], app.new_user("author")["id"]
    app.follow(reader, author)
    first = app.new_post(author, "before")
    assert served(app, reader, 10) == [first["id"]]  # builds the timeline
    # SCAN, as every test here: on a Redis Cluster it asks every master, where KEYS asked only
    # redis-py's default node, which holds the reader's slot for one reader in three.
    (key,) = redis_client.scan_iter(match=f"{timeline_name(reader)}:{part}:*", count=1000)
    redis_client.delete(key)
    second = app.new_post(author, "after")
    for _ in range(3):  # over fresh connections: every worker
        response = requests.get(f"{app.base}/api/posts?followed_by={reader}", headers={"Connection": "close"},
                                timeout=5)
        assert [post["id"] for post in response.json()] == [second["id"], first["id"]]


def test_a_timeline_entry_that_postgresql_lacks_is_left_out(app, sql):
    """After a fail-over that lost commits, a timeline may name a post the new primary never had:
    the page is answered with the posts that exist."""
    reader, author = app.new_user("reader")["id"], app.new_user("author")["id"]
    app.follow(reader, author)
    kept, lost = app.new_post(author, "kept"), app.new_post(author, "lost")
    assert served(app, reader, 10) == [lost["id"], kept["id"]]  # both in the timeline
    sql.execute("DELETE FROM posts WHERE id = %s", (lost["id"],))
    assert served(app, reader, 10) == [kept["id"]]


@pytest.mark.parametrize("lost_id", ["gone", "handed out again"])
def test_a_timeline_naming_a_lost_post_still_pages_through_every_post(app, sql, lost_id):
    """A post lost in a fail-over leaves its entry in the timelines it was pushed to, and the new
    primary's sequence may give its id to another post. Every page must still be full while older
    posts exist (with its Link), and hold only posts of the accounts followed, each once."""
    reader, author, stranger = (app.new_user(name)["id"] for name in ("reader", "author", "stranger"))
    app.follow(reader, author)
    first, lost, third, fourth = (app.new_post(author, f"post {n}")["id"] for n in range(4))
    assert served(app, reader, 2) == [fourth, third, lost, first]  # all four in the timeline
    sql.execute("DELETE FROM posts WHERE id = %s", (lost,))
    if lost_id == "handed out again":
        sql.execute("INSERT INTO posts (id, user_id, type, content, created_at) OVERRIDING SYSTEM VALUE "
                    "VALUES (%s, %s, 'post', 'not followed', now() - interval '1 day')", (lost, stranger))
    assert served(app, reader, 2) == pulled(sql, reader) == [fourth, third, first]


# --- the Redis scripts' rules, one at a time (posterr/home_timelines.py), against the real Redis ------

@pytest.fixture
def timelines(servers):
    redis_ = Redis(servers.redis_url, timeout=1, retry_after=0.5, invalidation_deadline=1, reconnect_interval=0.5)
    yield HomeTimelines(redis_, size=3, ttl=60)
    redis_.close()


def entries(*ids: int) -> list[str]:
    """Timeline members of posts `ids`, one second apart, newest first as given."""
    return [member(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=post_id), post_id) for post_id in ids]


def push(timelines: HomeTimelines, readers: list[int], author: int, post: int) -> None:
    timelines.redis.before_answer(timelines.pushes(readers, author, entries(post)[0]))


def built(timelines: HomeTimelines, user_id: int, newest: list[str], followees: list[int]) -> None:
    build = timelines.read(user_id, None, 10)
    assert isinstance(build, Build)
    assert timelines.store(build, newest, followees, merged=[])


def test_members_sort_like_the_feed():
    stamp = datetime(2026, 1, 1, tzinfo=UTC)
    ordered = [(stamp, 9), (stamp, 10), (stamp + timedelta(microseconds=1), 2), (stamp + timedelta(days=9000), 1)]
    assert sorted(member(*key) for key in ordered) == [member(*key) for key in ordered]
    assert [post_id(member(*key)) for key in ordered] == [9, 10, 2, 1]


def test_a_timeline_keeps_its_newest_entries_without_a_gap(timelines):
    built(timelines, 1, entries(9, 8, 7), followees=[5])  # as many as it keeps: older posts exist
    push(timelines, [1], 5, 6)  # a slow writer's older post: kept, it would leave a gap
    push(timelines, [1], 5, 10)
    found = timelines.read(1, None, 10)
    assert found.entries == entries(10, 9, 8) and not found.complete


def test_a_trimmed_timeline_is_incomplete(timelines):
    built(timelines, 1, entries(9, 8), followees=[5])
    assert timelines.read(1, None, 10).complete
    push(timelines, [1], 5, 3)  # an older post, while it holds everything: kept
    push(timelines, [1], 5, 10)
    found = timelines.read(1, None, 10)
    assert found.entries == entries(10, 9, 8) and not found.complete  # 3 is gone: older ones come from PostgreSQL


def test_a_push_during_a_build_stops_it_being_stored(timelines):
    build = timelines.read(1, None, 10)
    push(timelines, [1], 5, 4)  # the build may have read PostgreSQL before this post
    assert not timelines.store(build, entries(3), [5], merged=[])
    assert isinstance(timelines.read(1, None, 10), Build)


def test_a_push_from_an_account_not_followed_is_ignored(timelines):
    built(timelines, 1, entries(3), followees=[5])  # rebuilt after an unfollow of 6
    push(timelines, [1], 6, 4)  # a push that read the followers before the unfollow
    assert timelines.read(1, None, 10).entries == entries(3)


def test_a_push_into_a_timeline_built_empty_expires_with_it(timelines, redis_client):
    built(timelines, 1, [], followees=[5])
    push(timelines, [1], 5, 4)
    state, entries_key, _ = timeline_keys(1, timelines.redis.epoch_of(timeline_name(1)))
    state_ttl = redis_client.pttl(state)  # first: both run down while we ask, the later answer is lower
    # Within a millisecond: the script reads PTTL at its start's clock and PEXPIRE counts from the
    # millisecond it runs in (seen once in make test: 60000 against 59999).
    assert 0 < redis_client.pttl(entries_key) <= state_ttl + 1


def test_one_push_reaches_many_timelines(timelines):
    readers = list(range(1, 2 * PUSH_BATCH + 2))
    for reader in readers:
        built(timelines, reader, entries(3), followees=[5])
    push(timelines, readers, 5, 4)
    assert all(timelines.read(reader, None, 10).entries == entries(4, 3) for reader in readers)


def test_a_push_refused_with_an_error_reply_drops_the_timeline(timelines, redis_client):
    """Under OOM a script that writes is refused while DEL still works: the post must not be
    missing from a timeline that stays readable (found by make soak SEED=9191)."""
    built(timelines, 1, entries(3), followees=[5])
    policy = redis_client.config_get("maxmemory-policy")["maxmemory-policy"]
    redis_client.config_set("maxmemory-policy", "noeviction")
    redis_client.config_set("maxmemory", 1)
    try:
        push(timelines, [1], 5, 4)
    finally:
        redis_client.config_set("maxmemory", 0)
        redis_client.config_set("maxmemory-policy", policy)
    assert isinstance(timelines.read(1, None, 10), Build)


@pytest.mark.parametrize("part", [1, 2])
@pytest.mark.parametrize("followed", [[], [5]])
def test_a_timeline_with_a_key_gone_is_absent(timelines, redis_client, part, followed):
    """Built with or without entries and followees, a timeline is read as absent, and not pushed to,
    once its entries or its followees are gone; its state alone does not make it present."""
    built(timelines, 1, entries(3) if followed else [], followees=followed)
    redis_client.delete(timeline_keys(1, timelines.redis.epoch_of(timeline_name(1)))[part])
    push(timelines, [1], 5, 4)
    assert isinstance(timelines.read(1, None, 10), Build)


def test_a_dropped_timeline_is_built_again(timelines):
    built(timelines, 1, entries(3), followees=[5])
    build = timelines.read(2, None, 10)
    timelines.redis.before_answer(timelines.drops([1, 2]))
    assert isinstance(timelines.read(1, None, 10), Build)
    assert not timelines.store(build, entries(3), [5], merged=[])  # a build under way when it was dropped
