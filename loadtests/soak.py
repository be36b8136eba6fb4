"""`make soak`: a randomized fault soak of the loopback cluster.

    python -m loadtests.soak [--minutes 5] [--seed N] [--users 40] [--data-dir .data/soak]
                             [--results loadtests/results]

1. Starts its own PostgreSQL and Redis (scripts/services.sh) and three gunicorn instances (2 workers
   each, POSTERR_AUTH=required) behind nginx (scripts/cluster.sh), on free ports, with every file and
   log under the data folder: it runs beside `make run`, `make test` and `make cluster`, and never
   prints server output.
2. Runs a steady mixed load with Locust as a library (loadtests/soak_load.py): reads over keep-alive
   and over fresh connections to nginx and to each instance, sign-ups with a password and logins for
   bearer tokens (loadtests/soak_accounts.py), posts, reposts, quotes, follows and unfollows with
   them, some accounts at their daily limit; now and then a token revoked, then a write tried with it.
3. Meanwhile injects faults from a schedule drawn from random.Random(seed) (loadtests/soak_faults.py):
   Redis stopped, frozen, paused, flushed, restarted, out of memory, evicting random keys, refusing
   connections behind a proxy while it keeps its keys (or refusing new ones while some open ones
   go on); PostgreSQL crashed, restarted, stopped; a
   gunicorn worker or a whole instance SIGKILLed, workers started while Redis is down, workers
   killed between a creation's commit and its answer (the client retries with its Idempotency-Key),
   or between a follow's commit and its answer (the client retries the PUT or DELETE).
   These come first, in a seeded order: one of each of the three categories (Redis, PostgreSQL, the
   app) and each of redis-evict, redis-refuse and redis-refuse-new (on a cluster, one master's
   proxy), app-start-in-outage, kill-after-commit and follow-kill-after-commit; a run of three
   minutes has time for all of them. With TOPOLOGY=ha, the primary's faults (loadtests/soak_primary.py)
   come first too, each of them, one of which loses commits. The app reaches Redis through proxies (on a cluster, one per master, announced to clients in its place).
4. After each fault heals, and at the end, checks the invariants (loadtests/soak_checks.py): liveness
   of every instance, no acknowledged write lost, read-your-writes, no post twice on a page, a Link
   on every Following page with older posts, exact counters and daily limit (Redis's counters never
   above PostgreSQL's), no 500 and no 5xx outside a fault window, problem+json errors, no write acknowledged with a token
   revoked before it was sent, no live token refused.
5. Stops everything it started, whatever happens (SIGTERM too), prints the tables, writes the JSON
   report to loadtests/results/soak-<timestamp>-seed<seed>.json, and exits 1 on any violation.

The seed is printed at the start and the end: `make soak SEED=<seed>` replays the fault schedule.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import time
import traceback
from pathlib import Path

# Before any module of ours: importing locust monkey-patches the standard library for gevent, before
# anything opens a socket. This is why the soak runs in a process of its own.
from locust.env import Environment

from loadtests import harness, soak_report
from loadtests.harness import say
from loadtests.soak_accounts import LOAD_TIMEOUT
from loadtests.soak_checks import Checker
from loadtests.soak_faults import CATEGORIES, KINDS, Fault, Injector, plan
from loadtests.soak_load import SoakMember
from loadtests.soak_servers import INSTANCES, SoakServers
from loadtests.soak_state import RECOVERY_SECONDS, Clock, FaultWindows, Ledger, Shared, Verdict

SPAWN_RATE = 10  # load users started per second


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make soak", description=__doc__.split("\n\n")[0],
                                     epilog="Make variables: MINUTES, SEED.")
    parser.add_argument("--minutes", type=float, default=5, help="minutes of load (default 5)")
    parser.add_argument("--seed", type=int, default=None, help="the fault schedule's seed (default: random)")
    parser.add_argument("--topology", choices=tuple(CATEGORIES), default="single",
                        help="single: one PostgreSQL and one Redis (default); replicated: reads also from a "
                             "streaming replica, and a 3-master Redis Cluster, with their faults in the schedule; "
                             "ha: PostgreSQL under Patroni (three members, synchronous replication), with primary "
                             "kills, switchovers and partitions in the schedule")
    parser.add_argument("--users", type=int, default=40, help="Locust users (default 40)")
    parser.add_argument("--data-dir", type=Path, default=harness.ROOT / ".data" / "soak",
                        help="servers' files and logs (default .data/soak)")
    parser.add_argument("--results", type=Path, default=harness.RESULTS,
                        help="where the JSON report goes (default loadtests/results)")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.users < 1:
        parser.error("--minutes and --users must be positive")
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 1_000_000)
    args.data_dir, args.results = args.data_dir.resolve(), args.results.resolve()
    return args


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.servers = SoakServers(args.data_dir, args.topology)
        self.injector = Injector(self.servers)
        self.faults = plan(args.seed, args.minutes * 60, INSTANCES, topology=args.topology)
        self.always = len(CATEGORIES[args.topology])  # faults injected whatever the time
        self.clock = Clock()
        self.windows = FaultWindows()
        self.verdict = Verdict(self.clock, self.windows)
        self.ledger = Ledger()
        self.done: list[dict] = []  # the faults injected, for the report
        self.reads_by_target: dict[str, int] = {}  # with a replica: posterr_db_reads_total of every instance

    def run(self) -> None:
        say(f"starting the servers: {self.servers.describe()}")
        self.servers.up()
        self.clock.restart()  # the report's times count from the start of the load
        shared = Shared(self.ledger, self.verdict, self.servers.bases)
        SoakMember.shared = shared
        environment = Environment(user_classes=[SoakMember], host=self.servers.nginx_base,
                                  stop_timeout=LOAD_TIMEOUT + 5)  # users finish their request when stopped
        runner = environment.create_local_runner()
        checker = Checker(shared, self.servers.database_url, self.servers.redis_url, random.Random(self.args.seed))
        try:
            say(f"load: {self.args.users} Locust users for {self.args.minutes:g} min")
            runner.start(self.args.users, spawn_rate=SPAWN_RATE)
            self.run_schedule(checker, ends=self.clock.started + self.args.minutes * 60)
            say("stopping the load")
            runner.stop()
            checker.checkpoint("the end of the load", time.monotonic() + RECOVERY_SECONDS, final=True)
            if self.servers.replicated:
                self.reads_by_target = self.servers.reads_by_target()
                say(f"reads a replica may serve, by where they went (all instances): {self.reads_by_target}")
        finally:
            checker.pool.kill()
            runner.quit()

    def run_schedule(self, checker: Checker, ends: float) -> None:
        """The faults one after the other, with load alone before each; the first three (one of each
        category) always run, the others only when they fit in the time left."""
        for index, fault in enumerate(self.faults):
            if index >= self.always and time.monotonic() + fault.expected_seconds > ends:
                say(f"{fault.label} and later: not injected, no time left for them")
                break
            time.sleep(fault.gap)  # load without a fault
            self.done.append(self.run_fault(fault, checker))
        time.sleep(max(0.0, ends - time.monotonic()))  # the rest of the run: load without a fault

    def run_fault(self, fault: Fault, checker: Checker) -> dict:
        window = self.windows.open(fault.label)
        say(f"t={self.clock.since_start():.1f}s {fault.label}: {KINDS[fault.kind].what}"
            f"{f' (hold {fault.hold:g} s)' if fault.hold else ''}")
        injected = self.injector.inject(fault)
        say(f"{fault.label} injected: {injected}")
        time.sleep(fault.hold)  # how long the fault lasts
        healed = self.injector.heal(fault)
        window.healed = time.monotonic()
        say(f"t={self.clock.since_start():.1f}s {fault.label} healed: {healed}")
        checker.checkpoint(fault.label, window.healed + RECOVERY_SECONDS, final=False)
        return {"number": fault.number, "kind": fault.kind, "hold": fault.hold,
                "t_injected": round(self.clock.since_start(window.opened), 1),
                "t_healed": round(self.clock.since_start(window.healed), 1), "injected": injected, "healed": healed}


def describe(failure: BaseException) -> str:
    if isinstance(failure, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    if isinstance(failure, SystemExit):  # harness.stop_on_sigterm or harness.fail
        return f"stopped (exit status {failure.code}: a signal, or a step that failed)"
    return f"{type(failure).__name__}: {failure}"


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    harness.stop_on_sigterm()
    random.seed(args.seed)  # the load's choices too (their timing cannot be replayed)
    soak = Soak(args)
    say(f"soak: seed {args.seed}, {args.minutes:g} min; schedule: "
        + ", ".join(f"{fault.label}{f' {fault.hold:g}s' if fault.hold else ''}" for fault in soak.faults))
    stamp, started, error = harness.timestamp(), time.monotonic(), None
    try:
        soak.run()
    except BaseException as failure:  # noqa: BLE001 — even Ctrl-C or SIGTERM: stop, then report
        error = describe(failure)
        if isinstance(failure, Exception):
            traceback.print_exc(file=sys.stderr)
    finally:
        # From here on a Ctrl-C or SIGTERM must not cut the teardown short (nor the report).
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, lambda *_: say("already stopping"))
        say("stopping the servers")
        soak.servers.down()
    report = soak_report.build(seed=args.seed, minutes=args.minutes, users=args.users,
                               servers=soak.servers.describe(), faults=soak.done, verdict=soak.verdict,
                               seconds=time.monotonic() - started, error=error, topology=args.topology,
                               reads_by_target=soak.reads_by_target)
    print(soak_report.table(report), flush=True)
    path = soak_report.write(report, args.results, stamp)
    say(f"report: {path}")
    say(f"soak {'passed' if report['passed'] else 'FAILED'}: seed {args.seed}")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
