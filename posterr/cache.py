"""Redis: the client, the one place that builds key names, and the document cache.

PostgreSQL is the source of truth; Redis makes reads cheaper and holds the daily counters' fast
path. Redis trouble of any kind (refused, timed out, an error reply such as OOM, READONLY, MOVED or
LOADING) degrades like an outage: reads go to PostgreSQL, the limits fall back to PostgreSQL or fail
open. It is never a 500 and never a hang.

The mechanisms, and the invariant each one keeps (each has a test in tests/integration/test_cache.py):

1. Deadline: every Redis command gives up after `POSTERR_REDIS_TIMEOUT`, and no lock is held while
   one runs, so a Redis that hangs costs a request at most a few timeouts, never a stuck thread.
2. Breaker: after a failure, reads and limits skip Redis for `POSTERR_REDIS_RETRY_AFTER` seconds,
   so an outage costs one timeout per process per interval instead of one per request.
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
   delete while Redis (or one master) refused it is never read once it answers again.
4. Invalidation before the answer: a write is answered only after every cached copy that could hide
   it is deleted or unreachable to readers. Deletes are retried while Redis might come back with the
   same copies (a freeze, a pause, a timeout) until `POSTERR_CACHE_INVALIDATION_DEADLINE`; a refused
   connection needs no retry: whatever answers next is another server (another epoch) or is reached
   through a new connection of this process, which bumps the generation first. On an error
   reply (OOM refuses a script that writes, not a DEL) what could not be updated, a home timeline
   push, is deleted instead (`cache_updated_by_delete`). Past the deadline, or when that fails too,
   the write is answered anyway: the copy then lives out its TTL, and `cache_invalidation_failed`
   is logged and counted.
5. Generation token: the first reader to miss puts a token in the hash, and stores what it computed
   only if that token is still there, so a slow reader cannot put back a page older than a write
   that deleted the hash meanwhile.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable
from datetime import date
from typing import Any, NamedTuple

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster, key_slot
from redis.commands.core import Script
from redis.connection import parse_url
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from posterr import deferred_check, logs, metrics

log = logging.getLogger("posterr.cache")

PREFIX = "posterr"
# What a Redis call may raise: a cluster's own failures (no node for a slot, say) are not RedisErrors.
REDIS_ERRORS = (redis.RedisError, RedisClusterException)


def daily_quota_key(user_id: int, day: date) -> str:
    return f"{PREFIX}:quota:{{{user_id}}}:{day.isoformat()}"


def rate_limit_key(client: str) -> str:
    return f"{PREFIX}:rl:{client}"


def write_position_key(client: str) -> str:
    """The primary's WAL position after the client's last write (posterr/replicas.py); every client's
    on the one master that holds POSITIONS_KEPT_KEY, where their loss is seen."""
    return f"{PREFIX}:{{positions}}:wrote:{client}"


# Whether Redis still holds every client's write position (posterr/replicas.py, guarantee 1): `kept`
# holds the run_id of the server process that has held the positions since, so both a FLUSHALL and a
# restart (which may have lost its last second of writes) tell a loss; `settling` (a TTL) is the time
# after a loss during which a position may be missing. One hash tag with the positions.
POSITIONS_KEPT_KEY = f"{PREFIX}:{{positions}}:kept"
POSITIONS_SETTLING_KEY = f"{PREFIX}:{{positions}}:settling"
# The generation of every cached copy on a standalone server (mechanism 3): a random value, replaced
# by another at each bump, so that no past generation comes back (not even after the key is lost).
GENERATION_KEY = f"{PREFIX}:generation"


@functools.lru_cache(maxsize=64)
def generation_key_in_slot(slot: int) -> str:
    """A Redis Cluster master's generation key: one in the lowest slot it serves (`slot`), since a
    script may only touch keys of its own node. Its tag is the first number that hashes there."""
    tag = 0
    while key_slot(f"{GENERATION_KEY}:{{{tag}}}".encode()) != slot:
        tag += 1
    return f"{GENERATION_KEY}:{{{tag}}}"


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
    """Commands a write must get to Redis before it is answered: queue(target, epoch_of) adds them
    to a pipeline (or, on a Redis Cluster, runs them); `instead` adds the deletes that make it safe
    when Redis refuses them with an error reply (under OOM a script that writes is refused, a DEL is
    not). None: the commands are deletes already."""
    queue: Callable[[Any, EpochOf], None]
    what: list[str]  # for the log line when they cannot be delivered
    instead: Callable[[Any, EpochOf], None] | None = None


def connect(url: str, **options: Any) -> redis.Redis | RedisCluster:
    """A client for REDIS_URL as it is, a standalone server or a cluster (for the CLI and tests)."""
    return RedisCluster.from_url(url, **options) if is_cluster(url, 2.0) else redis.Redis.from_url(url, **options)


def is_cluster(url: str, timeout: float) -> bool | None:
    """Whether REDIS_URL names a node of a Redis Cluster (`INFO cluster`); None when it cannot be asked."""
    try:
        return _cluster_enabled(url, timeout)
    except redis.RedisError:
        return None


def _cluster_enabled(url: str, timeout: float) -> bool:
    probe = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return bool(probe.info("cluster").get("cluster_enabled"))
    finally:
        probe.close()


def reporting_failures(url: str, report: Callable[[], None]) -> type:
    """The redis-py connection class for `url`, calling report() whenever a connection fails to
    connect, send or read (mechanism 3): redis-py retries some failures on its own, unseen by callers."""
    base = parse_url(url).get("connection_class", redis.Connection)

    def reported(method: Callable) -> Callable:
        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except (redis.ConnectionError, redis.TimeoutError):
                report()
                raise
        return call

    methods = ("connect", "can_read", "send_packed_command", "read_response")
    return type(f"Reporting{base.__name__}", (base,), {name: reported(getattr(base, name)) for name in methods})


class Redis:
    def __init__(self, url: str, *, timeout: float, retry_after: float, invalidation_deadline: float):
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
        # One retry, on a new connection, when a pooled one turns out dead (Redis restarted); a
        # timeout is not retried: the deadline is the deadline.
        self._url, self._timeout = url, timeout
        self._options = {"socket_timeout": timeout, "socket_connect_timeout": timeout, "retry_on_timeout": False,
                         "retry": Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
                         "redis_connect_func": self._on_connect,
                         "connection_class": reporting_failures(url, self.connection_failed)}
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
        if not _cluster_enabled(self._url, self._timeout):
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
        server = getattr(connection, "path", None) or (connection.host, connection.port)
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
        """A Lua script to call as script(keys=…, args=…[, client=…]); see Batch for why it is kept."""
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

    def before_answer(self, *changes: Change) -> None:
        """Delivers a write's changes in one round trip, before the write is answered (invariant 4):
        retried while Redis is there but silent, until `invalidation_deadline`; again under a new
        epoch if the server changed meanwhile; given up (logged, counted) on an error reply or past it."""
        give_up_at = time.monotonic() + self.invalidation_deadline
        pause = 0.02
        while True:
            try:
                if self._run_under_current_epoch(changes):
                    return
                continue  # reconnected to another server meanwhile: run under its epoch too
            except redis.ResponseError as error:
                if not isinstance(error, BETWEEN_STATES):
                    return self._delete_instead(changes, error)
                failure = error
            except REDIS_ERRORS as error:
                if refused(error):
                    self.failed(error)  # the next connection bumps the generation first
                    return
                failure = error
            self.failed(failure)
            if time.monotonic() + pause > give_up_at:
                return _give_up(changes, failure)
            time.sleep(pause)  # Redis is there but not answering: try again shortly
            pause = min(pause * 2, 0.5)

    def _delete_instead(self, changes: tuple[Change, ...], error: redis.ResponseError) -> None:
        """An error reply: what could not be updated is deleted (readers rebuild it), once."""
        deletes = tuple(Change(change.instead or change.queue, change.what) for change in changes)
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
            change.queue(target, epoch_of)
        if not self.cluster:
            target.execute()
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
REDIS_CLUSTER_SLOTS = 16384


def _serves(slots_cache: dict, slot: int, node_name: str) -> bool:
    """Whether a RedisCluster client's map of the cluster has `slot` served by `node_name`."""
    nodes = slots_cache.get(slot)
    return bool(nodes) and nodes[0].name == node_name

# Error replies of a cluster node that is there but not serving yet (rejoining after a restart, say):
# not refusals, since that very process and its keys serve again shortly, so they are retried.
BETWEEN_STATES = (redis.exceptions.ClusterDownError, redis.exceptions.TryAgainError)


class Batch:
    """On a standalone server, a write's commands in one round trip. Not redis-py's pipeline, which
    asks SCRIPT EXISTS before every batch that calls a script, a round trip more: here a script the
    server does not have (it restarted, or its scripts were flushed) fails the batch, and the batch
    is sent again once every script is loaded. Sending it twice is harmless: its deletes, and the
    scripts, which leave the same state when run again."""

    def __init__(self, client: redis.Redis, scripts: list[Script]):
        self.client = client
        self.scripts = scripts
        self.commands: list[tuple] = []

    def delete(self, *keys: str) -> None:
        self.commands.append(("DEL", *keys))

    def evalsha(self, *args: Any) -> None:  # what a Script runs (redis.commands.core.Script.__call__)
        self.commands.append(("EVALSHA", *args))

    def execute(self, raise_on_error: bool = True) -> list:
        """The replies in order; with raise_on_error=False, an error reply is its exception, in place."""
        replies = self._send()
        if any(isinstance(reply, redis.exceptions.NoScriptError) for reply in replies):
            for script in self.scripts:
                self.client.script_load(script.script)
            replies = self._send()
        errors = [reply for reply in replies if isinstance(reply, Exception)]
        if errors and raise_on_error:
            raise errors[0]
        return replies

    def _send(self) -> list:
        pipe = self.client.pipeline(transaction=False)
        for command in self.commands:
            pipe.execute_command(*command)
        return pipe.execute(raise_on_error=False)


class EachCommand:
    """On a Redis Cluster, in place of a pipeline: each command runs at once, and one whose master
    refuses is skipped rather than failing the rest: a master that is gone comes back with a new
    epoch, and one that refused while it kept its keys gets its generation bumped before this process
    sends it anything else (mechanism 3), while the other masters must get theirs."""

    def __init__(self, client: RedisCluster, refused_by_one: Callable[[], None]):
        self.client = client
        self.refused_by_one = refused_by_one

    def delete(self, *keys: str) -> Any:
        return self._unless_refused(self.client.delete, *keys)

    def evalsha(self, *args: Any) -> Any:  # what a Script runs (redis.commands.core.Script.__call__)
        return self._unless_refused(self.client.evalsha, *args)

    def script_load(self, script: str) -> str:
        return self.client.script_load(script)

    def _unless_refused(self, command: Callable, *args: Any) -> Any:
        try:
            return command(*args)
        except REDIS_ERRORS as error:
            if refused(error):
                self.refused_by_one()
                return None
            raise


def refused(error: BaseException) -> bool:
    """Whether nothing listens where Redis should be (a stopped server, a dead cluster master), as
    opposed to a server that is there but slow, paused, rejoining or answering errors."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, (ConnectionRefusedError, redis.BusyLoadingError)):
            return True  # LOADING: a server process just started, so it has a new epoch
        seen = seen.__cause__ or seen.__context__
    return False


# --- the document cache -------------------------------------------------------------------------
#
# Ready-to-send JSON bytes in Redis hashes; the field `~gen` holds the generation token. Document
# keys get the epoch appended (`posterr:post:{7}:<run_id>`); the part in braces is the Cluster hash
# tag: one post's or user's hash lives in one slot, different ones spread.

FEEDS_KEY = f"{PREFIX}:{{feeds}}"  # every cached first page of the global and author feeds


def feed_field(order: str, limit: int, author_id: int | None, with_replies: bool) -> str:
    field = f"author:{author_id}:{order}:{limit}" if author_id else f"all:{order}:{limit}"
    return field + ":replies" if with_replies else field


def post_key(post_id: int) -> str:
    return f"{PREFIX}:post:{{{post_id}}}"


def user_key(user_id: int) -> str:
    return f"{PREFIX}:user:{{{user_id}}}"


def timeline_name(user_id: int) -> str:
    """What a home timeline's keys start with (its hash tag: the reader's id)."""
    return f"{PREFIX}:timeline:{{{user_id}}}"


def timeline_keys(user_id: int, epoch: str) -> list[str]:
    """A home timeline's state hash, entries (sorted set) and followees (set), in one slot."""
    base = timeline_name(user_id)
    return [f"{base}:state:{epoch}", f"{base}:entries:{epoch}", f"{base}:followees:{epoch}"]


class KeyFamily(NamedTuple):
    """Keys of one kind (`python -m posterr cache stats` shows each family's keys, memory and lookups)."""
    name: str  # for a document family, also its `family` label on posterr_cache_lookups_total
    pattern: str  # matches every key of the family (SCAN MATCH)
    holds: str


KEY_FAMILIES = (
    KeyFamily("feeds", f"{FEEDS_KEY}:*", "first pages of the global and author feeds"),
    KeyFamily("posts", f"{PREFIX}:post:*", "post objects"),
    KeyFamily("users", f"{PREFIX}:user:*", "user profiles (without viewer)"),
    KeyFamily("timelines", f"{PREFIX}:timeline:*", "home timelines: state, entries and followees of each reader"),
    KeyFamily("quota", f"{PREFIX}:quota:*", "daily post counters"),
    KeyFamily("rate_limit", f"{PREFIX}:rl:*", "per-client rate limit state"),
    KeyFamily("wrote", f"{PREFIX}:{{positions}}:wrote:*", "each client's last write position (with read replicas)"),
    KeyFamily("positions", f"{PREFIX}:{{positions}}:[ks]e*",
              "whether Redis still holds every write position (kept, settling)"),
    KeyFamily("generation", f"{GENERATION_KEY}*", "the generation of every cached copy (on a cluster, one per master)"),
)


def _stem(name: str) -> str:
    """A document name up to its hash tag: what every name of one family shares."""
    return name.partition("{")[0]


# The document cache's families by the stem of their names, taken from the builders above so that
# each name's shape is written once.
DOCUMENT_FAMILIES = {_stem(FEEDS_KEY): "feeds", _stem(post_key(0)): "posts", _stem(user_key(0)): "users"}

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


# KEYS: the document. ARGV: the field, a new token, the TTL, the generation key (Redis.read).
_READ = current_generation("ARGV[4]", "ARGV[2]") + """if redis.call('HGET', KEYS[1], '~g') ~= generation then redis.call('DEL', KEYS[1]) end
local hit = redis.call('HGET', KEYS[1], ARGV[1])
if hit then return {1, hit} end
if redis.call('HSETNX', KEYS[1], '~gen', ARGV[2]) == 1 then
  redis.call('HSET', KEYS[1], '~g', generation)
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
return {0, redis.call('HGET', KEYS[1], '~gen')}
"""
_STORE = """
if redis.call('HGET', KEYS[1], '~gen') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""


class DocumentCache:
    def __init__(self, redis_: Redis):
        self.redis = redis_
        self._read = redis_.script(_READ)
        self._store = redis_.script(_STORE)
        # Each family's (hit, miss) counters, looked up once: `labels()` takes a lock on every call.
        self._lookups = {stem: (metrics.CACHE.labels(family, "hit"), metrics.CACHE.labels(family, "miss"))
                         for stem, family in DOCUMENT_FAMILIES.items()}

    def fetch(self, name: str, field: str, ttl: int, compute: Callable[[], bytes]) -> bytes:
        """The cached bytes of `field` in hash `name`, or compute() stored for the next reader."""
        epoch = self.redis.epoch_of(name)
        if epoch is None:
            return compute()
        key = f"{name}:{epoch}"
        token = f"{random.getrandbits(64):016x}"  # unique per reader: Python's generator, reseeded in each fork
        found = self.redis.read(self._read, [key], [field, token, ttl])
        if found is None or self.redis.epoch_of(name) != epoch:
            return compute()  # Redis failed, or it reconnected to a new server and `key` is a past one's
        hit, value = found
        hits, misses = self._lookups[_stem(name)]
        if hit:
            hits.inc()
            return value
        misses.inc()
        body = compute()
        self.redis.run(lambda _: self._store(keys=[key], args=[field, value, body]))
        return body

    @staticmethod
    def deletes(*names: str) -> Change:
        """The documents a write changed, to delete before it is answered (Redis.before_answer)."""
        def delete(pipe, epoch_of: EpochOf) -> None:
            for name in names:
                pipe.delete(f"{name}:{epoch_of(name)}")

        return Change(delete, list(names))


def _described(changes: tuple[Change, ...]) -> list[str]:
    return [what for change in changes for what in change.what]


def _give_up(changes: tuple[Change, ...], error: redis.RedisError) -> None:
    metrics.CACHE_INVALIDATION_FAILURES.inc()
    logs.event(log, "cache_invalidation_failed", logging.ERROR, keys=_described(changes),
               error=f"{type(error).__name__}: {error}", note="these copies may be stale until their TTL")
