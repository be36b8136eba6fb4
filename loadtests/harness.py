"""What `make bench` and `make loadtest` share: a database of their own on the configured server,
seeded once and reused, a Redis database of their own, and the app under gunicorn in its production
configuration, stopped again whatever happens.

The servers come from DATABASE_URL / REDIS_URL (the Makefile's `scripts/services.sh up` sets them).
The benchmark database is `posterr_bench` on that PostgreSQL server (never the development one): a
fresh copy, at every run, of `posterr_bench_seed`, which is seeded once per seed size (and given
the bench's reader users, db/seed/readers.sql, and its authors with fans, db/seed/fans.sql,
idempotently, before each copy). Its Redis
side is database 11 of that Redis server, so neither the quota counters nor the cached pages of
the benchmark mix with `make run`'s.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from posterr.keys import KEY_FAMILIES, PREFIX, timeline_keys

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "loadtests" / "results"
BENCH_DATABASE = "posterr_bench"
BENCH_TEMPLATE = "posterr_bench_seed"  # seeded once, never served: each run copies it to BENCH_DATABASE
BENCH_REDIS_DB = 11
SEED_MARK = "posterr seed 2 (with replies): users={users} posts={posts} follows_per_user={follows}"
SEED_FILE = ROOT / "db" / "seed" / "seed.sql"
READERS_FILE = ROOT / "db" / "seed" / "readers.sql"
FANS_FILE = ROOT / "db" / "seed" / "fans.sql"


def say(message: str) -> None:
    """Progress on stderr (stdout carries the results)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def fail(message: str) -> None:
    say(f"error: {message}")
    raise SystemExit(1)


def stop_on_sigterm() -> None:
    """A SIGTERM (or a closed terminal) unwinds like Ctrl-C does, so every `finally` runs."""
    def handler(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)


def timestamp() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


# --- servers and databases ------------------------------------------------------------------------

def configured_urls() -> tuple[str, str]:
    database_url, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    if not database_url or not redis_url:
        fail("DATABASE_URL and REDIS_URL are not set: run this through make (which starts the local "
             "servers and sets them), or export the URLs of your own servers")
    return database_url, redis_url


def sibling_database(database_url: str, name: str) -> str:
    """The same server and options, another database."""
    return urlunsplit(urlsplit(database_url)._replace(path=f"/{name}"))


def redis_database(redis_url: str, number: int) -> str:
    return urlunsplit(urlsplit(redis_url)._replace(path=f"/{number}"))


def dbmate() -> str:
    found = Path(sys.executable).parent / "dbmate"
    return str(found) if found.exists() else (shutil.which("dbmate") or fail("dbmate not found: run `make venv`"))


def migrate(database_url: str, log_path: Path) -> None:
    """Create the database when missing and apply the migrations (dbmate; idempotent)."""
    command = [dbmate(), "--url", database_url, "--migrations-dir", str(ROOT / "db" / "migrations"),
               "--no-dump-schema", "--wait", "up"]
    with open(log_path, "a") as log:
        done = subprocess.run(command, check=False, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, timeout=300)
    if done.returncode:
        fail(f"dbmate up failed on {safe_url(database_url)}; see {log_path}")


def drop_database(database_url: str, log_path: Path) -> None:
    command = [dbmate(), "--url", database_url, "--no-dump-schema", "drop"]
    with open(log_path, "a") as log:
        done = subprocess.run(command, check=False, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, timeout=300)
    if done.returncode:
        fail(f"could not drop {safe_url(database_url)} to seed it again (is an app still connected to it?); "
             f"see {log_path}")


def seed_mark(conn: psycopg.Connection) -> str | None:
    """What the last completed seed of this database was (kept as the database's comment)."""
    return conn.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                        "WHERE datname = current_database()").fetchone()[0]


def set_seed_mark(conn: psycopg.Connection, mark: str | None) -> None:
    name = conn.execute("SELECT current_database()").fetchone()[0]
    conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(
        sql.Identifier(name), sql.Literal(mark) if mark is not None else sql.SQL("NULL")))


def seed(database_url: str, *, users: int, posts: int, follows_per_user: int = 20, progress=sys.stderr) -> None:
    """Bulk seed with db/seed/seed.sql (adds to what is there), step by step with progress."""
    params = {"users": users, "posts": posts, "follows_per_user": follows_per_user}
    with psycopg.connect(database_url, autocommit=True) as conn:
        for name, body in sql_steps(SEED_FILE):
            started = time.monotonic()
            print(f"seed: {name} …", end="", file=progress, flush=True)
            run_statements(conn, body, params)
            print(f" done in {time.monotonic() - started:.1f}s", file=progress, flush=True)


def run_seed(database_url: str, *, users: int, posts: int, follows: int) -> float:
    """Seed (adds to what is there) and record the mark; returns the seconds it took."""
    started = time.monotonic()
    with psycopg.connect(database_url, autocommit=True) as conn:
        set_seed_mark(conn, None)  # an interrupted seed is never taken for a finished one
    seed(database_url, users=users, posts=posts, follows_per_user=follows)
    vacuum_analyze(database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        set_seed_mark(conn, SEED_MARK.format(users=users, posts=posts, follows=follows))
    return time.monotonic() - started


SEEDED_TABLES = ("users", "posts", "follows", "post_quota", "post_search")


def vacuum_analyze(database_url: str) -> None:
    """VACUUM (ANALYZE) what the seed wrote: fresh statistics for the planner and a visibility map
    for index-only scans, so a benchmark right after a seed does not measure autovacuum's work."""
    say("vacuuming and analyzing the seeded tables")
    with psycopg.connect(database_url, autocommit=True) as conn:
        for table in SEEDED_TABLES:
            conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))


def ensure_readers(database_url: str, counts: tuple[int, ...]) -> None:
    """For each N of `counts`, a user `readerN` following exactly N seeded users (db/seed/readers.sql;
    idempotent: a no-op when they are there already). When it changed anything, users and follows
    are vacuumed and analyzed again, as after a seed."""
    ensure_steps(database_url, READERS_FILE, {"follows": list(counts)},
                 f"readers following {', '.join(map(str, counts))} seeded users")


def ensure_fans(database_url: str, counts: tuple[int, ...]) -> None:
    """For each N of `counts`, a user `authorN` followed by exactly the N users `fan1` … `fanN`
    (db/seed/fans.sql; idempotent, like ensure_readers)."""
    ensure_steps(database_url, FANS_FILE, {"fans": list(counts)},
                 f"authors followed by {', '.join(map(str, counts))} fans")


def ensure_steps(database_url: str, path: Path, params: dict, what: str) -> None:
    """Runs the steps of an idempotent seed file (db/seed/readers.sql, fans.sql), whose last SELECT
    says how many users' counters it recounted; when that is any, users and follows are vacuumed
    and analyzed again, as after a seed."""
    recounted = 0
    started = time.monotonic()
    with psycopg.connect(database_url, autocommit=True) as conn:
        for _name, body in sql_steps(path):
            recounted = run_statements(conn, body, params) or recounted
        if recounted:
            say(f"{what}: follows written, counters of {recounted} users recounted in "
                f"{time.monotonic() - started:.1f}s; vacuuming and analyzing users and follows")
            for table in ("users", "follows"):
                conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))


def run_statements(conn: psycopg.Connection, body: str, params: dict) -> Any:
    """The statements of one step, one by one (split at ";" + newline, so a DO block keeps its inner
    semicolons inside a line; parameters only where a statement names one, so `%` is literal
    elsewhere); the first value of the last statement that returned rows."""
    last = None
    for statement in filter(None, (part.strip() for part in body.split(";\n"))):
        cursor = conn.execute(statement, params if "%(" in statement else None)
        if cursor.description:
            last = cursor.fetchone()[0]
    return last


def sql_steps(path: Path) -> list[tuple[str, str]]:
    """(name, sql) for each `-- step: NAME` block of a seed file (the format of db/seed/seed.sql)."""
    steps = []
    for block in path.read_text(encoding="utf-8").split("-- step: ")[1:]:
        name, _, body = block.partition("\n")
        steps.append((name.strip(), body.strip()))
    return steps


def find_readers(database_url: str, counts: tuple[int, ...]) -> dict[int, tuple[int, int]]:
    """The readers that ensure_readers made: {N: (user id, accounts it follows)} for each N of
    `counts` whose user `readerN` exists."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute("SELECT n, u.id, u.following_count FROM unnest(%s::int[]) AS n "
                            "JOIN users AS u ON lower(u.username) = 'reader' || n", (list(counts),)).fetchall()
    return {n: (user_id, following) for n, user_id, following in rows}


def find_fans(database_url: str, counts: tuple[int, ...]) -> dict[int, tuple[int, int]]:
    """The authors that ensure_fans made: {N: (user id, its followers)} for each N of `counts` whose
    user `authorN` exists."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute("SELECT n, u.id, u.followers_count FROM unnest(%s::int[]) AS n "
                            "JOIN users AS u ON lower(u.username) = 'author' || n", (list(counts),)).fetchall()
    return {n: (user_id, followers) for n, user_id, followers in rows}


def find_threads(database_url: str) -> tuple[int, int, int, int] | None:
    """The seeded threads (db/seed/seed.sql's `threads` step): the deep one's root, middle reply and
    last reply, and the wide one's root; None when the seed has none. (Read once per run, by content:
    no index serves it, and none is needed.)"""
    with psycopg.connect(database_url, autocommit=True) as conn:
        found = conn.execute("""
            SELECT (SELECT max(id) FROM posts WHERE content = 'seed: a deep thread'),
                   (SELECT max(id) FROM posts WHERE reply_count = 0 AND content LIKE 'seed: deep reply %'),
                   (SELECT max(id) FROM posts WHERE content = 'seed: a wide thread')""").fetchone()
        if None in found:
            return None
        length = conn.execute("SELECT count(*) FROM posts WHERE content LIKE 'seed: deep reply %'").fetchone()[0]
        middle = conn.execute("SELECT max(id) FROM posts WHERE content = %s",
                              (f"seed: deep reply {max(length // 2, 1)}",)).fetchone()[0]
    deep_root, deep_leaf, wide_root = found
    return deep_root, middle, deep_leaf, wide_root


def follower_ids(database_url: str, user_id: int) -> list[int]:
    """The ids of the users who follow user_id, in order."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute("SELECT follower_id FROM follows WHERE followee_id = %s ORDER BY follower_id",
                            (user_id,)).fetchall()
    return [follower for (follower,) in rows]


def ensure_bench_database(database_url: str, *, users: int, posts: int, follows: int, reseed: bool,
                          log_path: Path, readers: tuple[int, ...] = (), fans: tuple[int, ...] = ()) -> None:
    """Make `database_url` a fresh copy of the seeded template database (posterr_bench_seed), so that
    every run starts from the same rows whatever the previous run wrote. The template is migrated
    on every run and seeded only when it does not hold this very seed yet (or with reseed); a
    reseed drops and re-creates it, so it always starts from the migrations. With `readers` and
    `fans`, the template also gets its reader users (ensure_readers) and its authors with fans
    (ensure_fans) before it is copied."""
    template_url = sibling_database(database_url, BENCH_TEMPLATE)
    migrate(template_url, log_path)
    wanted = SEED_MARK.format(users=users, posts=posts, follows=follows)
    with psycopg.connect(template_url, autocommit=True) as conn:
        found = seed_mark(conn)
    if found == wanted and not reseed:
        say(f"reusing {safe_url(template_url)} ({found})")
    else:
        say(f"seeding {safe_url(template_url)} from scratch: {users} users, {posts} posts, "
            f"{follows} follows per user (was: {found or 'not seeded'})")
        drop_database(template_url, log_path)
        migrate(template_url, log_path)
        took = run_seed(template_url, users=users, posts=posts, follows=follows)
        say(f"seeded in {took:.1f}s")
    if readers:
        ensure_readers(template_url, readers)
    if fans:
        ensure_fans(template_url, fans)
    copy_database(template_url, database_url)


def copy_database(template_url: str, database_url: str) -> None:
    """DROP and CREATE DATABASE … TEMPLATE (a file-level copy: seconds even for millions of posts)."""
    template, name = (urlsplit(url).path.lstrip("/") for url in (template_url, database_url))
    started = time.monotonic()
    try:
        with psycopg.connect(sibling_database(database_url, "postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name),
                                                                          sql.Identifier(template)))
    except psycopg.Error as error:
        fail(f"could not copy {template} to {name} (is an app still connected to either?): {error}")
    say(f"copied {template} to {name} in {time.monotonic() - started:.1f}s (every run starts from the same rows)")


def forget_cached(redis_url: str, timelines_of: list[int] | None = None) -> int:
    """Delete every posterr key of this Redis database (cached pages, quota counters and home
    timelines: all are rebuilt from PostgreSQL), or with `timelines_of` only the home timelines of
    these users. Returns how many keys went."""
    import redis

    if timelines_of is not None and not timelines_of:
        return 0
    owned = {stem for user_id in timelines_of or () for stem in _timeline_stems(user_id)}
    client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        removed, batch = 0, []
        for key in client.scan_iter(match=_TIMELINES.pattern if owned else f"{PREFIX}:*", count=1000):
            if owned and _without_epoch(key) not in owned:
                continue
            batch.append(key)
            if len(batch) >= 1000:
                removed += client.delete(*batch)
                batch = []
        if batch:
            removed += client.delete(*batch)
        return removed
    except redis.RedisError as error:
        say(f"warning: could not clear posterr keys in {redis_url}: {error}")
        return 0
    finally:
        client.close()


def timeline_sizes(redis_url: str, user_ids: list[int]) -> dict[int, int]:
    """How many entries the home timeline of each of these users holds in this Redis database: 0
    when it has none."""
    import redis

    entries = {_timeline_stems(user_id)[1]: user_id for user_id in user_ids}
    sizes = dict.fromkeys(user_ids, 0)
    client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        keys = [key for key in client.scan_iter(match=_TIMELINES.pattern, count=1000) if _without_epoch(key) in entries]
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.zcard(key)
        for key, size in zip(keys, pipe.execute(), strict=True):
            sizes[entries[_without_epoch(key)]] += max(size - 1, 0)  # less the sentinel (posterr/home_timelines.py)
    except redis.RedisError as error:
        say(f"warning: could not read the home timelines in {redis_url}: {error}")
    finally:
        client.close()
    return sizes


_TIMELINES = next(family for family in KEY_FAMILIES if family.name == "timelines")


def _timeline_stems(user_id: int) -> list[bytes]:
    """A home timeline's keys (state, entries, followees) up to their epoch, whatever the epoch."""
    return [key.encode() for key in timeline_keys(user_id, epoch="")]


def _without_epoch(key: bytes) -> bytes:
    """A key that ends with its epoch (a run_id: no colon), up to that epoch."""
    return key[:key.rindex(b":") + 1]


def user_id_range(database_url: str) -> tuple[int, int]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        low, high = conn.execute("SELECT min(id), max(id) FROM users WHERE username LIKE 'seed%'").fetchone()
    if low is None:
        fail(f"no seeded users in {safe_url(database_url)}")
    return low, high


def prepare_data(*, users: int, posts: int, follows: int, reseed: bool,
                 readers: tuple[int, ...] = (), fans: tuple[int, ...] = ()) -> tuple[str, str, int, int]:
    """The benchmark's own database (a fresh copy of the seeded template, with `readers` and `fans`
    as ensure_readers and ensure_fans make them) and Redis database, and the range of seeded user
    ids: (database URL, Redis URL, lowest id, highest id)."""
    database_url, redis_url = configured_urls()
    bench_db = sibling_database(database_url, BENCH_DATABASE)
    bench_redis = redis_database(redis_url, BENCH_REDIS_DB)
    ensure_bench_database(bench_db, users=users, posts=posts, follows=follows, reseed=reseed,
                          log_path=RESULTS / "dbmate.log", readers=readers, fans=fans)
    say(f"cleared {forget_cached(bench_redis)} posterr keys from Redis database {BENCH_REDIS_DB}")
    low, high = user_id_range(bench_db)
    return bench_db, bench_redis, low, high


def safe_url(url: str) -> str:
    """A URL for messages, without a password."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{parts.username + '@' if parts.username else ''}{host}{':' + str(parts.port) if parts.port else ''}"
    return urlunsplit(parts._replace(netloc=netloc, query=""))


class SyncStandby:
    """A streaming replica of the project-local PostgreSQL (`scripts/services.sh replica-up`) that
    the primary waits for at each commit while `waited_for()` is entered: synchronous_standby_names
    names it, as Patroni's synchronous_mode does. Outside it the replica streams asynchronously, so
    the rows beside measure the same servers without the wait."""

    NAME = "posterr_replica"  # its application_name (scripts/services.sh)
    DEADLINE = 60  # seconds for the primary to see the replica as synchronous (or no longer)

    def __init__(self, database_url: str, log_path: Path):
        local_port = os.environ.get("POSTERR_PG_PORT", "54329")
        where = urlsplit(database_url)
        if (where.hostname, str(where.port)) != ("127.0.0.1", local_port):
            fail(f"--sync-standby needs the project-local PostgreSQL (127.0.0.1:{local_port}), which "
                 f"scripts/services.sh can give a replica; DATABASE_URL names {safe_url(database_url)}: unset it")
        self.database_url = database_url
        self.log_path = log_path

    def start(self) -> None:
        say(f"starting a streaming replica of the local PostgreSQL (log: {self.log_path}); the first "
            "takes a base backup")
        env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
        with open(self.log_path, "a") as log:
            done = subprocess.run([str(ROOT / "scripts" / "services.sh"), "replica-up"], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=log, check=False, timeout=3600)
        if done.returncode:
            fail(f"scripts/services.sh replica-up failed; see {self.log_path}")
        self._require("async")

    @contextmanager
    def waited_for(self) -> Iterator[None]:
        self._set(self.NAME)
        try:
            self._require("sync")
            yield
        finally:
            # Left set, every later commit of `make run` would wait for a replica that may be stopped.
            self._set("")
            self._require("async")

    def _set(self, names: str) -> None:
        with psycopg.connect(self.database_url, autocommit=True, connect_timeout=10) as conn:
            if names:
                conn.execute(sql.SQL("ALTER SYSTEM SET synchronous_standby_names = {}").format(sql.Literal(names)))
            else:
                conn.execute("ALTER SYSTEM RESET synchronous_standby_names")
            conn.execute("SELECT pg_reload_conf()")

    def _require(self, state: str) -> None:
        """Until the primary's WAL sender reports the replica as `sync` or `async`."""
        deadline = time.monotonic() + self.DEADLINE
        with psycopg.connect(self.database_url, autocommit=True, connect_timeout=10) as conn:
            while time.monotonic() < deadline:
                found = conn.execute("SELECT sync_state FROM pg_stat_replication WHERE application_name = %s",
                                     (self.NAME,)).fetchone()
                if found and found[0] == state:
                    return
                time.sleep(0.1)  # polling the primary's view, which changes at its reload
        fail(f"the replica {self.NAME} was not {state} within {self.DEADLINE} s (pg_stat_replication on the primary)")


# --- the app --------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(url: str, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    return http_request(urllib.request.Request(url, headers={"Accept": "application/json"}), timeout)


def http_post(url: str, body: dict, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """A JSON POST; a failed connection or a timeout is status 0."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Accept": "application/json", "Content-Type": "application/json"})
    try:
        return http_request(request, timeout)
    except (OSError, http.client.HTTPException) as error:
        return 0, {}, str(error).encode()


def http_request(request: urllib.request.Request, timeout: float) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers.items()), error.read()


class App:
    """gunicorn with posterr/gunicorn_conf.py (the production configuration) on a free port of
    127.0.0.1, in a session of its own so a Ctrl-C reaches only us; `stop()` ends it (and its
    workers) and is safe to call twice."""

    def __init__(self, database_url: str, redis_url: str, log_path: Path, *, daily_post_limit: int,
                 workers: int | None = None, extra_env: dict[str, str] | None = None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.workers = workers or os.cpu_count() or 1
        self.env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
                    "HOST": "127.0.0.1", "PORT": str(self.port), "WEB_CONCURRENCY": str(self.workers),
                    "POSTERR_RATE_LIMIT": "off", "POSTERR_DAILY_POST_LIMIT": str(daily_post_limit),
                    "POSTERR_SECRET_KEY": "posterr-bench-secret-0123456789abcdef", **(extra_env or {})}
        # gunicorn's control socket defaults to one path per OS user (~/.gunicorn/gunicorn.ctl): every
        # instance would take it over from `make run`'s and delete it on exit. This one needs none.
        self.env["GUNICORN_CMD_ARGS"] = f"{self.env.get('GUNICORN_CMD_ARGS', '')} --no-control-socket".strip()
        self.command = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "posterr" / "gunicorn_conf.py")]
        self.ready_path = "/readyz"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()

    def start(self, wait_seconds: float = 60) -> None:
        say(f"starting gunicorn ({self.workers} workers) on {self.base} (log: {self.log_path})")
        with open(self.log_path, "a") as log:  # gunicorn holds its own copy of the descriptor
            self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                self.stop()
                fail(f"gunicorn exited with {code} before it served; see {self.log_path}")
            try:
                status, _, _ = http_get(self.base + self.ready_path, timeout=2)
                if status == 200:
                    say("app is ready")
                    return
            except OSError:
                pass
            time.sleep(0.2)  # polling until the socket accepts
        self.stop()
        fail(f"the app was not ready within {wait_seconds:.0f}s; see {self.log_path}")

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def worker_boots_since(self, offset: int) -> int:
        """Workers booted since the log had `offset` bytes (max_requests recycling shows up here)."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(offset)
                return log.read().count(b"Booting worker")
        except OSError:
            return 0

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        for attempt in range(3):  # a second Ctrl-C during the stop must not leave gunicorn behind
            try:
                if process.poll() is None:
                    say("stopping gunicorn")
                    process.terminate()  # the master stops its workers gracefully
                    try:
                        process.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        say("gunicorn did not stop within 30s: killing its process group")
                _kill_group(process.pid)
                process.wait(timeout=10)
                return
            except KeyboardInterrupt:
                if attempt == 2:
                    _kill_group(process.pid)
                    raise


class Floor(App):
    """The floor of the stack (loadtests/floor.py) as a yardstick beside the app: a bare Bottle app under
    gunicorn gthread with the app's own workers and threads, reading the same database."""

    def __init__(self, database_url: str, log_path: Path, *, workers: int, threads: int):
        super().__init__(database_url, "", log_path, daily_post_limit=0, workers=workers,
                         extra_env={"FLOOR_DATABASE_URL": database_url})
        self.command = [sys.executable, "-m", "gunicorn", "-k", "gthread", "-w", str(self.workers),
                        "--threads", str(threads), "-b", f"127.0.0.1:{self.port}", "loadtests.floor:application"]
        self.ready_path = "/hello"


def _kill_group(pgid: int) -> None:
    """SIGKILL whatever is left of the session we started for gunicorn (its own process group)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
