"""services/posts.py run in this process against the suite's PostgreSQL and Redis, where a test
needs to step between two of a request's statements or to set the app's clock."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta

import orjson
import pytest

from posterr.app import build_context
from posterr.config import Settings
from posterr.db import Session
from posterr.errors import ApiError, Conflict, DailyLimitReached
from posterr.services import idempotency, posts, users
from posterr.services.acting import Actor
from posterr.services.idempotency import Attempt
from tests.conftest import TEST_SECRET_KEY


@contextmanager
def started_context(servers, **env: str):
    context = build_context(Settings.from_env({
        "DATABASE_URL": servers.database_url, "REDIS_URL": servers.redis_url, "POSTERR_SECRET_KEY": TEST_SECRET_KEY,
        "POSTERR_DAILY_POST_LIMIT": "2", "POSTERR_POOL_MIN_SIZE": "1", **env}))
    context.start()
    try:
        yield context
    finally:
        context.stop()


@pytest.fixture
def ctx(servers):
    with started_context(servers) as context:
        yield context


class SkewedClock:
    """`datetime` or `date` as a posterr module sees it: its clock reads `skew` ahead (a host whose
    clock is off); everything else is the real class's, values made from it included."""

    def __init__(self, real: type, skew: timedelta):
        self._real, self._skew = real, skew

    def now(self, tz=None) -> datetime:
        return datetime.now(tz) + self._skew

    def utcnow(self) -> datetime:
        return datetime.now(UTC).replace(tzinfo=None) + self._skew

    def today(self) -> date | datetime:
        now = datetime.now() + self._skew
        return now.date() if self._real is date else now

    def __call__(self, *args, **kwargs):
        return self._real(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._real, name)

    def __instancecheck__(self, value) -> bool:
        return isinstance(value, self._real)

    def __subclasscheck__(self, cls) -> bool:
        return issubclass(cls, self._real)


def skew_the_app_clock(monkeypatch, skew: timedelta) -> None:
    """Every posterr module's `datetime` and `date` read a clock `skew` ahead: whichever module the
    day might be taken from, it is not PostgreSQL's."""
    patched = 0
    for name, module in list(sys.modules.items()):
        if name == "posterr" or name.startswith("posterr."):
            for attribute, real in (("datetime", datetime), ("date", date)):
                if getattr(module, attribute, None) is real:
                    monkeypatch.setattr(module, attribute, SkewedClock(real, skew))
                    patched += 1
    assert patched, "no posterr module imports datetime or date any more: skew the clock it reads instead"


def new_user(sql, name: str) -> int:
    return sql.execute("INSERT INTO users (username) VALUES (%s) RETURNING id", (name,)).fetchone()[0]


def test_the_daily_limit_counts_a_post_on_the_day_postgresql_dates_it(ctx, sql, monkeypatch):
    """An app whose clock says tomorrow (a skewed host) still counts posts on the day PostgreSQL
    gives them: the limit holds across hosts whose clocks disagree."""
    author = new_user(sql, "skewed")
    for _ in range(2):
        posts.create_post(ctx, Actor(author), "today")
    skew_the_app_clock(monkeypatch, timedelta(days=1))
    assert posts.datetime.now(UTC).date() > datetime.now(UTC).date()  # what the service would ask
    with pytest.raises(DailyLimitReached):
        posts.create_post(ctx, Actor(author), "one too many")
    days = sql.execute("SELECT q.day, p.created_at FROM post_quota q JOIN posts p ON p.user_id = q.user_id "
                       "WHERE q.user_id = %s", (author,)).fetchall()
    assert {day for day, _ in days} == {created_at.astimezone(UTC).date() for _, created_at in days}


def test_a_trending_cursor_comes_from_the_snapshot_the_page_was_ordered_in(ctx, sql, monkeypatch):
    """A repost between the page's order and the read of its posts must not move the cursor: a
    cursor from the fresher score would repeat a post of this page on the next one."""
    author = new_user(sql, "trender")
    start = datetime(2026, 3, 1, tzinfo=UTC)

    def post(score: int, minutes: int) -> int:
        return sql.execute("INSERT INTO posts (user_id, type, content, created_at, repost_count) "
                           "VALUES (%s, 'post', 'x', %s, %s) RETURNING id",
                           (author, start + timedelta(minutes=minutes), score)).fetchone()[0]

    top, older_four, newest_three, last = post(5, 1), post(4, 2), post(3, 3), post(0, 4)
    original_call = Session.__call__
    reposted = []

    def repost_between_statements(self, name, **params):
        result = original_call(self, name, **params)
        if name == "page_trending" and not reposted:  # a concurrent repost of the page's last post
            sql.execute("UPDATE posts SET repost_count = repost_count + 1 WHERE id = %s", (newest_three,))
            reposted.append(newest_three)
        return result

    monkeypatch.setattr(Session, "__call__", repost_between_statements)
    query = {"sort_by": "trending", "start_date": "2026-03-01", "limit": "3"}  # by dates: ids, then the posts
    first = posts.list_posts(ctx, query)
    assert [p["id"] for p in orjson.loads(first.body)] == [top, older_four, newest_three]
    assert reposted
    second = posts.list_posts(ctx, {**query, "cursor": first.next_cursor})
    assert [p["id"] for p in orjson.loads(second.body)] == [last]


# --- Idempotency-Key (services/idempotency.py) ----------------------------------------------------

class WorkerKilled(BaseException):
    """A worker dying where the test says (SIGKILL, OOM): nothing after that point runs."""


def post_attempt(author: int, key: str = "k1") -> Attempt:
    return Attempt("POST /api/posts", author, None, key, "/api/posts", {"user_id": author, "content": "once"},
                   "/api/posts/")


def create_once(ctx, author: int, key: str = "k1"):
    return idempotency.create_once(ctx, post_attempt(author, key),
                                   lambda record: posts.create_post(ctx, Actor(author), "once", record=record),
                                   lambda post: posts.deliver_again(ctx, post))


def following(ctx, reader: int) -> list[int]:
    return [p["id"] for p in orjson.loads(posts.list_posts(ctx, {"followed_by": str(reader)}).body)]


def test_a_replay_redoes_the_cache_work_of_a_creation_that_died_after_its_commit(ctx, sql, monkeypatch):
    author, reader = new_user(sql, "author"), new_user(sql, "reader")
    sql.execute("INSERT INTO follows (follower_id, followee_id) VALUES (%s, %s)", (reader, author))
    sql.execute("UPDATE users SET followers_count = 1 WHERE id = %s", (author,))
    assert following(ctx, reader) == []  # the reader's home timeline, built empty
    profile = users.get_user(ctx, author)  # cached

    def killed(*changes):
        raise WorkerKilled

    with monkeypatch.context() as during_the_first_request:
        during_the_first_request.setattr(ctx.redis, "before_answer", killed)
        with pytest.raises(WorkerKilled):
            create_once(ctx, author)
    replayed = create_once(ctx, author)
    assert replayed.replayed
    post_id = orjson.loads(replayed.body)["id"]
    assert following(ctx, reader) == [post_id]
    assert orjson.loads(users.get_user(ctx, author))["posts_count"] == orjson.loads(profile)["posts_count"] + 1


@pytest.mark.parametrize("fans", [0, 2])  # 2: this follow is the one that crosses the fan-out limit
def test_a_retried_follow_redoes_the_cache_work_of_one_that_died_after_its_commit(servers, sql, monkeypatch, fans):
    """A follow committed by a worker that died before its Redis work (a SIGKILL while Redis was
    paused): the client's retry (PUT is idempotent) finds the row there and must still do that work,
    or the follower's timeline lacks the followee's posts until it expires."""
    with started_context(servers, POSTERR_FANOUT_MAX_FOLLOWERS="2") as ctx:
        retried_follow(ctx, sql, monkeypatch, fans)


def retried_follow(ctx, sql, monkeypatch, fans: int) -> None:
    author, reader = new_user(sql, "followed"), new_user(sql, "follower")
    fan_ids = [new_user(sql, f"fan{n}") for n in range(fans)]
    for fan in fan_ids:
        sql.execute("INSERT INTO follows (follower_id, followee_id) VALUES (%s, %s)", (fan, author))
    sql.execute("UPDATE users SET followers_count = %s WHERE id = %s", (fans, author))
    post = posts.create_post(ctx, Actor(author), "before the follow")
    post_id = orjson.loads(post.body)["id"]
    readers = [reader, *fan_ids]
    assert [following(ctx, user) for user in readers] == [[]] + [[post_id]] * fans  # timelines built

    def killed(*changes):
        raise WorkerKilled

    with monkeypatch.context() as during_the_first_request:
        during_the_first_request.setattr(ctx.redis, "before_answer", killed)
        with pytest.raises(WorkerKilled):
            users.follow(ctx, Actor(reader), author)
    users.follow(ctx, Actor(reader), author)  # the retry
    assert following(ctx, reader) == [post_id]
    # Past the limit the author's posts are no longer pushed but merged at read time, which only a
    # timeline built since then knows: every follower's must have been dropped.
    later_id = orjson.loads(posts.create_post(ctx, Actor(author), "after the follow").body)["id"]
    assert [following(ctx, user) for user in readers] == [[later_id, post_id]] * len(readers)


def test_the_cache_work_is_redone_by_the_first_replay_only(ctx, sql):
    """Replays cost what a read costs: only the first redoes the creation's cache work (its fan-out
    may be a thousand pushes), however many follow, one after another or all at once."""
    author = new_user(sql, "replayed")
    redone: list[int] = []

    def replay(key: str):
        return idempotency.create_once(ctx, post_attempt(author, key),
                                       lambda record: posts.create_post(ctx, Actor(author), "once", record=record),
                                       lambda post: redone.append(post["id"]))

    first = replay("sequential")
    assert not first.replayed and redone == []
    assert all(replay("sequential").replayed for _ in range(20))
    assert redone == [orjson.loads(first.body)["id"]]
    redone.clear()
    second = replay("together")
    with ThreadPoolExecutor(8) as pool:
        assert all(answer.replayed for answer in pool.map(lambda _: replay("together"), range(16)))
    assert redone == [orjson.loads(second.body)["id"]]


def test_an_undo_that_finds_no_connection_at_hand_leaves_postgresql_up(ctx):
    """Database.undo waits UNDO_WAIT (0.2 s) for a pooled connection. Not getting one says that the
    pool is busy or still opening one, not that PostgreSQL is gone: the requests after it are served,
    not refused at once for a second (every keyed creation that fails runs an undo)."""
    pool = ctx.db.primary.pool
    held = [pool.getconn() for _ in range(pool.max_size)]
    try:
        with pytest.raises(ApiError):
            ctx.db.undo("release_idempotency_key", scope="POST /api/posts", user_id=1, key="k", claim=7)
    finally:
        for conn in held:
            pool.putconn(conn)
    assert ctx.db("ping")["ok"] == 1


def test_a_request_that_stalled_past_its_claim_creates_nothing(ctx, sql):
    """While the first request stalls for longer than a claim lasts, a retry takes the key over and
    creates the post: the first one must then neither create a second post nor record its own."""
    author = new_user(sql, "staller")
    taken_over = []

    def stalled_create(record):
        sql.execute("UPDATE idempotency_keys SET created_at = now() - interval '2 minutes'")
        taken_over.append(create_once(ctx, author))  # the retry, meanwhile
        return posts.create_post(ctx, Actor(author), "once", record=record)

    with pytest.raises(Conflict):
        idempotency.create_once(ctx, post_attempt(author), stalled_create)
    assert sql.execute("SELECT count(*) FROM posts WHERE user_id = %s", (author,)).fetchone()[0] == 1
    assert create_once(ctx, author).body == taken_over[0].body


def test_a_failed_clean_up_of_expired_keys_fails_nothing(ctx, sql, monkeypatch):
    author = new_user(sql, "cleaner")
    sql.execute("INSERT INTO idempotency_keys (scope, user_id, key, fingerprint, created_at) "
                "VALUES ('POST /api/posts', %s, 'old', 'f', now() - interval '2 days')", (author,))
    sql.execute("CREATE FUNCTION test_fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "RAISE EXCEPTION 'failed by the test' USING ERRCODE = '40001'; END $$")
    sql.execute("CREATE TRIGGER test_fail BEFORE DELETE ON idempotency_keys FOR EACH ROW "
                "WHEN (OLD.key = 'old') EXECUTE FUNCTION test_fail()")
    monkeypatch.setattr(idempotency, "CLEANUP_EVERY", 1)
    try:
        created = create_once(ctx, author)
    finally:
        sql.execute("DROP TRIGGER test_fail ON idempotency_keys")
        sql.execute("DROP FUNCTION test_fail()")
    assert not created.replayed
    assert create_once(ctx, author).replayed  # the key holds the answer: it was not left claimed
