"""The soak's checkpoints, after each fault heals and once more at the end (load stopped).

Every HTTP read here goes over a fresh connection (`Connection: close`), to nginx and to each
instance directly, so it may reach any worker. A checkpoint after a fault looks at a sample of the
ledger (every write acknowledged since the previous checkpoint, up to a cap, plus some older ones),
so that checkpoints stay short while the load runs; the final one looks at every acknowledged write,
and, the load being stopped, also compares the counters the API shows with the tables. The feeds'
checks (read your writes) are in loadtests/soak_feed_checks.py. What the reads show is judged by
loadtests/soak_rules.py.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import date

import gevent.pool
import psycopg
import requests

from loadtests import soak_rules as rules
from loadtests.harness import say
from loadtests.soak_feed_checks import FeedChecks, status_of
from loadtests.soak_state import RECOVERY_SECONDS, AckPost, Shared
from posterr.keys import KEY_FAMILIES
from posterr.redis_connections import connect

PROBE_TIMEOUT = 2.0  # liveness: each answer within this
PROBE_STREAK = 3  # good probes in a row per base (over fresh connections: likely every worker)
READ_TIMEOUT = 5.0
# A checkpoint stops reading after this many reads went unanswered (the app hangs): the rest of its
# reads would take READ_TIMEOUT each and tell nothing new.
MAX_UNANSWERED = 16
CONCURRENCY = 8
SAMPLE_NEW, SAMPLE_OLD = 150, 30  # posts (and users / 3) checked at a checkpoint after a fault
FOLLOWING_READERS = 20  # Following feeds (home timelines) checked at a checkpoint after a fault


class GaveUp(Exception):
    """Too many reads of this checkpoint went unanswered: it reads no more."""


QUOTA_KEYS = next(family.pattern for family in KEY_FAMILIES if family.name == "quota")


class Checker(FeedChecks):
    def __init__(self, shared: Shared, database_url: str, redis_url: str, rng: random.Random) -> None:
        self.ledger, self.verdict, self.bases = shared.ledger, shared.verdict, shared.bases
        self.database_url, self.redis_url = database_url, redis_url
        self.rng = rng
        # Ledger positions already seen.
        self.checked_posts = self.checked_users = self.checked_refusals = self.checked_revoked_writes = 0
        self.recovery_deadline = 0.0  # until then, a lost answer is retried (the app may still recover)
        self.unanswered = self.skipped = 0  # this checkpoint's reads without an answer, and checks left out
        self.pool = gevent.pool.Pool(CONCURRENCY)

    def checkpoint(self, after: str, deadline: float, *, final: bool) -> None:
        """Liveness by `deadline` (the end of the app's time to recover), then every other invariant."""
        started, before = time.monotonic(), self.verdict.total_violations
        self.recovery_deadline, self.unanswered, self.skipped = deadline, 0, 0
        recovered = self.liveness(after, deadline)
        posts, users = self.sample(final)
        with self.connect() as conn:
            if conn is not None:
                self.posts_kept(conn, posts, quiescent=final)
                self.users_kept(conn, users, quiescent=final)
                self.follows_kept(conn)
                self.counters(conn)
                self.daily_limit(conn)
                self.revoked_writes(conn)
        authors = self.author_feeds(posts)
        self.threads(posts)
        readers = self.following_feeds(users[:FOLLOWING_READERS] if not final else users)
        self.global_feeds()
        if self.skipped:
            self.verdict.violate("liveness", f"after {after}, {self.unanswered} reads went unanswered within "
                                             f"{READ_TIMEOUT:g} s: {self.skipped} checks left out")
        found = self.verdict.total_violations - before
        say(f"check after {after}: {recovered}; {len(posts)} posts, {len(users)} users, "
            f"{authors} author feeds and {readers} Following feeds × {len(self.bases)} bases, follows, counters, "
            f"daily limit, writes with revoked tokens: "
            f"{'ok' if not found else f'{found} VIOLATIONS'} ({time.monotonic() - started:.1f} s)")

    # --- plumbing -----------------------------------------------------------------------------------

    def fetch(self, url: str, route: str, *, timeout: float = READ_TIMEOUT, must_answer: bool = True,
              client: str | None = None):
        """GET over a fresh connection (as `client`, an X-Forwarded-For address, when given), recorded
        and judged like the load's requests; None: no answer."""
        started = time.monotonic()
        headers = {"Connection": "close", **({"X-Forwarded-For": client} if client else {})}
        try:
            response = requests.get(url, timeout=timeout, headers=headers)
        except requests.RequestException as error:
            self.verdict.response(route, 0, "", started, time.monotonic(), timed_out=isinstance(error, requests.Timeout),
                                  must_answer=must_answer, what=url)
            return None
        self.verdict.response(route, response.status_code, response.headers.get("Content-Type", ""), started,
                              time.monotonic(), must_answer=must_answer, what=url)
        return response

    def read(self, url: str, route: str, client: str | None = None):
        """fetch; while the answer is lost (502/503/504, none), polled again until the app's time to
        recover is over (and twice at least). Raises GaveUp once MAX_UNANSWERED reads went unanswered."""
        tries = 0
        while True:
            if self.unanswered >= MAX_UNANSWERED:
                raise GaveUp
            response = self.fetch(url, route, client=client)
            tries += 1
            if response is None:
                self.unanswered += 1
            elif response.status_code not in (502, 503, 504):
                return response
            if tries >= 2 and time.monotonic() >= self.recovery_deadline:
                return response
            time.sleep(0.5)  # polling interval

    def each(self, items: Iterable, work: Callable) -> list:
        """`work` on every item, CONCURRENCY at a time; an item whose reads were given up is counted."""
        def guarded(item):
            try:
                return work(item)
            except GaveUp:
                self.skipped += 1
                return None
        return list(self.pool.imap_unordered(guarded, items))

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection | None]:
        """A connection to the soak's database, or None (a violation) when it cannot be had."""
        try:
            conn = psycopg.connect(self.database_url, autocommit=True, connect_timeout=5)
        except psycopg.Error as error:
            self.verdict.violate("writes kept", f"PostgreSQL cannot be reached after the heal: {error}")
            yield None
            return
        with conn:
            yield conn

    def sample(self, final: bool) -> tuple[list[AckPost], list[int]]:
        """Every write at the end; after a fault, those since the last checkpoint (capped) and a few
        older ones."""
        post_ids, user_ids = list(self.ledger.post_ids), list(self.ledger.user_ids)
        if final:
            chosen_posts, chosen_users = post_ids, user_ids
        else:
            chosen_posts = self._some(post_ids, self.checked_posts, SAMPLE_NEW, SAMPLE_OLD)
            chosen_users = self._some(user_ids, self.checked_users, SAMPLE_NEW // 3, SAMPLE_OLD // 3)
        self.checked_posts, self.checked_users = len(post_ids), len(user_ids)
        return [self.ledger.posts[post_id] for post_id in chosen_posts], chosen_users

    def _some(self, ids: list[int], checked: int, new: int, old: int) -> list[int]:
        fresh, earlier = ids[checked:], ids[:checked]
        return (self.rng.sample(fresh, min(new, len(fresh))) + self.rng.sample(earlier, min(old, len(earlier))))

    def spread(self, index: int) -> str:
        """Round robin over the bases, so each instance's caches are read."""
        return self.bases[index % len(self.bases)]

    # --- liveness -----------------------------------------------------------------------------------

    def liveness(self, after: str, deadline: float) -> str:
        """/healthz and the feed answer 200 within PROBE_TIMEOUT, PROBE_STREAK times in a row, on every
        base, before `deadline` (RECOVERY_SECONDS after the heal). Returns a summary for the log."""
        healed = deadline - RECOVERY_SECONDS
        results = self.each(self.bases, lambda base: (base, self.probe_until(base, deadline)))
        slowest = 0.0
        for base, (failure, when) in results:
            self.verdict.check("liveness", failure is None,
                               f"{base}: /healthz and /api/posts not answering 200 within {PROBE_TIMEOUT:g} s "
                               f"{RECOVERY_SECONDS:g} s after {after}; the last probe got {failure}")
            slowest = max(slowest, when - healed)
        if any(failure is not None for _, (failure, _) in results):
            return "liveness VIOLATED"
        return f"liveness ok (every base {slowest:.1f} s after the heal at the latest)"

    def probe_until(self, base: str, deadline: float) -> tuple[str | None, float]:
        """(None, when) once the base passed; (what was last seen, when) at the deadline."""
        streak, last = 0, "nothing (no probe finished)"
        while time.monotonic() < deadline:
            problem = self.probe(f"{base}/healthz", "check: GET /healthz") or self.probe(
                f"{base}/api/posts", "check: GET /api/posts")
            streak = 0 if problem else streak + 1
            if streak >= PROBE_STREAK:
                return None, time.monotonic()
            if problem:
                last = problem
                time.sleep(0.2)  # polling interval
        return last, time.monotonic()

    def probe(self, url: str, route: str) -> str | None:
        """None when 200 came within PROBE_TIMEOUT; otherwise what came instead."""
        response = self.fetch(url, route, timeout=PROBE_TIMEOUT, must_answer=False)
        if response is None:
            return f"no answer from {url}"
        return None if response.status_code == 200 else f"{response.status_code} from {url}"

    # --- acknowledged writes ------------------------------------------------------------------------

    def posts_kept(self, conn: psycopg.Connection, posts: list[AckPost], *, quiescent: bool) -> None:
        rows = {row[0]: row[1:] for row in conn.execute(
            "SELECT id, user_id, type, repost_id, reply_to_id, repost_count, quote_count, reply_count FROM posts "
            "WHERE id = ANY(%s)", ([p.id for p in posts],))}
        rules.posts_kept(self.verdict, posts, rows)

        def read_back(numbered: tuple[int, AckPost]) -> None:
            index, post = numbered
            url = f"{self.spread(index)}/api/posts/{post.id}"
            response = self.read(url, "check: GET /api/posts/{id}")
            rules.post_reads_back(self.verdict, post, url, status_of(response), json_of(response), rows.get(post.id),
                                  quiescent=quiescent)

        self.each(enumerate(posts), read_back)

    def users_kept(self, conn: psycopg.Connection, users: list[int], *, quiescent: bool) -> None:
        rows = {row[0]: row[1:] for row in conn.execute(
            "SELECT id, posts_count, followers_count, following_count FROM users WHERE id = ANY(%s)", (users,))}
        rules.users_kept(self.verdict, self.ledger.users, users, rows)

        def read_back(numbered: tuple[int, int]) -> None:
            index, user = numbered
            url = f"{self.spread(index)}/api/users/{user}"
            response = self.read(url, "check: GET /api/users/{id}")
            rules.user_reads_back(self.verdict, user, url, status_of(response), json_of(response), rows.get(user),
                                  quiescent=quiescent)

        self.each(enumerate(users), read_back)

    def follows_kept(self, conn: psycopg.Connection) -> None:
        """Each pair whose last acknowledged PUT/DELETE is known, and that no request touched while we
        looked, is in `follows` exactly when it was last followed."""
        before = rules.settled_follows(self.ledger.follows)
        stored = set(conn.execute("SELECT follower_id, followee_id FROM follows").fetchall())
        rules.follows_kept(self.verdict, self.ledger.follows, before, stored)

    # --- counters, the daily limit and revoked tokens -----------------------------------------------

    def counters(self, conn: psycopg.Connection) -> None:
        """The denormalised counters against counts of the rows (each query sees one snapshot, and
        every write changes a row and its counters in one statement, so they must agree even under load)."""
        users = conn.execute("""
            SELECT u.id, u.posts_count, u.followers_count, u.following_count,
                   (SELECT count(*) FROM posts p WHERE p.user_id = u.id),
                   (SELECT count(*) FROM follows f WHERE f.followee_id = u.id),
                   (SELECT count(*) FROM follows f WHERE f.follower_id = u.id)
            FROM users u""").fetchall()
        posts = conn.execute("""
            SELECT p.id, p.repost_count, p.quote_count, p.reply_count,
                   coalesce(shared.reposts, 0), coalesce(shared.quotes, 0), coalesce(answers.replies, 0)
            FROM posts p
            LEFT JOIN (SELECT repost_id, count(*) FILTER (WHERE type = 'repost') AS reposts,
                              count(*) FILTER (WHERE type = 'quote') AS quotes
                       FROM posts WHERE repost_id IS NOT NULL GROUP BY repost_id) shared ON shared.repost_id = p.id
            LEFT JOIN (SELECT reply_to_id, count(*) AS replies
                       FROM posts WHERE reply_to_id IS NOT NULL GROUP BY reply_to_id) answers ON answers.reply_to_id = p.id
            """).fetchall()
        rules.counters(self.verdict, users, posts)

    def daily_limit(self, conn: psycopg.Connection) -> None:
        """The creations per user and UTC day in `posts` and `post_quota`, and the 429s the load got
        since the last checkpoint, for rules.daily_limit; the Redis counters (read first: PostgreSQL's
        counts only grow, unless a fail-over loses commits, which they must not hold), for
        rules.counters_not_above; both tables' totals per user, in one snapshot, for
        rules.quota_matches_posts."""
        refusals = self.ledger.refusals[self.checked_refusals:]
        self.checked_refusals += len(refusals)
        counters = self.daily_counters()
        made = {(user, day): count for user, day, count in conn.execute(
            "SELECT user_id, (created_at AT TIME ZONE 'UTC')::date, count(*) FROM posts GROUP BY 1, 2")}
        quota = conn.execute("SELECT user_id, day, used FROM post_quota").fetchall()
        rules.daily_limit(self.verdict, made, quota, refusals, self.ledger.uncertain_creators)
        rules.counters_not_above(self.verdict, counters, made)
        rules.quota_matches_posts(self.verdict, conn.execute("""
            SELECT user_id, coalesce(quota.used, 0), coalesce(made.count, 0)
            FROM (SELECT user_id, sum(used) AS used FROM post_quota GROUP BY 1) quota
            FULL JOIN (SELECT user_id, count(*) FROM posts GROUP BY 1) made USING (user_id)""").fetchall())

    def daily_counters(self) -> dict[tuple[int, date], int]:
        """The app's daily counters in Redis: (user, day) -> the count it holds."""
        client = connect(self.redis_url, socket_timeout=5, socket_connect_timeout=5)
        try:
            found = {}
            for key in client.scan_iter(match=QUOTA_KEYS, count=1000):
                user, day = key.decode().rsplit(":", 2)[-2:]
                value = client.get(key)
                if value is not None:  # gone meanwhile (expired, evicted)
                    found[int(user.strip("{}")), date.fromisoformat(day)] = int(value)
            return found
        finally:
            client.close()

    def revoked_writes(self, conn: psycopg.Connection) -> None:
        """The writes sent with a revoked token since the last checkpoint, and which of the posts they
        carried PostgreSQL holds, for rules.revoked_writes."""
        writes = self.ledger.revoked_writes[self.checked_revoked_writes:]
        self.checked_revoked_writes += len(writes)
        carried = [write.content for write in writes if write.content is not None]
        stored = {row[0] for row in conn.execute("SELECT content FROM posts WHERE content = ANY(%s)", (carried,))}
        rules.revoked_writes(self.verdict, writes, stored)


def json_of(response: requests.Response | None):
    """The body of a 200, else None."""
    return response.json() if response is not None and response.status_code == 200 else None
