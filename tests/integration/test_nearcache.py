"""Copies kept in the process (client-side caching): dropped as soon as Redis says their key changed."""

from __future__ import annotations

import re

import pytest
import redis

from posterr.nearcache import NearCache

KEY, FIELD = "posterr:post:{1}:test", "json"


@pytest.fixture
def near(servers):
    kwargs = redis.Redis.from_url(servers.redis_url).connection_pool.connection_kwargs
    return NearCache(kwargs, ["posterr:post:"], timeout=1, retry_after=0.01)


def test_a_copy_is_served_until_its_key_changes(near, redis_client):
    _, generation = near.lookup(KEY, FIELD)
    near.keep(KEY, FIELD, b"v1", generation)
    assert near.lookup(KEY, FIELD)[0] == b"v1"
    redis_client.hset(KEY, FIELD, "v2")  # any client's write
    assert near.lookup(KEY, FIELD)[0] is None


def test_a_read_older_than_an_invalidation_is_not_kept(near, redis_client):
    _, generation = near.lookup(KEY, FIELD)
    redis_client.delete(KEY)
    redis_client.hset(KEY, FIELD, "newer")
    near.keep(KEY, FIELD, b"older", generation)
    assert near.lookup(KEY, FIELD)[0] is None


def test_other_keys_do_not_evict_and_flush_evicts_all(near, redis_client):
    _, generation = near.lookup(KEY, FIELD)
    near.keep(KEY, FIELD, b"v1", generation)
    redis_client.set("posterr:quota:1:2026-11-26", 1)
    assert near.lookup(KEY, FIELD)[0] == b"v1"
    redis_client.flushdb()
    assert near.lookup(KEY, FIELD)[0] is None


@pytest.mark.faults
def test_no_copies_without_redis_and_none_survive_a_restart(near, servers, redis_client):
    if not servers.owned:
        pytest.skip("needs the suite's own Redis")
    _, generation = near.lookup(KEY, FIELD)
    near.keep(KEY, FIELD, b"v1", generation)
    servers.stop_redis()
    try:
        assert near.lookup(KEY, FIELD) == (None, None)
    finally:
        servers.start_redis()
    while near.lookup(KEY, FIELD)[1] is None:  # reconnects at the next lookup after retry_after
        pass
    assert near.lookup(KEY, FIELD)[0] is None


def test_the_app_serves_repeated_reads_from_its_copies(api):
    alice = api.new_user("alice")["id"]
    for _ in range(6):
        api.get(f"/api/users/{alice}")
    assert int(re.search(r'posterr_cache_lookups_total\{result="near_hit"\} (\d+)', api.get("/metrics").text)[1]) >= 1
