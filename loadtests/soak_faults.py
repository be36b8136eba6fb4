"""The soak's faults: a schedule drawn from random.Random(seed), so that `make soak SEED=…` replays the
same faults in the same order with the same durations and targets, and how each fault is injected
into the soak's servers and healed.
"""

from __future__ import annotations

import os
import random
import signal
from dataclasses import dataclass

from loadtests.soak_servers import SoakServers

CATEGORIES = ("redis", "postgres", "app")
REPLICATED_CATEGORIES = (*CATEGORIES, "replica")  # with a PostgreSQL replica and a Redis Cluster
MIN_SECONDS_PER_FAULT = 10  # the least a fault takes: load before it, the fault, recovery, the checks
GAP_SECONDS = (3.0, 6.0)  # plain load before each fault
CHECK_SECONDS = 10  # what recovery and a checkpoint take, roughly: a fault is not started without it


@dataclass(frozen=True)
class Kind:
    category: str
    hold: tuple[float, float]  # how long the fault lasts before it is healed (0: at once)
    what: str
    replicated_only: bool = False  # a fault of the replica or of one Redis Cluster master


KINDS = {
    "redis-stop": Kind("redis", (2, 5), "Redis shut down, started again after the hold"),
    "redis-freeze": Kind("redis", (1, 5), "Redis SIGSTOPped (connections accepted, nothing answered), then SIGCONT"),
    "redis-pause": Kind("redis", (2, 4), "CLIENT PAUSE ALL for the hold"),
    "redis-flushall": Kind("redis", (0, 0), "FLUSHALL (every counter and cached page gone)"),
    "redis-restart": Kind("redis", (0, 0), "Redis shut down and started at once (reloads its append-only file)"),
    "redis-oom": Kind("redis", (2, 4), "Redis maxmemory set to 1 byte: writes and scripts get OOM error replies "
                                       "(not a lost connection), for the hold"),
    "postgres-crash": Kind("postgres", (0.5, 2), "pg_ctl -m immediate stop, started after the hold (crash recovery)"),
    "postgres-restart": Kind("postgres", (0, 0), "pg_ctl -m fast stop, then start"),
    "postgres-stop": Kind("postgres", (3, 3), "PostgreSQL stopped (fast) for 3 s"),
    "app-kill-worker": Kind("app", (0, 0), "SIGKILL of one gunicorn worker (its master starts another)"),
    "app-kill-instance": Kind("app", (0.5, 2), "SIGKILL of one instance (master and workers), restarted after "
                                               "the hold with scripts/cluster.sh restart"),
    "redis-node-kill": Kind("redis", (1, 4), "SIGKILL of one Redis Cluster master (its slots go dark), started "
                                             "after the hold", replicated_only=True),
    "replica-stop": Kind("replica", (2, 5), "the PostgreSQL replica stopped, started after the hold",
                         replicated_only=True),
    "replica-pause": Kind("replica", (3, 6), "the replica's WAL replay paused (it falls behind the lag limit), "
                                             "resumed after the hold", replicated_only=True),
}


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


def plan(seed: int, seconds: float, instances: int, *, replicated: bool = False) -> list[Fault]:
    """More faults than a run of `seconds` has time for (the run injects them in order while they
    fit). The first ones are one of each category (Redis, PostgreSQL, the app, and the replica when
    replicated) in a seeded order, and are always injected, so every run covers all of them; the
    others draw a category, then a kind of it."""
    rng = random.Random(seed)
    categories = REPLICATED_CATEGORIES if replicated else CATEGORIES
    first = list(categories)
    rng.shuffle(first)
    faults = []
    for number in range(1, len(categories) + int(seconds // MIN_SECONDS_PER_FAULT) + 1):
        category = first[number - 1] if number <= len(first) else rng.choice(categories)
        kind = rng.choice([name for name, found in KINDS.items()
                           if found.category == category and (replicated or not found.replicated_only)])
        low, high = KINDS[kind].hold
        faults.append(Fault(number, kind, gap=round(rng.uniform(*GAP_SECONDS), 1), hold=round(rng.uniform(low, high), 1),
                            instance=rng.randrange(instances), worker=rng.randrange(2)))
    return faults


class Injector:
    """Injects and heals faults on the soak's servers; each step returns what it did, for the log."""

    def __init__(self, servers: SoakServers) -> None:
        self.servers = servers

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
        return "nothing to undo" if fault.hold == 0 else "over (it ends by itself)"

    def _redis_node(self, fault: Fault) -> int:
        ports = self.servers.redis_cluster_ports
        return ports[fault.instance % len(ports)]
