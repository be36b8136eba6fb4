"""The feed cache: hits come from Redis, and every write is visible at once (read-your-writes)."""

from __future__ import annotations

import os
import time
from datetime import date

import pytest
from redis.cluster import RedisCluster

from posterr import deferred_check, metrics
from posterr.document_cache import DocumentCache
from posterr.errors import TooManyRequests
from posterr.keys import FEEDS_KEY, daily_quota_key, post_key, user_key
from posterr.limits import ClientRateLimit, DailyQuota
from posterr.redis_client import Redis
from tests.conftest import REDIS_CLUSTER
from tests.integration.conftest import assert_problem, on_every_worker, reads_processed


def cached_feed_fields(redis_client) -> set[str]:
    fields = set()
    for key in redis_client.scan_iter("posterr:{feeds}:*"):
        fields |= {f.decode() for f in redis_client.hkeys(key)} - {"~gen", "~g"}
    return fields


def test_first_pages_are_served_from_redis(api, app_server, sql, redis_client):
    alice = api.new_user("alice")["id"]
    post = api.new_post(alice, "original text")
    # Read on every worker first: a worker's first call after Redis restarted (a fault test before
    # this one may have restarted it) reconnects, learns the new epoch and reads PostgreSQL.
    def warm(get):
        for url in ("/api/posts", "/api/posts?sort_by=trending", f"/api/posts?author_id={alice}&limit=5",
                    f"/api/posts/{post['id']}", f"/api/users/{alice}"):
            get(url)
    on_every_worker(app_server, "warm", warm)
    assert cached_feed_fields(redis_client) == {"all:latest:10", "all:trending:10", f"author:{alice}:latest:5"}
    # Change the row behind the cache's back: what is served now comes from Redis.
    sql.execute("UPDATE posts SET content = 'changed behind the cache' WHERE id = %s", (post["id"],))
    sql.execute("UPDATE users SET followers_count = 42 WHERE id = %s", (alice,))
    def from_redis(get):
        assert get("/api/posts").json()[0]["content"] == "original text"
        assert get(f"/api/posts?author_id={alice}&limit=5").json()[0]["content"] == "original text"
        assert get(f"/api/posts/{post['id']}").json()["content"] == "original text"
        assert get(f"/api/users/{alice}").json()["followers_count"] == 0
    on_every_worker(app_server, "from-redis", from_redis)
    assert api.get("/api/posts?keyword=changed").json()[0]["content"] == "changed behind the cache"


def test_uncacheable_reads_are_not_cached(api, redis_client):
    alice, bob = api.new_user("alice")["id"], api.new_user("bob")["id"]
    api.follow(bob, alice)
    post = api.new_post(alice, "hello")
    # Each answered with its content: a refused read is not cached either, and would prove nothing.
    for url in (f"/api/posts?keyword=hello&followed_by={bob}", "/api/posts?keyword=hello",
                "/api/posts?start_date=2000-01-01"):
        response = api.get(url)
        assert response.status_code == 200, (url, response.text)
        assert [p["id"] for p in response.json()] == [post["id"]], url
    viewed = api.get(f"/api/users/{alice}?viewer_id={bob}")
    assert viewed.status_code == 200 and viewed.json()["followed_by_viewer"] is True, viewed.text
    assert cached_feed_fields(redis_client) == set()
    assert list(redis_client.scan_iter("posterr:user:*")) == []
    # The same reads without what makes them uncacheable are cached, where the lines above look.
    assert api.get("/api/posts").status_code == api.get(f"/api/users/{alice}").status_code == 200
    assert cached_feed_fields(redis_client) == {"all:latest:10"}
    assert list(redis_client.scan_iter("posterr:user:*")) != []


def test_errors_are_not_cached(api, redis_client):
    assert_problem(api.get("/api/posts?author_id=77"), 404)
    assert_problem(api.get("/api/posts/77"), 404)
    assert_problem(api.get("/api/users/77"), 404)
    carol = api.new_user("carol")
    assert carol["id"] == 1 and api.get("/api/users/1").json() == carol


def feeds(api, author_id):
    return {url: api.get(url).json() for url in
            ("/api/posts", "/api/posts?sort_by=trending", f"/api/posts?author_id={author_id}")}


def test_a_new_post_is_visible_at_once_everywhere(api):
    alice = api.new_user("alice")["id"]
    api.new_post(alice, "first")
    before = feeds(api, alice)
    assert api.get(f"/api/users/{alice}").json()["posts_count"] == 1
    post = api.new_post(alice, "second")
    for url, items in feeds(api, alice).items():
        assert post["id"] in [p["id"] for p in items] and len(items) == len(before[url]) + 1, url
    assert api.get(f"/api/users/{alice}").json()["posts_count"] == 2


@pytest.mark.parametrize("kind", ["repost", "quote"])
def test_a_repost_or_quote_updates_the_target_everywhere_at_once(api, kind):
    alice, bob = api.new_user("alice")["id"], api.new_user("bob")["id"]
    target = api.new_post(alice, "target")
    feeds(api, alice)
    feeds(api, bob)
    api.get(f"/api/posts/{target['id']}")
    api.get(f"/api/users/{bob}")
    created = api.new_post(bob, None if kind == "repost" else "a quote", repost_id=target["id"])
    counter = "repost_count" if kind == "repost" else "quote_count"
    assert api.get(f"/api/posts/{target['id']}").json()[counter] == 1
    for items in feeds(api, alice).values():
        assert next(p for p in items if p["id"] == target["id"])[counter] == 1
    assert api.get("/api/posts?sort_by=trending").json()[0]["id"] == target["id"]
    assert [p["id"] for p in api.get(f"/api/posts?author_id={bob}").json()] == [created["id"]]
    assert api.get(f"/api/users/{bob}").json()["posts_count"] == 1


def test_follow_and_unfollow_update_both_profiles_at_once(api):
    alice, bob = api.new_user("alice")["id"], api.new_user("bob")["id"]
    api.get(f"/api/users/{alice}")
    api.get(f"/api/users/{bob}")
    api.follow(alice, bob)
    assert api.get(f"/api/users/{alice}").json()["following_count"] == 1
    assert api.get(f"/api/users/{bob}").json()["followers_count"] == 1
    assert api.delete(f"/api/users/{alice}/following/{bob}").status_code == 204
    assert api.get(f"/api/users/{alice}").json()["following_count"] == 0
    assert api.get(f"/api/users/{bob}").json()["followers_count"] == 0


def test_a_new_user_is_visible_at_once(api):
    assert_problem(api.get("/api/users/1"), 404)
    assert api.get("/api/users?username=dora").json() == []
    dora = api.new_user("dora")
    assert api.get("/api/users/1").json() == dora
    assert api.get("/api/users?username=dora").json() == [dora]


# --- the mechanisms, driven directly against the suite's Redis (see posterr/redis_client.py) ---

def new_cache(servers, *, invalidation_deadline: float = 5) -> DocumentCache:
    return DocumentCache(Redis(servers.redis_url, timeout=0.25, retry_after=1,
                               invalidation_deadline=invalidation_deadline,
                               reconnect_interval=invalidation_deadline / 2))


@pytest.fixture
def document_cache(servers):
    found = new_cache(servers)
    yield found
    found.redis.close()


def test_a_slow_reader_cannot_put_back_what_a_write_invalidated(document_cache):
    """Invariant 5, the generation token."""
    def read_while_a_write_lands() -> bytes:
        document_cache.redis.before_answer(document_cache.deletes(FEEDS_KEY))  # the write commits while this reader queries
        return b"old page"

    assert document_cache.fetch(FEEDS_KEY, "all:latest:10", 60, read_while_a_write_lands) == b"old page"
    assert document_cache.fetch(FEEDS_KEY, "all:latest:10", 60, lambda: b"new page") == b"new page"
    assert document_cache.fetch(FEEDS_KEY, "all:latest:10", 60, lambda: b"unused") == b"new page"


def test_a_process_that_never_talked_to_redis_still_deletes_what_others_cached(document_cache, servers):
    """Invariant 4: the writer learns the epoch before deleting (other processes cache under it)."""
    assert document_cache.fetch(post_key(1), "json", 60, lambda: b"v1") == b"v1"
    fresh = new_cache(servers)
    try:
        assert fresh.redis.epoch is None
        fresh.redis.before_answer(fresh.deletes(post_key(1)))
    finally:
        fresh.redis.close()
    assert document_cache.fetch(post_key(1), "json", 60, lambda: b"v2") == b"v2"


def test_a_write_redis_will_not_take_is_answered_after_the_deadline_and_counted(servers, redis_client):
    """Invariant 4's limit: a Redis that neither answers nor goes away costs a write the deadline,
    no more (it retried until then, and did not wait for the pause to end), and is counted."""
    slow = new_cache(servers, invalidation_deadline=0.3)
    slow.fetch(post_key(1), "json", 60, lambda: b"v1")  # connected: the epoch is known
    before = metrics.CACHE_INVALIDATION_FAILURES._value.get()
    redis_client.execute_command("CLIENT", "PAUSE", "20000", "WRITE")
    try:
        started = time.monotonic()
        slow.redis.before_answer(slow.deletes(post_key(1)))
        took = time.monotonic() - started
    finally:
        redis_client.execute_command("CLIENT", "UNPAUSE")
        slow.redis.close()
    assert 0.3 <= took < 10, took  # the deadline, then the answer: far before the 20 s pause ends
    assert metrics.CACHE_INVALIDATION_FAILURES._value.get() == before + 1


@pytest.mark.faults
def test_copies_from_before_a_redis_restart_are_never_read_nor_left_behind(servers):
    """Invariant 3, the epoch: the restarted server reloads old copies from its append-only file, and
    a writer whose last connection was to the old server still deletes the new server's copies."""
    if not servers.owned:
        pytest.skip("needs the suite's own Redis")
    reader, writer = new_cache(servers), new_cache(servers)
    try:
        assert reader.fetch(post_key(1), "json", 60, lambda: b"before") == b"before"
        writer.fetch(post_key(2), "json", 60, lambda: b"connected")  # writer knows the old epoch
        old_epoch = writer.redis.epoch_of(post_key(1))
        servers.stop_redis()
        servers.start_redis()
        assert reader.fetch(post_key(1), "json", 60, lambda: b"after") == b"after"
        assert reader.redis.epoch_of(post_key(1)) != old_epoch
        writer.redis.before_answer(writer.deletes(post_key(1)))
        assert reader.fetch(post_key(1), "json", 60, lambda: b"after the write") == b"after the write"
    finally:
        reader.redis.close()
        writer.redis.close()


def script_exists_calls(redis_client) -> int:
    if REDIS_CLUSTER:
        nodes = redis_client.info("commandstats", target_nodes=RedisCluster.PRIMARIES).values()
    else:
        nodes = [redis_client.info("commandstats")]
    return sum(node.get("cmdstat_script|exists", {}).get("calls", 0) for node in nodes)


def test_a_write_sends_its_scripts_without_asking_and_reloads_them_into_a_redis_that_lost_them(servers, redis_client):
    """A write's changes are one round trip: no SCRIPT EXISTS first (redis-py's pipeline asks it
    before every batch with a script). A server without the scripts (restarted, SCRIPT FLUSH) gets
    them loaded and the batch again: the counter is raised, not deleted as if Redis had refused it."""
    redis = Redis(servers.redis_url, timeout=1, retry_after=1, invalidation_deadline=2, reconnect_interval=0.5)
    quota = DailyQuota(redis, 5)
    day = date(2026, 12, 2)
    try:
        before = script_exists_calls(redis_client)
        redis.before_answer(DocumentCache.deletes(user_key(998)), quota.remembers(998, day, 2))
        assert redis_client.get(daily_quota_key(998, day)) == b"2"
        assert script_exists_calls(redis_client) == before
        redis_client.script_flush()
        redis.before_answer(DocumentCache.deletes(user_key(999)), quota.remembers(999, day, 3))
        assert redis_client.get(daily_quota_key(999, day)) == b"3"
    finally:
        redis.close()


def test_a_cached_read_carries_the_deferred_rate_check_and_a_refusal_computes_nothing(servers, redis_client):
    """The edge defers the rate limit to the request's first call to a server (deferred_check): a read
    served from the document cache sends both in one round trip on a standalone Redis (one after the
    other on a cluster), and a refused request raises before anything is computed."""
    redis = Redis(servers.redis_url, timeout=1, retry_after=1, invalidation_deadline=1, reconnect_interval=0.5)
    documents, limiter = DocumentCache(redis), ClientRateLimit(redis, 1, 3600)
    client = f"203.0.113.{os.getpid() % 250}-{os.urandom(4).hex()}"
    computed, decisions = [], []

    def deliver(reply) -> None:
        decisions.append(limiter.decision(reply))
        if not decisions[-1].allowed:
            raise TooManyRequests("over the limit", retry_after=decisions[-1].retry_after)

    def read_deferring_the_check() -> bytes:
        token = deferred_check.PENDING.set(deferred_check.DeferredCheck(
            queue=lambda batch: limiter.queue_check(batch, client), deliver=deliver,
            run_alone=lambda: redis.run(lambda client_: limiter.queue_check(client_, client))))
        try:
            return documents.fetch(user_key(997), "json", 60, lambda: computed.append(1) or b"the document")
        finally:
            deferred_check.PENDING.reset(token)

    try:
        assert documents.fetch(user_key(997), "json", 60, lambda: b"the document") == b"the document"
        limiter.check("198.51.100.1")  # the scripts are loaded: a first call would load them as well
        before = reads_processed(redis_client)
        assert read_deferring_the_check() == b"the document"
        trips = reads_processed(redis_client) - before - (3 if REDIS_CLUSTER else 1)  # less our own INFO
        assert (trips, [decision.allowed for decision in decisions], computed) == \
            (2 if REDIS_CLUSTER else 1, [True], [])
        with pytest.raises(TooManyRequests):
            read_deferring_the_check()
        assert ([decision.allowed for decision in decisions], computed) == ([True, False], [])
    finally:
        redis.close()
