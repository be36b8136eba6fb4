"""A client's write position in Redis (posterr/replicas.py, guarantee 1): every write renews the
client's protection, whatever position is kept, and a loss of positions is seen wherever it happens
and whatever loses them, one key or all."""

from __future__ import annotations

import time

import pytest
from redis.cluster import key_slot

from posterr.db import load_queries
from posterr.keys import POSITIONS_HOLDER, POSITIONS_SETTLING_KEY, WRITE_POSITIONS_EXPIRY_KEY, WRITE_POSITIONS_KEY
from posterr.redis_client import Redis
from posterr.replicas import CLIENT, Replicas, Status

MAX_LAG = 5.0
NEEDED_MS = MAX_LAG * 1000 + 1000  # how long a position is kept (Replicas.position_ttl_ms)
CLIENT_ADDRESS = "192.0.2.7"


@pytest.fixture
def replicas(servers):
    redis_ = Redis(servers.redis_url, timeout=1, retry_after=0.5, invalidation_deadline=1, reconnect_interval=0.5)
    token = CLIENT.set(CLIENT_ADDRESS)
    yield Replicas("postgresql://unused", [], load_queries(), redis_, max_lag=MAX_LAG, check_interval=1)
    CLIENT.reset(token)
    redis_.close()


def kept_until_ms(redis_client, client: str = CLIENT_ADDRESS) -> float:
    return redis_client.zscore(WRITE_POSITIONS_EXPIRY_KEY, client)


@pytest.mark.parametrize("first, later", [(None, "0/10"), ("0/20", "0/10"), ("0/10", "0/10")])
def test_a_write_renews_the_protection_of_a_higher_position(replicas, redis_client, first, later):
    """A later write whose position is not above the one kept (the "unknown" marker of a write whose
    position could not be read, or a concurrent write's) keeps the higher one, for its own full time."""
    replicas.remember_write(first)
    kept = redis_client.hget(WRITE_POSITIONS_KEY, CLIENT_ADDRESS)
    redis_client.zadd(WRITE_POSITIONS_EXPIRY_KEY, {CLIENT_ADDRESS: time.time() * 1000 + 50})  # running out
    replicas.remember_write(later)
    assert redis_client.hget(WRITE_POSITIONS_KEY, CLIENT_ADDRESS) == kept
    assert kept_until_ms(redis_client) > time.time() * 1000 + NEEDED_MS / 2


def test_a_higher_position_replaces_a_lower_one(replicas, redis_client):
    replicas.remember_write("0/10")
    replicas.remember_write("1/0")
    assert redis_client.hget(WRITE_POSITIONS_KEY, CLIENT_ADDRESS) == b"0000000100000000"


def test_positions_past_their_time_are_dropped_by_later_writes(replicas, redis_client):
    replicas.remember_write("0/10")
    redis_client.zadd(WRITE_POSITIONS_EXPIRY_KEY, {CLIENT_ADDRESS: time.time() * 1000 - 1})
    CLIENT.set("198.51.100.4")
    replicas.remember_write("0/20")
    # (With a replica, the suite's own client keeps a position too: tests/conftest.py.)
    assert redis_client.hget(WRITE_POSITIONS_KEY, CLIENT_ADDRESS) is None
    assert redis_client.zscore(WRITE_POSITIONS_EXPIRY_KEY, CLIENT_ADDRESS) is None
    assert redis_client.hget(WRITE_POSITIONS_KEY, "198.51.100.4") == b"0000000000000020"
    assert redis_client.hget(WRITE_POSITIONS_KEY, POSITIONS_HOLDER) is not None


class ReplicaCaughtUp:
    """A replica as Replicas.choose sees it: checked a moment ago, far past any position."""
    status = Status(replayed=2**62, current_at=0.0, error=None)

    @staticmethod
    def lag(_now: float) -> float:
        return 0.0


class ReplicaBehind(ReplicaCaughtUp):
    """A replica that has replayed up to 0/100 only."""
    status = Status(replayed=0x100, current_at=0.0, error=None)


@pytest.fixture
def with_replica(replicas):
    replicas.replicas = [ReplicaCaughtUp()]
    return replicas


def test_positions_of_another_server_process_are_not_trusted(with_replica, redis_client):
    """A restart of the master that holds the positions may have lost its last second of writes (an
    append-only file fsynced each second), a fail-over to its replica too: the holder then names
    another server process, and reads go to the primary until every such write is on the replicas."""
    assert with_replica.choose() is not None  # the holder names this server (tests/integration/conftest.py)
    redis_client.hset(WRITE_POSITIONS_KEY, POSITIONS_HOLDER, "a-past-run-id")
    assert with_replica.choose() is None
    assert redis_client.exists(POSITIONS_SETTLING_KEY)


@pytest.mark.parametrize("lost", [WRITE_POSITIONS_KEY, WRITE_POSITIONS_EXPIRY_KEY])
def test_a_position_lost_alone_is_a_loss_of_positions(replicas, redis_client, lost):
    """What loses one key (an eviction under allkeys-lru or allkeys-random, a DEL) cannot make a
    client's write look like no write: the client's reads go to the primary until the loss settles."""
    replicas.replicas = [ReplicaBehind()]
    replicas.remember_write("0/10")
    assert replicas.choose() is not None  # it has the client's write
    replicas.remember_write("0/200")
    assert replicas.choose() is None  # it does not
    redis_client.delete(lost)
    CLIENT.set("198.51.100.4")
    replicas.remember_write("0/10")  # another client writes meanwhile
    CLIENT.set(CLIENT_ADDRESS)
    assert replicas.choose() is None
    assert redis_client.exists(POSITIONS_SETTLING_KEY)


def test_every_position_lives_on_the_master_that_tells_their_loss():
    assert len({key_slot(key.encode()) for key in
                (WRITE_POSITIONS_KEY, WRITE_POSITIONS_EXPIRY_KEY, POSITIONS_SETTLING_KEY)}) == 1
