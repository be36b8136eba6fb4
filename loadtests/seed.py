"""`make seed USERS=… POSTS=… [FOLLOWS=…] [RESET=1]`: bulk seed data with db/seed/seed.sql.

    python -m loadtests.seed --users 5000 --posts 100000 [--follows-per-user 20] [--reset]

The database is DATABASE_URL (or --database-url). Like db/seed/seed.sql, a seed adds to what is
there (users `seed1`… are made once); --reset empties users, posts, follows and the quota first.
The last completed seed is recorded as the database's comment, so running the same command twice
seeds once (an interrupted seed is not recorded). Afterwards the posterr keys of REDIS_URL's
database (cached pages, quota counters) are deleted: they described the old data, and the app
rebuilds them from PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import psycopg

from loadtests.harness import SEED_MARK, forget_cached, run_seed, safe_url, say, seed_mark

TABLES = "users, posts, follows, post_quota"


def positive(text: str) -> int:
    value = int(text.replace("_", ""))
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive whole number")
    return value


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make seed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=positive, default=1000, help="seed users (default 1000)")
    parser.add_argument("--posts", type=positive, default=10_000,
                        help="posts of all types: 75%% posts, 10%% reposts, 10%% quotes, 5%% replies (default 10000)")
    parser.add_argument("--follows-per-user", type=int, default=20, help="follows made by each user (default 20)")
    parser.add_argument("--reset", action="store_true", help="empty the tables first")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"), help="default: DATABASE_URL")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL"), help="default: REDIS_URL")
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("DATABASE_URL is not set (run `make seed`, or pass --database-url)")
    if args.follows_per_user < 0:
        parser.error("--follows-per-user must be 0 or more")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    wanted = SEED_MARK.format(users=args.users, posts=args.posts, follows=args.follows_per_user)
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        found = seed_mark(conn)
        if found == wanted and not args.reset:
            say(f"{safe_url(args.database_url)} already holds this seed ({found}): nothing to do "
                "(RESET=1 / --reset seeds it again from empty tables)")
            return 0
        if args.reset:
            say(f"emptying {TABLES}")
            conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
        elif conn.execute("SELECT EXISTS (SELECT 1 FROM posts)").fetchone()[0]:
            say(f"the database already holds posts ({found or 'not from a recorded seed'}): adding to them "
                "(RESET=1 / --reset empties the tables first)")
    say(f"seeding {safe_url(args.database_url)}: {args.users} users, {args.posts} posts, "
        f"{args.follows_per_user} follows per user")
    took = run_seed(args.database_url, users=args.users, posts=args.posts, follows=args.follows_per_user)
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        users, posts, follows = conn.execute(
            "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM posts), (SELECT count(*) FROM follows)"
        ).fetchone()
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]
    if args.redis_url:
        removed = forget_cached(args.redis_url)
        say(f"deleted {removed} posterr keys from Redis (cached pages and quota counters of the old data)")
    say(f"done in {took:.1f}s ({args.posts / max(took, 1e-9):,.0f} posts/s): {users} users, {posts} posts, "
        f"{follows} follows; database size {size}")
    return 0


if __name__ == "__main__":
    started = time.monotonic()
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        say(f"interrupted after {time.monotonic() - started:.0f}s: the seed is incomplete and not recorded "
            "(RESET=1 starts over from empty tables)")
        sys.exit(130)
