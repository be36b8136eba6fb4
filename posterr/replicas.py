"""Read replicas (DATABASE_REPLICA_URLS): which server may answer a read. The three guarantees, in
order (docs/deployment.md#read-replicas explains each):

1. Read-your-writes per client: after a write commits, the primary's WAL position is kept in Redis
   for the client (WRITE_POSITIONS_KEY, posterr/keys.py, beside the Redis process that holds the
   positions, so any loss of one is seen); a read goes to a replica only if it has replayed past it,
   and to the primary whenever Redis cannot say.
2. Bounded staleness for everyone: a replica serves only while it is provably at most
   POSTERR_REPLICA_MAX_LAG behind the primary's sampled WAL position (PrimaryHistory).
3. Nothing read from a replica reaches Redis (`DataTier.read_primary` fills the cache).

A replica that fails a read is skipped until its next good check; the read runs again on the
primary, and the client sees no error.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from contextvars import ContextVar
from dataclasses import dataclass

import psycopg
from psycopg.rows import dict_row

from posterr import logs, metrics
from posterr.db import Database, Query, Session
from posterr.errors import ServiceUnavailable
from posterr.keys import POSITIONS_HOLDER, POSITIONS_SETTLING_KEY, WRITE_POSITIONS_EXPIRY_KEY, WRITE_POSITIONS_KEY
from posterr.redis_client import Redis
from posterr.wal_positions import PrimaryHistory, lsn, position_text

log = logging.getLogger("posterr.replicas")

# The client of the request being served (set by the HTTP edge); None outside a request.
CLIENT: ContextVar[str | None] = ContextVar("posterr_client", default=None)

# KEYS: positions, their expiry; ARGV: the client, its position, how long it is needed (ms). A
# position only grows (the "unknown" marker, all F, is above every position), and every write
# renews its protection: a write whose position is below the one kept is covered by it from now on.
# Positions past their time are dropped, a few at each write: every replica allowed to serve has
# their writes. Expiry times lost alone would leave positions forever: that is dropped as a loss.
_REMEMBER = """
if redis.call('EXISTS', KEYS[2]) == 0 and redis.call('HLEN', KEYS[1]) > 1 then redis.call('DEL', KEYS[1]) end
local known = redis.call('HGET', KEYS[1], ARGV[1])
if not known or known < ARGV[2] then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 16)
if #gone > 0 then
  redis.call('HDEL', KEYS[1], unpack(gone))
  redis.call('ZREM', KEYS[2], unpack(gone))
end
return 1
"""
# KEYS: positions, settling; ARGV: the settling time (ms), the current server's run_id, the holder
# field. Only the first to find the holder missing or another server's starts it.
_POSITIONS_LOST = """
if redis.call('HGET', KEYS[1], ARGV[3]) ~= ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[3], ARGV[2])
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
end
return 1
"""


@dataclass(frozen=True)
class Status:
    replayed: int = 0
    current_at: float | None = None  # monotonic; see PrimaryHistory.current_at
    error: str | None = "not checked yet"
    # It is the primary the app writes to: behind Patroni every member is listed as a replica, and
    # the one that leads serves no replica reads (expected, not a fault).
    primary: bool = False


class Replica:
    def __init__(self, url: str, db: Database):
        self.url = url
        self.name = db.name
        self.db = db
        self.status = Status()  # replaced whole by the checker thread, read by request threads

    def lag(self, now: float) -> float:
        """How far behind it may be, in seconds; infinite while unknown or unreachable."""
        status = self.status
        return math.inf if status.error or status.current_at is None else max(0.0, now - status.current_at)

    def readiness(self, now: float, max_lag: float) -> dict:
        """Its state and lag as /readyz shows them to anyone: no name, address or error text (the
        log's replica_down and `python -m posterr replicas` give those to operators)."""
        lag = self.lag(now)
        state = ("primary" if self.status.primary else "down" if self.status.error
                 else "ok" if lag <= max_lag else "lagging")
        return {"state": state, "lag_seconds": None if math.isinf(lag) else round(lag, 3)}


class Replicas:
    """The replicas of one worker: their pools, their checked state, and the choice of one per read."""

    def __init__(self, primary_url: str, replicas: list[Replica], queries: dict[str, Query], redis: Redis, *,
                 max_lag: float, check_interval: float):
        self.primary_url = primary_url
        self.replicas = replicas
        self.queries = queries
        self.redis = redis
        self.max_lag = max_lag
        self.check_interval = check_interval
        self.history = PrimaryHistory(keep=max_lag + 2 * check_interval)
        self.position_ttl_ms = int(max_lag * 1000) + 1000
        self._remember = redis.script(_REMEMBER)
        self._positions_lost = redis.script(_POSITIONS_LOST)
        self._checker_connections: dict[str, psycopg.Connection] = {}
        self._primary_failing = False
        self._primary_started = None  # when the primary last sampled started: it names that server
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the per-read choice -----------------------------------------------------------------

    def choose(self) -> Replica | None:
        """A replica that may answer the current client's read now, or None for the primary."""
        client = CLIENT.get()
        if client is None:
            return None
        now = time.monotonic()
        usable = [replica for replica in self.replicas if replica.lag(now) <= self.max_lag]
        if not usable:
            return None
        values = self.redis.run(lambda redis_: self._positions(redis_, client))
        holder = self.redis.epoch_of(WRITE_POSITIONS_KEY)  # learnt on the connection the reads used
        if values is None or holder is None:  # Redis cannot say what this client wrote: only the primary surely has it
            return None
        (position, kept), settling = values
        if kept is None or kept.decode() != holder:  # lost (FLUSHALL, a restart, an eviction), this position perhaps too
            self.redis.run(lambda _: self._positions_lost(keys=[WRITE_POSITIONS_KEY, POSITIONS_SETTLING_KEY],
                                                          args=[self.position_ttl_ms, holder, POSITIONS_HOLDER]))
            return None
        if settling:
            return None
        required = int(position, 16) if position else 0
        fit = [replica for replica in usable if replica.status.replayed >= required]
        return random.choice(fit) if fit else None

    @staticmethod
    def _positions(redis_, client: str) -> list:
        """[[the client's position, the holder], settling], in one round trip (one slot: one master
        on a cluster too)."""
        pipeline = redis_.pipeline(transaction=False)
        pipeline.hmget(WRITE_POSITIONS_KEY, [client, POSITIONS_HOLDER])
        pipeline.get(POSITIONS_SETTLING_KEY)
        return pipeline.execute()

    def failed(self, replica: Replica, error: Exception) -> None:
        """A read failed on `replica`: no more reads there until a check finds it well again."""
        replica.status = Status(replica.status.replayed, replica.status.current_at, f"a read failed: {error}")
        logs.event(log, "replica_read_failed", logging.WARNING, replica=replica.name, error=str(error))

    def remember_write(self, position: str | None) -> None:
        """The current client's writes are at or before `position` (guarantee 1); kept for as long
        as a replica allowed to serve could still lack them. None (unknown): no replica may serve
        this client meanwhile."""
        client = CLIENT.get()
        if client is None:
            return
        keys, args = [WRITE_POSITIONS_KEY, WRITE_POSITIONS_EXPIRY_KEY], [client, position_text(position),
                                                                         self.position_ttl_ms]
        if self.redis.run_now(lambda _: self._remember(keys=keys, args=args)) is None:
            logs.event(log, "write_position_not_kept", logging.WARNING, client=client, position=position,
                       note="this client may read from a replica that lacks its write")

    # --- the checker -------------------------------------------------------------------------

    def start(self) -> None:
        for replica in self.replicas:
            replica.db.open()
        self._thread = threading.Thread(target=self._check_forever, name="posterr-replica-check", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread:
            self._thread.join(timeout=5)
        for replica in self.replicas:
            replica.db.close()
        for conn in self._checker_connections.values():
            conn.close()

    def _check_forever(self) -> None:
        while not self._stopping.wait(self.check_interval):
            try:
                self.check()
            except Exception:  # a bug here must not end the checks: the replicas would serve stale reads
                log.exception("replica_check_crashed", extra={"event": "replica_check_crashed"})
                for replica in self.replicas:
                    replica.status = Status(error="the check failed; see the log")

    def check(self) -> None:
        """Sample the primary, then each replica (a sample must come first: see PrimaryHistory)."""
        at = time.monotonic()
        try:
            sample = self._checker(self.primary_url)("primary_position")
            self.history.add(at, lsn(sample["position"]))
            self._primary_started = sample["started"]
            self._primary_failing = False
        except psycopg.Error as error:
            self._drop_checker(self.primary_url)
            if not self._primary_failing:  # once per outage, not at every check
                logs.event(log, "replica_check_failed", logging.WARNING, server="primary", error=str(error),
                           note="no replica serves once POSTERR_REPLICA_MAX_LAG has passed without a sample")
            self._primary_failing = True
        for replica in self.replicas:
            replica.status = self._checked(replica)
        now = time.monotonic()
        for replica in self.replicas:
            lag = replica.lag(now)
            metrics.observe_replica(replica.name, lag, lag <= self.max_lag)

    def _checked(self, replica: Replica) -> Status:
        try:
            row = self._checker(replica.url, any_role=True)("replica_position")
        except psycopg.Error as error:
            self._drop_checker(replica.url)
            if not replica.status.error:
                logs.event(log, "replica_down", logging.WARNING, replica=replica.name, error=str(error))
            return Status(replica.status.replayed, replica.status.current_at, f"unreachable: {error}")
        if not row["in_recovery"]:
            if row["started"] == self._primary_started:
                return Status(error="the primary the app writes to: it serves no replica reads", primary=True)
            return Status(error="not a replica (promoted?): it no longer follows the primary")
        replayed = max(lsn(row["position"]), replica.status.replayed)
        current_at = self.history.current_at(replayed)
        if replica.status.current_at is not None and (current_at is None or current_at < replica.status.current_at):
            current_at = replica.status.current_at
        if replica.status.error:
            # Back: but the reads' pool may still be waiting out its reconnection backoff, and a read
            # sent there would wait for a connection before falling back. Serve once the pool answers.
            try:
                replica.db("ping")
            except ServiceUnavailable:
                return Status(replayed, current_at, "reachable; its connection pool is reconnecting")
            if current_at is not None:
                logs.event(log, "replica_up", replica=replica.name)
        return Status(replayed, current_at, None)

    def _checker(self, url: str, any_role: bool = False) -> Session:
        """A connection kept for the checks. `any_role`: whatever the role the URL asks for (a replica's
        may ask for a standby), so that the check reaches a primary and tells it apart."""
        conn = self._checker_connections.get(url)
        if conn is None or conn.closed:
            role = {"target_session_attrs": "any"} if any_role else {}
            conn = psycopg.connect(url, autocommit=True, connect_timeout=2, row_factory=dict_row,
                                   options="-c statement_timeout=2000", **role)
            self._checker_connections[url] = conn
        return Session(conn, self.queries)

    def _drop_checker(self, url: str) -> None:
        conn = self._checker_connections.pop(url, None)
        if conn is not None:
            conn.close()

    def readiness(self) -> list[dict]:
        """Each replica's Replica.readiness, in the order of DATABASE_REPLICA_URLS."""
        now = time.monotonic()
        return [replica.readiness(now, self.max_lag) for replica in self.replicas]

