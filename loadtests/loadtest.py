"""`make loadtest`: locust, headless, against the app started as `make bench` starts it.

    python -m loadtests.loadtest [--users 200] [--spawn-rate 50] [--run-time 60s] [--p95-ms 50]
                                 [--posts 10000] [--seed-users 1000] [--daily-limit 5] [--newcomers 10]

The database is a fresh copy of `posterr_bench_seed` in `posterr_bench`, as `make bench` makes it
(the seed is made once and reused), Redis database 11,
gunicorn with posterr/gunicorn_conf.py on a free port with POSTERR_RATE_LIMIT=off, the normal
daily limit (5), so the 429s of the limit are part of the mix, and POSTERR_AUTH=required: every
acting call carries its user's token. The simulated users who are not newcomers (loadtests/members.py)
act as seeded users, evenly spread over their ids, with tokens issued in bulk in that copy before
locust starts (loadtests/bulk_tokens.py) and handed over in a file only its owner can read, in a
temporary folder deleted at the end; newcomers sign up and log in. Reports go to
loadtests/results/loadtest-<timestamp>{_stats.csv,_failures.csv,…,.html}. The exit code is
locust's: 1 when more than 1 % of the requests failed or p95 is over --p95-ms.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from loadtests import bulk_tokens, harness
from loadtests.harness import say
from loadtests.members import accounts_lines, is_newcomer


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make loadtest", description=__doc__.split("\n\n")[0],
                                     epilog="Make variables: LOCUST_USERS, LOCUST_SPAWN_RATE, LOCUST_TIME, "
                                            "LOADTEST_P95_MS, BENCH_POSTS, BENCH_USERS, LOADTEST_ARGS.")
    parser.add_argument("--users", type=int, default=200, help="simulated users (locust -u, default 200)")
    parser.add_argument("--spawn-rate", type=float, default=50, help="users started per second (default 50)")
    parser.add_argument("--run-time", default="60s", help="locust -t: 60s, 5m, 1h30m (default 60s)")
    parser.add_argument("--p95-ms", type=float, default=50, help="fail when p95 exceeds it (default 50)")
    parser.add_argument("--max-fail-ratio", type=float, default=0.01, help="fail above it (default 0.01)")
    parser.add_argument("--posts", type=int, default=10_000, help="posts to seed (default 10000)")
    parser.add_argument("--seed-users", type=int, default=1000, help="users to seed (default 1000)")
    parser.add_argument("--follows-per-user", type=int, default=20, help="follows to seed per user (default 20)")
    parser.add_argument("--reseed", action="store_true", help="seed again even if the same seed is there")
    parser.add_argument("--daily-limit", type=int, default=5, help="POSTERR_DAILY_POST_LIMIT (default 5)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="gunicorn workers (default: CPUs)")
    parser.add_argument("--newcomers", type=int, default=10, metavar="PERCENT",
                        help="users who sign up and log in (an Argon2 hash each) rather than act as a seeded "
                             "user with a token issued in bulk (default 10)")
    args = parser.parse_args(argv)
    if run_seconds(args.run_time) is None:
        parser.error("--run-time looks like 60s, 5m or 1h30m")
    if args.users < 1 or args.spawn_rate <= 0:
        parser.error("--users and --spawn-rate must be positive")
    if not 0 <= args.newcomers <= 100:
        parser.error("--newcomers is a percentage, 0 to 100")
    return args


def returning_members(users: int, newcomers_percent: int) -> int:
    """How many of the simulated users are not newcomers (each then needs a seeded account's token)."""
    return sum(not is_newcomer(number, newcomers_percent) for number in range(users))


def run_seconds(text: str) -> int | None:
    """locust's -t format (300, 20m, 1h30m, 3h20m10s) in seconds."""
    found = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?", text.strip())
    if not text.strip() or not found:
        return None
    hours, minutes, secs = (int(part or 0) for part in found.groups())
    return hours * 3600 + minutes * 60 + secs


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    harness.stop_on_sigterm()
    harness.RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = harness.timestamp()
    bench_db, bench_redis, low, high = harness.prepare_data(users=args.seed_users, posts=args.posts,
                                                            follows=args.follows_per_user, reseed=args.reseed)
    prefix = harness.RESULTS / f"loadtest-{stamp}"
    members = bulk_tokens.spread(low, high, min(returning_members(args.users, args.newcomers), bulk_tokens.MOST))
    issued = bulk_tokens.issue(bench_db, members, "loadtest")
    say(f"issued tokens to {len(issued):,} seeded users, the returning members; the other "
        f"{args.users - len(issued):,} simulated users sign up and log in")

    # Required whatever the caller's environment says (App starts from it): the mix is a v2.0 client's.
    app = harness.App(bench_db, bench_redis, harness.RESULTS / f"loadtest-{stamp}-gunicorn.log",
                      daily_post_limit=args.daily_limit, workers=args.workers, extra_env={"POSTERR_AUTH": "required"})
    with app, tempfile.TemporaryDirectory(prefix="posterr-loadtest-") as private:
        accounts = bulk_tokens.write_private(Path(private) / "accounts.txt", accounts_lines(members, issued))
        command = [sys.executable, "-m", "locust", "-f", str(harness.ROOT / "loadtests" / "locustfile.py"),
                   "--headless", "--only-summary", "-u", str(args.users), "-r", str(args.spawn_rate),
                   "-t", args.run_time, "--stop-timeout", "10", "--host", app.base,
                   "--csv", str(prefix), "--html", f"{prefix}.html"]
        # locust reads LOCUST_* variables as options (make passes LOCUST_USERS & co. on): only ours count.
        env = {name: value for name, value in os.environ.items() if not name.startswith("LOCUST_")}
        env.update({"LOADTEST_USER_LOW": str(low), "LOADTEST_USER_HIGH": str(high),
                    "LOADTEST_P95_MS": str(args.p95_ms), "LOADTEST_MAX_FAIL_RATIO": str(args.max_fail_ratio),
                    "LOADTEST_ACCOUNTS_FILE": str(accounts), "LOADTEST_NEWCOMERS": str(args.newcomers)})
        say(f"locust: {args.users} users (+{args.spawn_rate:g}/s) for {args.run_time} against {app.base}; "
            f"fails over {args.max_fail_ratio:.0%} failures or p95 > {args.p95_ms:g} ms")
        process = subprocess.Popen(command, cwd=harness.ROOT, env=env)
        limit = run_seconds(args.run_time) + 120
        try:
            code = process.wait(timeout=limit)
        except KeyboardInterrupt:  # locust got the Ctrl-C too: let it write its reports
            say("interrupted: waiting for locust to write its reports")
            try:
                process.wait(timeout=30)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
            raise
        except subprocess.TimeoutExpired:
            say(f"locust still ran {limit}s after its start: stopping it")
            process.terminate()
            try:
                code = process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
            code = code or 1
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    reports = sorted(path.name for path in harness.RESULTS.glob(f"{prefix.name}*") if "gunicorn" not in path.name
                     and "dbmate" not in path.name)
    say(f"reports in {harness.RESULTS.relative_to(harness.ROOT)}/: {', '.join(reports)}")
    say(f"loadtest {'passed' if code == 0 else f'FAILED (exit code {code})'}")
    return code


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        say("interrupted")
        sys.exit(130)
