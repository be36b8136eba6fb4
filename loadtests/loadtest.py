"""`make loadtest`: locust, headless, against the app started as `make bench` starts it.

    python -m loadtests.loadtest [--users 200] [--spawn-rate 50] [--run-time 60s] [--p95-ms 50]
                                 [--posts 10000] [--seed-users 1000] [--daily-limit 5]

The database is a fresh copy of `posterr_bench_seed` in `posterr_bench`, as `make bench` makes it
(the seed is made once and reused), Redis database 11,
gunicorn with posterr/gunicorn_conf.py on a free port with POSTERR_RATE_LIMIT=off and the normal
daily limit (5), so the 429s of the limit are part of the mix. Reports go to
loadtests/results/loadtest-<timestamp>{_stats.csv,_failures.csv,…,.html}. The exit code is
locust's: 1 when more than 1 % of the requests failed or p95 is over --p95-ms.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

from loadtests import harness
from loadtests.harness import say


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
    args = parser.parse_args(argv)
    if run_seconds(args.run_time) is None:
        parser.error("--run-time looks like 60s, 5m or 1h30m")
    if args.users < 1 or args.spawn_rate <= 0:
        parser.error("--users and --spawn-rate must be positive")
    return args


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

    app = harness.App(bench_db, bench_redis, harness.RESULTS / f"loadtest-{stamp}-gunicorn.log",
                      daily_post_limit=args.daily_limit, workers=args.workers)
    with app:
        command = [sys.executable, "-m", "locust", "-f", str(harness.ROOT / "loadtests" / "locustfile.py"),
                   "--headless", "--only-summary", "-u", str(args.users), "-r", str(args.spawn_rate),
                   "-t", args.run_time, "--stop-timeout", "10", "--host", app.base,
                   "--csv", str(prefix), "--html", f"{prefix}.html"]
        # locust reads LOCUST_* variables as options (make passes LOCUST_USERS & co. on): only ours count.
        env = {name: value for name, value in os.environ.items() if not name.startswith("LOCUST_")}
        env.update({"LOADTEST_USER_LOW": str(low), "LOADTEST_USER_HIGH": str(high),
                    "LOADTEST_P95_MS": str(args.p95_ms), "LOADTEST_MAX_FAIL_RATIO": str(args.max_fail_ratio)})
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
