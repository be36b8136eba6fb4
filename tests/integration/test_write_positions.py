"""A client's write position in Redis (posterr/replicas.py, guarantee 1): every write renews the
client's protection, whatever position is kept."""

from __future__ import annotations

import pytest

from posterr.cache import Redis, write_position_key
from posterr.db import load_queries
from posterr.replicas import CLIENT, Replicas

MAX_LAG = 5.0


@pytest.fixture
def replicas(servers):
    redis_ = Redis(servers.redis_url, timeout=1, retry_after=0.5, invalidation_deadline=1)
    token = CLIENT.set("192.0.2.7")
    yield Replicas("postgresql://unused", [], load_queries(), redis_, max_lag=MAX_LAG, check_interval=1)
    CLIENT.reset(token)
    redis_.close()


@pytest.mark.parametrize("first, later", [(None, "0/10"), ("0/20", "0/10"), ("0/10", "0/10")])
def test_a_write_renews_the_protection_of_a_higher_position(replicas, redis_client, first, later):
    """A later write whose position is not above the one kept (the "unknown" marker of a write whose
    position could not be read, or a concurrent write's) keeps the higher one, for its own full time."""
    key = write_position_key("192.0.2.7")
    replicas.remember_write(first)
    kept = redis_client.get(key)
    redis_client.pexpire(key, 50)  # as if the first write's protection were running out
    replicas.remember_write(later)
    assert redis_client.get(key) == kept
    assert redis_client.pttl(key) > (MAX_LAG * 1000 + 1000) / 2


def test_a_higher_position_replaces_a_lower_one(replicas, redis_client):
    replicas.remember_write("0/10")
    replicas.remember_write("1/0")
    assert redis_client.get(write_position_key("192.0.2.7")) == b"0000000100000000"
