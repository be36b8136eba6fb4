"""The Redis client: its circuit breaker, epochs and generations, and the delivery of a write's
changes before it is answered; what the document cache (posterr/document_cache.py), the home
timelines (posterr/home_timelines.py), the limits (posterr/limits.py) and the write positions
(posterr/replicas.py) are built on. Key names: posterr/keys.py.

PostgreSQL is the source of truth; Redis makes reads cheaper and holds the daily counters' fast
path. Redis trouble of any kind (refused, timed out, an error reply such as OOM, READONLY, MOVED or
LOADING) degrades like an outage: reads go to PostgreSQL, the limits fall back to PostgreSQL or fail
open. It is never a 500 and never a hang.

The cache's five mechanisms, the invariant each one keeps, and where it is tested:

1. Deadline: every Redis command gives up after `POSTERR_REDIS_TIMEOUT`, and no lock is held while
   one runs, so a Redis that hangs costs a request at most a few timeouts, never a stuck thread.
   Tested in tests/integration/test_faults.py (a Redis restarted, frozen, paused: no hang).
2. Breaker: after a failure, reads and limits skip Redis for `POSTERR_REDIS_RETRY_AFTER` seconds,
   so an outage costs one timeout per process per interval instead of one per request. Tested in
   tests/unit/test_redis_client.py.
3. Epoch: document keys end with the run_id of the Redis server that holds them (learnt on every
   connection; on a Redis Cluster, the master serving the key's slot) and a value is used only if
   that run_id did not change during the call, so copies written to an earlier server process
   (reloaded from its append-only file, perhaps missing deletes it never received) are never read.
   A refused or broken connection is no new server, though (a proxy, a Service with no endpoint and
   a firewall refuse while Redis keeps every key): every cached copy also carries the generation it
   was made in (the server's GENERATION_KEY; on a Redis Cluster its master's, see
   generation_key_in_slot), each cached read compares it with the current one in the same script,
   and a process bumps a server's generation on its first connection to it after one of its own
   connections failed or broke, before it sends anything else. So whatever a write could not
   delete while Redis (or one master) refused it is never read once it answers again. A Redis may
   refuse new connections while the established ones go on (a Service whose endpoint went away):
   each process opens a new connection at least every POSTERR_REDIS_RECONNECT_INTERVAL, and at every
   use after one was refused (posterr/redis_connections.py), so every busy process is refused within
   that time, counts the failure and reads no more through its open ones; a write that was refused
   is answered only then (mechanism 4). The epoch is
   tested in tests/integration/test_cache.py (a restart) and test_redis_cluster.py (per master);
   the generation in tests/integration/test_redis_refusals.py, tests/unit/test_redis_client.py and
   tests/unit/test_keys.py.
4. Invalidation before the answer: a write is answered only after every cached copy that could hide
   it is deleted or unreachable to readers. Deletes are retried while Redis might come back with the
   same copies (a freeze, a pause, a timeout) until `POSTERR_CACHE_INVALIDATION_DEADLINE`; a refused
   connection is retried only until every busy process has tried a new connection since (mechanism 3):
   whatever answers next is another server (another epoch) or is reached through new connections,
   which bump the generation first. On a Redis Cluster
   each command goes on its own (posterr/cluster_delivery.py), so a master that refuses does not
   keep the write's changes from the others. On an error reply (OOM refuses a script that writes,
   not a DEL) what could not be updated, a home timeline push, is deleted instead
   (`cache_updated_by_delete`). Past the deadline, or when that fails too, the write is answered
   anyway: the copy then lives out its TTL, and `cache_invalidation_failed` is logged and counted.
   Tested in tests/integration/test_cache.py, test_faults.py (pause, freeze, error replies) and
   test_redis_cluster.py (a dead master).
5. Generation token: the first reader to miss puts a token in the hash, and stores what it computed
   only if that token is still there, so a slow reader cannot put back a page older than a write
   that deleted the hash meanwhile (posterr/document_cache.py). Tested in
   tests/integration/test_cache.py.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster, key_slot
from redis.commands.core import Script
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from posterr import deferred_check, logs, metrics
from posterr.cluster_delivery import Batch, EachCommand
from posterr.keys import GENERATION_KEY, generation_key_in_slot
from posterr.redis_connections import Refusals, cluster_enabled, connection_class, server_of
from posterr.redis_failures import BETWEEN_STATES, REDIS_ERRORS, refused, refused_connection

log = logging.getLogger("posterr.cache")


def lowest_own_slot(cluster_nodes: str) -> int | None:
    """The lowest slot that the node answering CLUSTER NODES serves (None: it serves none)."""
    for line in cluster_nodes.splitlines():
        fields = line.split()
        if len(fields) > 8 and "myself" in fields[2].split(","):
            starts = [int(field.split("-")[0]) for field in fields[8:] if not field.startswith("[")]
            return min(starts, default=None)
    return None


EpochOf = Callable[[str], str]  # a key name (its hash tag) -> the epoch its keys carry now


class Change(NamedTuple):
    """Commands a write must get to Redis before it is answered: queue_commands(target, epoch_of)
    adds them to a pipeline (or, on a Redis Cluster, runs them); queue_deletes_instead adds the
    deletes that make it safe when Redis refuses them with an error reply (under OOM a script that
    writes is refused, a DEL is not). None: the commands are deletes already."""
    queue_commands: Callable[[Any, EpochOf], None]
    described: list[str]  # what they change, for the log line when they cannot be delivered
    queue_deletes_instead: Callable[[Any, EpochOf], None] | None = None


class Redis:
    def __init__(self, url: str, *, timeout: float, retry_after: float, invalidation_deadline: float,
                 reconnect_interval: float):
        self.retry_after = retry_after
        self.invalidation_deadline = invalidation_deadline
        self._down_until = 0.0
        self.epoch: str | None = None  # the (standalone) server's run_id, see the module docstring
        self.scripts: list[Script] = []  # every script the app runs, to load again into a server that lost them
        self._epochs: dict[tuple[str, int], str] = {}  # a cluster's: (host, port) -> run_id
        # Mechanism 3: this process's connection failures so far (redis-py's connections report
        # each, those it retries on its own included), and each server's count at its last bump; a
        # cluster master's generation key, with the slot it is in.
        self._failures = 0
        self._bumped_after: dict[tuple[str, int], int] = {}
        self._generation_keys: dict[str, tuple[int, str]] = {}
        self.refusals = Refusals(reconnect_interval)
        # One retry, on a new connection, when a pooled one turns out dead (Redis restarted); a
        # timeout is not retried: the deadline is the deadline.
        self._url, self._timeout = url, timeout
        self._options = {"socket_timeout": timeout, "socket_connect_timeout": timeout, "retry_on_timeout": False,
                         "retry": Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
                         "redis_connect_func": self._on_connect,
                         "connection_class": connection_class(url, self._connection_broke, reconnect_interval)}
        # Standalone or a cluster: asked at start, and while Redis does not answer, again at each call
        # until it does; meanwhile Redis counts as down (the cache is skipped, never stale).
        self.cluster: bool | None = None
        self.client: redis.Redis | RedisCluster = redis.Redis.from_url(url, **self._options)
        try:
            self._learn_mode()
        except REDIS_ERRORS as error:
            logs.event(log, "redis_mode_unknown", logging.WARNING, error=f"{type(error).__name__}: {error}",
                       note="Redis did not say whether it is a cluster: it counts as down until it does")

    def _learn_mode(self) -> None:
        """Knows whether Redis is a cluster, asking it if need be; raises what Redis raises."""
        if self.cluster is not None:
            return
        if not cluster_enabled(self._url, self._timeout):
            self.cluster = False
            return
        try:  # a master that is down leaves its slots dark without failing the others'
            client = RedisCluster.from_url(self._url, require_full_coverage=False, **self._options)
        except Exception as error:
            raise RedisClusterException(f"the cluster could not be read ({type(error).__name__}: {error})") from error
        for script in self.scripts:
            script.registered_client = client
        self.client, self.cluster = client, True
        logs.event(log, "redis_mode_learned", cluster=True)

    def _on_connect(self, connection) -> None:
        connection.on_connect()
        server = server_of(connection)
        self.refusals.ended(server)
        failures = self._failures
        if self._bumped_after.get(server, 0) < failures:
            # A connection of ours failed or broke: a write of this process may have left copies
            # undeleted meanwhile (mechanism 3). Only this connection exists here, so it goes first;
            # a bump refused (an error reply, OOM say) fails the connection, and the next one tries.
            key = self._own_generation_key(connection)
            if key is not None:
                connection.send_command("SET", key, f"{random.getrandbits(64):016x}")
                connection.read_response()
            self._bumped_after[server] = failures
        connection.send_command("INFO", "server")
        info = connection.read_response()
        info = info.decode() if isinstance(info, bytes) else info
        run_id = next(line.split(":", 1)[1].strip()[:12] for line in info.splitlines() if line.startswith("run_id:"))
        if self.cluster is False:
            self.epoch = run_id
        else:  # a cluster's node (the mode is being learnt while the cluster client connects)
            self._epochs[connection.host, connection.port] = run_id

    def _own_generation_key(self, connection) -> str | None:
        """The generation key of the server at the other end of `connection` (None: a cluster node
        that serves no slot), asking the node itself: this process's map of the cluster may be the
        one being rebuilt."""
        if self.cluster is False:
            return GENERATION_KEY
        connection.send_command("CLUSTER", "NODES")
        reply = connection.read_response()
        slot = lowest_own_slot(reply.decode() if isinstance(reply, bytes) else reply)
        return None if slot is None else generation_key_in_slot(slot)

    def script(self, source: str) -> Script:
        """A Lua script to call as script(keys=…, args=…[, client=…]); see cluster_delivery.Batch for why it is kept."""
        registered = self.client.register_script(source)
        self.scripts.append(registered)
        return registered

    def epoch_of(self, name: str) -> str | None:
        """The epoch that `name`'s keys carry now (see the module docstring); None when Redis is
        unavailable (the breaker) or cannot say."""
        if not self.cluster and self.epoch is not None:
            return self.epoch  # the one server's, already known: no call (twice per cached read)
        try:
            return self.run(lambda _: self._epoch_now(name))
        except RedisClusterException:
            return None

    def _epoch_now(self, name: str) -> str:
        """As epoch_of, connecting first if need be; raises what Redis raises."""
        if not self.cluster:
            if self.epoch is None:
                self.client.ping()  # learn the epoch: other processes may have written under it
            return self.epoch
        node = self.client.get_node_from_key(name)
        if (node.host, node.port) not in self._epochs:
            self.client.ping(target_nodes=node)
        return self._epochs[node.host, node.port]

    def generation_key(self, name: str) -> str:
        """The key that copies of `name` compare their generation with (mechanism 3): the server's,
        on a Redis Cluster the one of the master that serves `name`'s slot, in its lowest slot."""
        if not self.cluster:
            return GENERATION_KEY
        node = self.client.get_node_from_key(name)
        slots = self.client.nodes_manager.slots_cache
        known = self._generation_keys.get(node.name)
        if known is None or not _serves(slots, known[0], node.name):
            lowest = next(slot for slot in range(REDIS_CLUSTER_SLOTS) if _serves(slots, slot, node.name))
            known = self._generation_keys[node.name] = (lowest, generation_key_in_slot(lowest))
        return known[1]

    def same_slot(self, items: list, name_of: Callable[[Any], str]) -> list[list]:
        """`items` in groups whose keys (name_of(item)) share a Redis Cluster slot, so that one script
        call may touch a group's keys (all in one group on a standalone server)."""
        if not self.cluster:
            return [items] if items else []
        groups: dict[int, list] = {}
        for item in items:
            groups.setdefault(key_slot(name_of(item).encode()), []).append(item)
        return list(groups.values())

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def run(self, operation: Callable[[redis.Redis], Any]) -> Any | None:
        """operation(client), or None when Redis failed now or a moment ago (the breaker); a check the
        request deferred (posterr/deferred_check.py) is settled first."""
        deferred_check.settle()
        if not self.available:
            return None
        return self.run_now(operation)

    def read(self, script: Script, keys: list[str], args: list) -> Any | None:
        """A read script's reply (None when Redis failed), given `args` and then the generation key
        of keys[0], sent in one round trip with the check the request deferred, if any
        (posterr/deferred_check.py), whose refusal is raised before the caller does anything with
        it. On a Redis Cluster the two go one after the other (its pipeline takes no script)."""
        if deferred_check.PENDING.get() is None or self.cluster or not self.available:
            # which settles the check first
            return self.run(lambda _: script(keys=keys, args=[*args, self.generation_key(keys[0])]))
        check = deferred_check.take()
        batch = Batch(self.client, self.scripts)
        check.queue(batch)
        script(keys=keys, args=[*args, GENERATION_KEY], client=batch)
        replies = self.run_now(lambda _: batch.execute(raise_on_error=False))
        check_reply, read_reply = replies if replies else (None, None)
        check.deliver(None if isinstance(check_reply, Exception) else check_reply)
        return None if isinstance(read_reply, Exception) else read_reply

    def ping(self) -> bool:
        """A real round trip even while the breaker is open: readiness must tell the truth."""
        return bool(self.run_now(lambda client: client.ping()))

    def run_now(self, operation: Callable[[redis.Redis], Any]) -> Any | None:
        """operation(client) even while the breaker is open; a success closes it, a failure opens it."""
        try:
            self._learn_mode()
            result = operation(self.client)
        except REDIS_ERRORS as error:
            self.failed(error)
            return None
        self._down_until = 0.0
        return result

    def failed(self, error: Exception) -> None:
        if isinstance(error, (redis.ConnectionError, redis.TimeoutError)):
            self.connection_failed()
        if self.available:
            logs.event(log, "redis_degraded", logging.WARNING, error=f"{type(error).__name__}: {error}",
                       skip_seconds=self.retry_after)
        self._down_until = time.monotonic() + self.retry_after

    def connection_failed(self) -> None:
        """Each server's next connection from this process bumps its generation first (mechanism 3)."""
        self._failures += 1

    def _connection_broke(self, connection, error: BaseException) -> None:
        self.connection_failed()
        if refused_connection(error):
            self.refusals.seen(server_of(connection))

    def before_answer(self, *changes: Change) -> None:
        """Delivers a write's changes in one round trip, before the write is answered (invariant 4):
        retried while Redis is there but silent, until `invalidation_deadline`; again under a new
        epoch if the server changed meanwhile; given up (logged, counted) on an error reply or past
        it. Refused, they are retried until every process has been refused too (mechanism 3)."""
        give_up_at = time.monotonic() + self.invalidation_deadline
        pause = 0.02
        while True:
            try:
                if self._run_under_current_epoch(changes):
                    return
                continue  # reconnected to another server meanwhile: run under its epoch too
            except MasterRefused as error:
                failure = error  # the other masters have the changes and serve on: no breaker
            except redis.ResponseError as error:
                if not isinstance(error, BETWEEN_STATES):
                    return self._delete_instead(changes, error)
                failure = error
                self.failed(error)
            except REDIS_ERRORS as error:
                failure = error
                self.failed(error)
            # Refused: whatever answers next is another server (another epoch) or is reached through
            # new connections, which bump the generation first; until then no process may read
            # through a connection older than the refusal.
            retry_until = min(give_up_at, self.refusals.seen_by_all_at()) if refused(failure) else give_up_at
            now = time.monotonic()
            if now >= retry_until:
                return None if refused(failure) else _give_up(changes, failure)
            time.sleep(min(pause, retry_until - now))  # Redis is there but silent, or refusing: try again shortly
            pause = min(pause * 2, 0.5)

    def _delete_instead(self, changes: tuple[Change, ...], error: redis.ResponseError) -> None:
        """An error reply: what could not be updated is deleted (readers rebuild it), once."""
        deletes = tuple(Change(change.queue_deletes_instead or change.queue_commands, change.described)
                        for change in changes)
        try:
            if self._run_under_current_epoch(deletes):
                logs.event(log, "cache_updated_by_delete", logging.WARNING, keys=_described(changes),
                           error=f"{type(error).__name__}: {error}")
                return
        except REDIS_ERRORS as second:
            error = second
        _give_up(changes, error)

    def _run_under_current_epoch(self, changes: tuple[Change, ...]) -> bool:
        self._learn_mode()
        used: dict[str, str] = {}

        def epoch_of(name: str) -> str:
            used[name] = self._epoch_or_dark(name)
            return used[name]

        # One round trip on a standalone server. redis-py's cluster pipeline refuses scripts, so on
        # a cluster each command goes on its own (a push is one call per slot of its readers).
        target = EachCommand(self.client, self.connection_failed) if self.cluster else Batch(self.client, self.scripts)
        for change in changes:
            change.queue_commands(target, epoch_of)
        if not self.cluster:
            target.execute()
        if DARK in used.values():
            raise MasterRefused("a cluster master refused connections") from ConnectionRefusedError()
        return all(self._epoch_or_dark(name) == epoch for name, epoch in used.items())

    def _epoch_or_dark(self, name: str) -> str:
        """As _epoch_now; on a cluster, DARK for a key whose master refuses: its commands are refused
        too and skipped (EachCommand), and the others' still run."""
        try:
            return self._epoch_now(name)
        except REDIS_ERRORS as error:
            if self.cluster and refused(error):
                self.connection_failed()
                return DARK
            raise

    def close(self) -> None:
        self.client.close()


DARK = "dark"  # the epoch of a cluster master that refuses connections (no server has it as run_id)


class MasterRefused(redis.ConnectionError):
    """A write's changes went to every master of a Redis Cluster but those that refuse connections."""
REDIS_CLUSTER_SLOTS = 16384


def _serves(slots_cache: dict, slot: int, node_name: str) -> bool:
    """Whether a RedisCluster client's map of the cluster has `slot` served by `node_name`."""
    nodes = slots_cache.get(slot)
    return bool(nodes) and nodes[0].name == node_name


def current_generation(key: str, token: str) -> str:
    """Lua that sets `generation` to the current one (mechanism 3) from the generation key `key`
    (an argument, not one of KEYS: on a Redis Cluster it is in another slot of the same master, which
    a script without flags may touch); a generation lost with its key is replaced by a new one (the
    reader's random token), never by a value a past one had."""
    return f"""
local generation = redis.call('GET', {key})
if not generation then
  generation = {token}
  redis.call('SET', {key}, generation)
end
"""


def missed(token: str, ttl: str) -> str:
    """Lua that ends a read script on a miss: the reader's `token` goes into the hash KEYS[1] unless
    another reader's is there (mechanism 5), with the current `generation` (current_generation) and
    the TTL `ttl`; returns {0, the token in place}, which the store must find again."""
    return f"""if redis.call('HSETNX', KEYS[1], '~gen', {token}) == 1 then
  redis.call('HSET', KEYS[1], '~g', generation)
  redis.call('EXPIRE', KEYS[1], {ttl})
end
return {{0, redis.call('HGET', KEYS[1], '~gen')}}
"""


def _described(changes: tuple[Change, ...]) -> list[str]:
    return [what for change in changes for what in change.described]


def _give_up(changes: tuple[Change, ...], error: redis.RedisError) -> None:
    metrics.CACHE_INVALIDATION_FAILURES.inc()
    logs.event(log, "cache_invalidation_failed", logging.ERROR, keys=_described(changes),
               error=f"{type(error).__name__}: {error}", note="these copies may be stale until their TTL")
