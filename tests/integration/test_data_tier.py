"""DataTier (posterr/data_tier.py) over the suite's PostgreSQL, a streaming replica of it and Redis:
where a read goes, a replica's failed read done again on the primary, and the write position that a
write transaction leaves for its client (posterr/replicas.py, guarantee 1). The replica's state is
what Replicas.check finds, called here instead of by its thread, so each test says when it is known."""

from __future__ import annotations

import itertools
import time

import pytest

from posterr.data_tier import DataTier
from posterr.db import Database, load_queries
from posterr.keys import WRITE_POSITIONS_KEY
from posterr.redis_client import Redis
from posterr.replicas import CLIENT, Replica, Replicas
from posterr.wal_positions import lsn
from tests.cluster.conftest import wait_for

MAX_LAG = 30.0  # seconds: above any apply delay the suite's replica may have (make test-cluster)
POOL_TIMEOUT = 0.5  # seconds a read waits for a pooled connection
_clients = (f"192.0.2.{n}" for n in itertools.count(10))


@pytest.fixture(scope="module")
def replica_url(servers):
    if servers.replica_url:  # the suite's own (POSTERR_TEST_REPLICA_DELAY)
        yield servers.replica_url
        return
    if not servers.owned:
        pytest.skip("needs the suite's own PostgreSQL (DATABASE_URL is set): it grows a replica of it")
    yield servers.start_replica("0s")
    servers.stop_replica()
    servers.replica_url = None


def database(url: str) -> Database:
    return Database(url, load_queries(), min_size=1, max_size=2, timeout=POOL_TIMEOUT, statement_timeout_ms=5000)


@pytest.fixture
def tier(servers, replica_url):
    """A DataTier as a worker has it, its pools open, its replica checked once it has caught up."""
    redis_ = Redis(servers.redis_url, timeout=1, retry_after=0.5, invalidation_deadline=1, reconnect_interval=0.5)
    primary, replica = database(servers.database_url), Replica(replica_url, database(replica_url))
    replicas = Replicas(servers.database_url, [replica], load_queries(), redis_, max_lag=MAX_LAG, check_interval=1)
    tier = DataTier(primary, replicas)
    primary.open()
    replica.db.open()  # not tier.start(): its checker thread would check when it likes
    token = CLIENT.set(next(_clients))
    try:
        wait_until_serving(tier)
        yield tier
    finally:
        CLIENT.reset(token)
        tier.stop()
        redis_.close()


def the_replica(tier: DataTier) -> Replica:
    return tier.replicas.replicas[0]


def wait_until_serving(tier: DataTier, replayed_past: int = 0) -> None:
    def serving() -> bool:
        tier.replicas.check()
        replica = the_replica(tier)
        return replica.lag(time.monotonic()) <= MAX_LAG and replica.status.replayed >= replayed_past
    wait_for(serving, 30, "the replica to be checked and serving")


def in_recovery(run) -> bool:
    """What a read finds out about the server it ran on: True on a replica."""
    return run("replica_position")["in_recovery"]


def test_a_client_that_wrote_nothing_reads_from_the_replica(tier):
    assert tier.read(in_recovery) is True


def test_a_read_outside_any_request_goes_to_the_primary(tier):
    token = CLIENT.set(None)  # no client: nobody whose writes a replica could be checked against
    try:
        assert tier.read(in_recovery) is False
    finally:
        CLIENT.reset(token)


def test_read_primary_never_goes_to_a_replica(tier):
    assert tier.read_primary(in_recovery) is False


def test_a_write_transaction_keeps_its_position_and_its_client_reads_the_primary_until_replayed(tier, sql,
                                                                                                redis_client):
    before = lsn(sql.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()[0])
    with tier.transaction() as run:
        user = run("insert_user", username="positioned", password_hash=None)
    after = lsn(sql.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()[0])
    kept_text = redis_client.hget(WRITE_POSITIONS_KEY, CLIENT.get())
    assert kept_text is not None, "the write kept no position for its client"
    kept = int(kept_text, 16)
    assert before < kept <= after  # past the insert's commit, taken on its own connection
    # The replica's state is the last check's, from before the write: it cannot show the write yet.
    assert the_replica(tier).status.replayed < kept
    assert tier.read(in_recovery) is False
    assert tier.read(lambda run: run("user_by_id", id=user["id"])) is not None
    wait_until_serving(tier, replayed_past=kept)
    assert tier.read(in_recovery) is True


def test_a_failed_replica_read_is_done_on_the_primary_and_the_replica_left_until_checked(tier):
    """Its pool has no connection to give (every one held here) within its timeout: the read still
    answers, from the primary, and the next reads go there at once, until a check finds it well."""
    replica = the_replica(tier)
    held = [replica.db.pool.getconn() for _ in range(replica.db.pool.max_size)]
    try:
        assert tier.read(in_recovery) is False
        assert replica.status.error and replica.lag(time.monotonic()) == float("inf")
        started = time.monotonic()
        assert tier.read(in_recovery) is False
        assert time.monotonic() - started < POOL_TIMEOUT  # not tried again: no wait for its pool
    finally:
        for conn in held:
            replica.db.pool.putconn(conn)
    wait_until_serving(tier)
    assert tier.read(in_recovery) is True
