"""The soak's faults: a schedule drawn from random.Random(seed), so that `make soak SEED=…` replays the
same faults in the same order with the same durations and targets, and how each fault is injected
into the soak's servers and healed.
"""

from __future__ import annotations

import os
import random
import signal
import time
from dataclasses import dataclass

import psycopg
import redis

from loadtests.soak_primary import PrimaryFaults
from loadtests.soak_servers import SoakServers

# Per topology: single (one PostgreSQL, one Redis), replicated (a PostgreSQL replica and a Redis
# Cluster), ha (PostgreSQL under Patroni: three members, synchronous replication; one Redis).
CATEGORIES = {"single": ("redis", "postgres", "app"), "replicated": ("redis", "postgres", "app", "replica"),
              "ha": ("redis", "app", "primary")}
MIN_SECONDS_PER_FAULT = 10  # the least a fault takes: load before it, the fault, recovery, the checks
GAP_SECONDS = (3.0, 6.0)  # plain load before each fault
CHECK_SECONDS = 10  # what recovery and a checkpoint take, roughly: a fault is not started without it


@dataclass(frozen=True)
class Kind:
    category: str
    hold: tuple[float, float]  # how long the fault lasts before it is healed (0: at once)
    what: str
    topologies: tuple[str, ...] = tuple(CATEGORIES)  # where it can happen
    always: bool = False  # in every run's first faults, whatever the seed


NOT_HA = ("single", "replicated")  # faults of the one PostgreSQL server that `ha` does not have

KINDS = {
    "redis-stop": Kind("redis", (2, 5), "Redis shut down, started again after the hold"),
    "redis-freeze": Kind("redis", (1, 5), "Redis SIGSTOPped (connections accepted, nothing answered), then SIGCONT"),
    "redis-pause": Kind("redis", (2, 4), "CLIENT PAUSE ALL for the hold"),
    "redis-flushall": Kind("redis", (0, 0), "FLUSHALL (every counter and cached page gone)"),
    "redis-restart": Kind("redis", (0, 0), "Redis shut down and started at once (reloads its append-only file)"),
    "redis-oom": Kind("redis", (2, 4), "Redis maxmemory set to 1 byte: writes and scripts get OOM error replies "
                                       "(not a lost connection), for the hold"),
    "postgres-crash": Kind("postgres", (0.5, 2), "pg_ctl -m immediate stop, started after the hold (crash recovery)",
                           NOT_HA),
    "postgres-restart": Kind("postgres", (0, 0), "pg_ctl -m fast stop, then start", NOT_HA),
    "postgres-stop": Kind("postgres", (3, 3), "PostgreSQL stopped (fast) for 3 s", NOT_HA),
    "app-kill-worker": Kind("app", (0, 0), "SIGKILL of one gunicorn worker (its master starts another)"),
    "app-kill-instance": Kind("app", (0.5, 2), "SIGKILL of one instance (master and workers), restarted after "
                                               "the hold with scripts/cluster.sh restart"),
    "redis-node-kill": Kind("redis", (1, 4), "SIGKILL of one Redis Cluster master (its slots go dark), started "
                                             "after the hold", ("replicated",)),
    "replica-stop": Kind("replica", (2, 5), "the PostgreSQL replica stopped, started after the hold",
                         ("replicated",)),
    "replica-pause": Kind("replica", (3, 6), "the replica's WAL replay paused (it falls behind the lag limit), "
                                             "resumed after the hold", ("replicated",)),
    "redis-evict": Kind("redis", (3, 6), "maxmemory-policy allkeys-random and maxmemory under what Redis uses: "
                                         "random keys of every family evicted while the load goes on", always=True),
    "redis-refuse": Kind("redis", (2, 5), "the proxy in front of Redis (on a cluster, of one master) refuses "
                                          "connections and cuts the open ones while Redis keeps every key",
                         always=True),
    "redis-refuse-new": Kind("redis", (2, 5), "the same proxy refuses new connections and cuts every other open "
                                              "one, keeping the rest (one worker's connections gone, another's "
                                              "still reading)", always=True),
    "app-start-in-outage": Kind("app", (2, 4), "Redis (on a cluster, one master) stopped, one instance's workers "
                                               "restarted (SIGHUP) during the outage, Redis started after the hold",
                                always=True),
    "kill-after-commit": Kind("app", (1.5, 3), "Redis writes paused, so creations wait between their commit and "
                                               "their answer; once one has committed, every worker of every "
                                               "instance SIGKILLed (clients retry with their Idempotency-Key)",
                              always=True),
    "follow-kill-after-commit": Kind("app", (1.5, 3), "the same, once a follow or unfollow has committed "
                                                      "(clients retry the PUT or DELETE, which must redo its "
                                                      "cache work)", always=True),
    "primary-kill": Kind("primary", (0, 0), "SIGKILL of the primary's postmaster (Patroni restarts it or fails "
                                            "over); healed once there is a primary with a synchronous standby",
                         ("ha",), always=True),
    "primary-switchover": Kind("primary", (0, 0), "a planned switchover (patronictl) to the synchronous standby",
                               ("ha",), always=True),
    "primary-loses-commits": Kind("primary", (7, 9), "the primary's WAL senders SIGSTOPped (commits wait, 503); "
                                  "the primary then stopped, a standby promoted, the old primary rewound: those "
                                  "commits lost", ("ha",), always=True),
    "primary-partition": Kind("primary", (13, 16), "the primary's Patroni SIGSTOPped (its PostgreSQL goes on, cut "
                                                   "off from etcd) past its leader key's ttl, so another member is "
                                                   "promoted; then SIGCONT", ("ha",), always=True),
}


def applies(kind: Kind, topology: str) -> bool:
    return topology in kind.topologies


@dataclass(frozen=True)
class Fault:
    number: int
    kind: str
    gap: float  # seconds of plain load before it
    hold: float
    instance: int  # the instance an app fault hits (index into the app ports)
    worker: int  # which of its workers (index into their sorted pids)

    @property
    def label(self) -> str:
        return f"#{self.number} {self.kind}"

    @property
    def expected_seconds(self) -> float:
        return self.gap + self.hold + CHECK_SECONDS


def plan(seed: int, seconds: float, instances: int, *, topology: str = "single") -> list[Fault]:
    """More faults than a run of `seconds` has time for (the run injects them in order while they
    fit). The first ones, in a seeded order, are one of each category of the topology and each kind
    marked `always`, so a run long enough for them (about two minutes) covers all of them. The
    others draw a category, then a kind of it."""
    rng = random.Random(seed)
    categories = CATEGORIES[topology]
    first = [*categories, *(name for name, kind in KINDS.items() if kind.always and applies(kind, topology))]
    rng.shuffle(first)
    faults = []
    for number in range(1, len(first) + int(seconds // MIN_SECONDS_PER_FAULT) + 1):
        drawn = first[number - 1] if number <= len(first) else rng.choice(categories)
        kind = drawn if drawn in KINDS else rng.choice(
            [name for name, found in KINDS.items() if found.category == drawn and applies(found, topology)])
        low, high = KINDS[kind].hold
        faults.append(Fault(number, kind, gap=round(rng.uniform(*GAP_SECONDS), 1), hold=round(rng.uniform(low, high), 1),
                            instance=rng.randrange(instances), worker=rng.randrange(2)))
    return faults


class Injector:
    """Injects and heals faults on the soak's servers; each step returns what it did, for the log."""

    def __init__(self, servers: SoakServers) -> None:
        self.servers = servers
        self._policy = "noeviction"  # the maxmemory-policy that redis-evict puts back
        self.primary = PrimaryFaults(servers)

    def inject(self, fault: Fault) -> str:
        services, port = self.servers.services, self.servers.app_ports[fault.instance]
        match fault.kind:
            case "redis-stop":
                services("stop-redis")
            case "redis-freeze":
                services("freeze-redis")
            case "redis-pause":
                services("pause-redis", str(int(fault.hold * 1000)))
            case "redis-flushall":
                services("flush-redis")
            case "redis-restart":
                services("restart-redis")
            case "redis-oom":
                services("cap-redis", "1")
            case "postgres-crash":
                services("crash-postgres")
            case "postgres-restart":
                services("restart-postgres")
            case "postgres-stop":
                services("stop-postgres")
            case "app-kill-worker":
                workers = self.servers.worker_pids(port)
                if not workers:
                    raise RuntimeError(f"the instance on :{port} has no worker to kill")
                victim = workers[fault.worker % len(workers)]
                os.kill(victim, signal.SIGKILL)
                return f"SIGKILL to worker {victim} of :{port}"
            case "app-kill-instance":
                return f"SIGKILL to the instance on :{port} (master {self.servers.kill_instance(port)} and workers)"
            case "redis-node-kill":
                node = self._redis_node(fault)
                services("redis-cluster-kill", str(node))
                return f"SIGKILL to the Redis Cluster master on :{node}"
            case "replica-stop":
                services("replica-down")
            case "replica-pause":
                services("replica-pause")
            case "redis-evict":
                return self._evict()
            case "redis-refuse" | "redis-refuse-new":
                return self.servers.refuse_redis(self._refused(fault), fault.kind)
            case "app-start-in-outage":
                down = self._stop_redis(fault)
                master = self.servers.master_pid(port)
                os.kill(master, signal.SIGHUP)
                return f"{down}; SIGHUP to the instance on :{port} (master {master}): its workers start meanwhile"
            case "kill-after-commit":
                return self._kill_after_commit(fault, "posts", "SELECT coalesce(max(id), 0) FROM posts")
            case "follow-kill-after-commit":  # an unfollow leaves no row: the table's size says it too
                return self._kill_after_commit(fault, "follows", "SELECT count(*), max(created_at) FROM follows")
            case "primary-kill" | "primary-switchover" | "primary-partition" | "primary-loses-commits":
                return self.primary.strike(fault.kind)
        return KINDS[fault.kind].what

    def heal(self, fault: Fault) -> str:
        services, port = self.servers.services, self.servers.app_ports[fault.instance]
        match fault.kind:
            case "redis-stop":
                services("start-redis")
                return "Redis started"
            case "redis-freeze":
                services("thaw-redis")
                return "Redis SIGCONT"
            case "redis-oom":
                services("cap-redis", "0")
                return "maxmemory lifted"
            case "postgres-crash" | "postgres-stop":
                services("start-postgres")
                return "PostgreSQL started"
            case "app-kill-instance":
                self.servers.cluster("restart", str(port))
                return f"instance on :{port} restarted and back in nginx"
            case "redis-node-kill":
                services("redis-cluster-up")
                return f"the Redis Cluster master on :{self._redis_node(fault)} started (its append-only file reloaded)"
            case "replica-stop":
                services("replica-up")
                return "the replica started"
            case "replica-pause":
                services("replica-resume")
                return "the replica's replay resumed"
            case "redis-evict":
                evicted = 0
                for client in self._masters():
                    client.config_set("maxmemory", 0)
                    client.config_set("maxmemory-policy", self._policy)
                    evicted += client.info("stats")["evicted_keys"]
                    client.close()
                return f"maxmemory lifted, maxmemory-policy {self._policy} again ({evicted} keys evicted since Redis started)"
            case "redis-refuse" | "redis-refuse-new":
                return self.servers.refuse_redis(self._refused(fault), None)
            case "app-start-in-outage":
                return self._start_redis(fault)
            case "kill-after-commit" | "follow-kill-after-commit":
                services("unpause-redis")
                return "Redis unpaused"
            case "primary-kill" | "primary-switchover" | "primary-partition" | "primary-loses-commits":
                return self.primary.heal(fault.kind)
        return "nothing to undo" if fault.hold == 0 else "over (it ends by itself)"

    def _masters(self) -> list[redis.Redis]:
        ports = self.servers.redis_cluster_ports or [self.servers.redis_port]
        return [redis.Redis(port=port, socket_timeout=5, socket_connect_timeout=5) for port in ports]

    def _evict(self) -> str:
        caps = []
        for client in self._masters():
            memory = client.info("memory")
            self._policy = client.config_get("maxmemory-policy")["maxmemory-policy"]
            cap = max(memory["used_memory"] - memory["used_memory_dataset"] // 2, 1)
            client.config_set("maxmemory-policy", "allkeys-random")
            client.config_set("maxmemory", cap)
            caps.append(f"{cap} of {memory['used_memory']} bytes")
            client.close()
        return f"allkeys-random, maxmemory {', '.join(caps)}"

    def _stop_redis(self, fault: Fault) -> str:
        if self.servers.replicated:
            node = self._redis_node(fault)
            self.servers.services("redis-cluster-kill", str(node))
            return f"SIGKILL to the Redis Cluster master on :{node}"
        self.servers.services("stop-redis")
        return "Redis stopped"

    def _start_redis(self, fault: Fault) -> str:
        if self.servers.replicated:
            self.servers.services("redis-cluster-up")
            return f"the Redis Cluster master on :{self._redis_node(fault)} started"
        self.servers.services("start-redis")
        return "Redis started"

    def _kill_after_commit(self, fault: Fault, table: str, newest_sql: str) -> str:
        """Redis writes paused, then, once `newest_sql` (a row of `table`) shows a commit made during
        the pause (or half the hold has gone), every worker SIGKILLed: between commits and their cache work."""
        with psycopg.connect(self.servers.database_url, autocommit=True, connect_timeout=5) as conn:
            def newest() -> tuple:
                return conn.execute(newest_sql).fetchone()

            before = newest()
            self.servers.services("pause-redis", str(int(fault.hold * 1000)), "write")
            deadline = time.monotonic() + fault.hold / 2
            while (committed := newest()) == before and time.monotonic() < deadline:
                time.sleep(0.02)  # polling PostgreSQL for a write committed during the pause
        workers = [pid for port in self.servers.app_ports for pid in self.servers.worker_pids(port)]
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        seen = "a commit" if committed != before else "no commit"
        return f"Redis writes paused; {seen} to {table} meanwhile; SIGKILL to {len(workers)} workers"

    def _redis_node(self, fault: Fault) -> int:
        ports = self.servers.redis_cluster_ports
        return ports[fault.instance % len(ports)]

    def _refused(self, fault: Fault) -> int:
        """The Redis server whose proxy `redis-refuse(-new)` strikes: the one, or one cluster master."""
        return self._redis_node(fault) if self.servers.replicated else self.servers.redis_port
