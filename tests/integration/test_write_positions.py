"""A client's write position in Redis (posterr/replicas.py, guarantee 1): every write renews the
client's protection, whatever position is kept, and a loss of positions is seen wherever it happens."""

from __future__ import annotations

import pytest
from redis.cluster import key_slot

from posterr.db import load_queries
from posterr.keys import POSITIONS_KEPT_KEY, POSITIONS_SETTLING_KEY, write_position_key
from posterr.redis_client import Redis
from posterr.replicas import CLIENT, Replicas, Status

MAX_LAG = 5.0


@pytest.fixture
def replicas(servers):
    redis_ = Redis(servers.redis_url, timeout=1, retry_after=0.5, invalidation_deadline=1, connection_max_age=0.5)
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


class ReplicaCaughtUp:
    """A replica as Replicas.choose sees it: checked a moment ago, far past any position."""
    status = Status(replayed=2**62, current_at=0.0, error=None)

    @staticmethod
    def lag(_now: float) -> float:
        return 0.0


@pytest.fixture
def with_replica(replicas):
    replicas.replicas = [ReplicaCaughtUp()]
    return replicas


def test_positions_of_another_server_process_are_not_trusted(with_replica, redis_client):
    """A restart of the master that holds the positions may have lost its last second of writes (an
    append-only file fsynced each second), a fail-over to its replica too: `kept` then names another
    server process, and reads go to the primary until every such write is on the replicas."""
    assert with_replica.choose() is not None  # kept names this server (tests/integration/conftest.py)
    redis_client.set(POSITIONS_KEPT_KEY, "a-past-run-id")
    assert with_replica.choose() is None
    assert redis_client.exists(POSITIONS_SETTLING_KEY)


def test_every_position_lives_on_the_master_that_tells_their_loss():
    assert key_slot(write_position_key("198.51.100.4").encode()) == key_slot(POSITIONS_KEPT_KEY.encode())
