"""Three app instances against a 3-master Redis Cluster (scripts/services.sh redis-cluster-up): the
daily limit stays exact when a master is SIGKILLed in the middle of simultaneous creations, nothing
answers 500, and no page read afterwards is stale (posterr/redis_client.py: per-node epochs)."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime

import psycopg
import pytest
import requests
from redis.cluster import RedisCluster

from posterr.document_cache import DocumentCache
from posterr.keys import daily_quota_key, post_key, user_key
from posterr.redis_client import Redis
from tests.cluster.conftest import wait_for
from tests.conftest import RESULTS, running_app
from tests.integration.pglocks import waiting_behind

LIMIT = 5  # the suite's POSTERR_DAILY_POST_LIMIT
USERS, PER_USER = 4, 50


@pytest.fixture(scope="module")
def instances(servers, redis_cluster):
    url, _ = redis_cluster
    with ExitStack() as stack:
        yield [stack.enter_context(running_app(servers, f"redis-cluster-app-{n}.log", REDIS_URL=url,
                                               POSTERR_REDIS_RETRY_AFTER="0.5")) for n in (1, 2, 3)]


def _fresh(method: str, url: str, **kwargs) -> requests.Response:
    return requests.request(method, url, headers={"Connection": "close"}, timeout=15, **kwargs)


def _assert_current(base: str, ids: list[int]) -> bool:
    for user_id in ids:
        assert _fresh("GET", f"{base}/api/users/{user_id}").json()["posts_count"] == LIMIT, base
        assert len(_fresh("GET", f"{base}/api/posts?author_id={user_id}").json()) == LIMIT, base
    return True


def _cache_hits(base: str) -> float:
    """Document cache hits of every family."""
    found = re.findall(r'^posterr_cache_lookups_total\{family="\w+",result="hit"\} (\S+)$',
                       _fresh("GET", f"{base}/metrics").text, re.MULTILINE)
    return sum(float(value) for value in found)


def test_the_limit_holds_and_nothing_is_stale_when_a_master_dies_mid_run(servers, redis_cluster, instances, sql):
    _, client = redis_cluster
    client.flushall(target_nodes=RedisCluster.PRIMARIES)
    ids = [_fresh("POST", f"{instances[0]}/api/users", json={"username": f"crowd{n}"}).json()["id"]
           for n in range(USERS)]
    # Every instance caches each user's profile and author feed first: pages that must not survive.
    for base in instances:
        for user_id in ids:
            assert _fresh("GET", f"{base}/api/users/{user_id}").json()["posts_count"] == 0
            assert _fresh("GET", f"{base}/api/posts?author_id={user_id}").json() == []
    # The master that holds the first user's profile: its slots go dark mid-run.
    victim = client.get_node_from_key(user_key(ids[0]))
    jobs = [(ids[u], instances[j % 3], f"crowd {u}-{j}") for u in range(USERS) for j in range(PER_USER)]

    def create(job):
        user_id, base, content = job
        return user_id, _fresh("POST", f"{base}/api/posts", json={"user_id": user_id, "content": content})

    # The users' rows are held locked while every creation is sent, so the master dies while the app
    # has dozens of them in flight, each to answer (and to update Redis) after it.
    locker = psycopg.connect(servers.database_url)
    try:
        locker.execute("SELECT id FROM users WHERE id = ANY(%s) FOR UPDATE", (ids,))
        with ThreadPoolExecutor(len(jobs)) as pool:
            futures = [pool.submit(create, job) for job in jobs]
            wait_for(lambda: waiting_behind(sql, locker.info.backend_pid) >= 12, 60,
                     "creations to queue behind the users' row locks")
            servers.kill_redis_node(victim.port)
            in_flight = waiting_behind(sql, locker.info.backend_pid)
            locker.rollback()
            results = [future.result() for future in futures]
    finally:
        locker.close()

    day = datetime.now(UTC).date()
    statuses = sorted({response.status_code for _, response in results})
    assert set(statuses) <= {201, 429}, statuses
    for user_id in ids:
        mine = sorted(response.status_code for uid, response in results if uid == user_id)
        assert mine == [201] * LIMIT + [429] * (PER_USER - LIMIT), (user_id, mine)
        assert sql.execute("SELECT count(*) FROM posts WHERE user_id = %s", (user_id,)).fetchone()[0] == LIMIT
    # While its master is down, every instance shows every user's five posts (from PostgreSQL).
    for base in instances:
        _assert_current(base, ids)
    # Back, it reloads its append-only file, cached pages from before the posts included: they carry
    # the old process's epoch and are never read. Shown once each instance serves from Redis again.
    servers.start_redis_cluster()
    for base in instances:
        before = _cache_hits(base)
        wait_for(lambda b=base, h=before: _assert_current(b, ids) and _cache_hits(b) >= h + 4 * USERS, 30,
                 f"{base} to serve current pages from the cache again")
    assert all(int(client.get(daily_quota_key(user_id, day)) or 0) <= LIMIT for user_id in ids)
    RESULTS.append(f"Redis Cluster: {len(jobs)} simultaneous creations for {USERS} users over 3 instances; the master "
                   f"on port {victim.port} SIGKILLed with {in_flight} creations in flight: "
                   f"{sum(r.status_code == 201 for _, r in results)} x 201, "
                   f"{sum(r.status_code == 429 for _, r in results)} x 429, 0 errors; exactly {LIMIT} posts per user "
                   f"in PostgreSQL; profiles and author feeds current on every instance with the master down and back")


def test_a_write_still_reaches_the_live_masters_when_one_is_dead(servers, redis_cluster):
    """A write's deletes go one by one on a cluster: the dead master's are skipped (its next process
    has a new epoch), the others' must still land (found by make soak TOPOLOGY=replicated)."""
    url, client = redis_cluster
    redis_ = Redis(url, timeout=0.25, retry_after=0.5, invalidation_deadline=5, reconnect_interval=0.5)
    documents = DocumentCache(redis_)
    try:
        # Two posts whose documents live on two different masters.
        by_node: dict[str, int] = {}
        for post_id in range(1, 100):
            by_node.setdefault(client.get_node_from_key(post_key(post_id)).name, post_id)
        first, second = list(by_node.values())[:2]
        for post_id in (first, second):
            assert documents.fetch(post_key(post_id), "json", 60, lambda: b"before") == b"before"
        dead = client.get_node_from_key(post_key(first))
        servers.kill_redis_node(dead.port)
        redis_.before_answer(documents.deletes(post_key(first), post_key(second)))
        redis_._down_until = 0.0  # the failure opened the breaker; the live master is asked at once
        assert documents.fetch(post_key(second), "json", 60, lambda: b"after") == b"after"
    finally:
        servers.start_redis_cluster()
        redis_.close()


def _posts_on_two_masters(client: RedisCluster, avoid_port: int) -> tuple[int, int]:
    """Two post ids whose documents live on the two masters that are not on `avoid_port`."""
    by_port: dict[int, int] = {}
    for post_id in range(1, 200):
        by_port.setdefault(client.get_node_from_key(post_key(post_id)).port, post_id)
    first, second = [post_id for port, post_id in by_port.items() if port != avoid_port][:2]
    return first, second


def test_a_process_that_never_met_a_dead_master_still_reaches_the_live_ones(servers, redis_cluster):
    """A worker started while a master is down (a deploy, max_requests) has no epoch for it: the
    write's changes for that master are skipped, the others' must land (issue 22, hole 3)."""
    url, client = redis_cluster
    seen = Redis(url, timeout=0.25, retry_after=0.5, invalidation_deadline=5, reconnect_interval=0.5)
    documents = DocumentCache(seen)
    first, second = _posts_on_two_masters(client, avoid_port=int(url.rsplit(":", 1)[1].split("/")[0]))
    try:
        for post_id in (first, second):
            assert documents.fetch(post_key(post_id), "json", 60, lambda: b"before") == b"before"
        servers.kill_redis_node(client.get_node_from_key(post_key(first)).port)
        started_meanwhile = Redis(url, timeout=0.25, retry_after=0.5, invalidation_deadline=5, reconnect_interval=0.5)
        try:
            started_meanwhile.before_answer(DocumentCache(started_meanwhile).deletes(post_key(first), post_key(second)))
        finally:
            started_meanwhile.close()
        seen._down_until = 0.0
        assert documents.fetch(post_key(second), "json", 60, lambda: b"after") == b"after"
    finally:
        servers.start_redis_cluster()
        seen.close()


def test_a_process_started_while_its_node_is_down_learns_the_cluster_when_it_answers(servers, redis_cluster):
    """The node of REDIS_URL does not answer INFO cluster at start: the process must not stay a
    standalone client (whose deletes get MOVED) once the cluster answers (issue 22, hole 4)."""
    url, client = redis_cluster
    url_port = int(url.rsplit(":", 1)[1].split("/")[0])
    seen = Redis(url, timeout=0.25, retry_after=0.5, invalidation_deadline=5, reconnect_interval=0.5)
    documents = DocumentCache(seen)
    first, second = _posts_on_two_masters(client, avoid_port=url_port)
    try:
        for post_id in (first, second):
            assert documents.fetch(post_key(post_id), "json", 60, lambda: b"before") == b"before"
        servers.kill_redis_node(url_port)
        started_meanwhile = Redis(url, timeout=0.25, retry_after=0.5, invalidation_deadline=5, reconnect_interval=0.5)
        try:
            servers.start_redis_cluster()
            started_meanwhile.before_answer(DocumentCache(started_meanwhile).deletes(post_key(first), post_key(second)))
        finally:
            started_meanwhile.close()
        seen._down_until = 0.0
        for post_id in (first, second):
            assert documents.fetch(post_key(post_id), "json", 60, lambda: b"after") == b"after"
    finally:
        servers.start_redis_cluster()
        seen.close()
