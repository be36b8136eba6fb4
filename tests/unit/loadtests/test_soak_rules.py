"""loadtests/soak_rules.py: the soak checker's judgements, as tables of histories. Each invariant the
checker judges from data gets histories that break it (the violation must be reported, under that
invariant, naming the offending id) and clean ones (nothing may be reported)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime

import pytest

from loadtests import soak_rules as rules
from loadtests.soak_state import AckPost, Clock, FaultWindows, FollowPair, RevokedWrite, Verdict
from tests.conftest import ROOT

BASE = "http://127.0.0.1:8080"
DAY = date(2026, 12, 1)
NOON = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def at(hour: int, minute: int, second: int) -> datetime:
    return datetime(2026, 12, 1, hour, minute, second, tzinfo=UTC)


def ack(post_id: int, user_id: int, kind: str = "post", *, reply_to: int | None = None, repost: int | None = None,
        acked: float = 1.0, minute: int = 0) -> AckPost:
    """An acknowledged post, created at 10:`minute` (its place in the feed) and acknowledged at `acked`."""
    return AckPost(post_id, user_id, kind, repost, reply_to, f"2026-12-01T10:{minute:02d}:00.000000Z", acked)


def shown(post: AckPost) -> dict:
    """The post as a page of the API shows it (what the rules read of it)."""
    return {"id": post.id, "user_id": post.user_id, "type": post.type, "created_at": post.created_at}


@pytest.fixture
def verdict() -> Verdict:
    found = Verdict(Clock(), FaultWindows())
    found.clock.started = 0.0  # times in details are then the monotonic moments given
    return found


def assert_reported(verdict: Verdict, expected: list[tuple[str, str]]) -> None:
    """The violations are `expected`, in order: each its invariant and a fragment of its detail."""
    found = [(invariant, violation["detail"]) for invariant, violations in verdict.violations.items()
             for violation in violations]
    assert [invariant for invariant, _ in found] == [invariant for invariant, _ in expected], found
    for (_, detail), (_, fragment) in zip(found, expected, strict=True):
        assert fragment in detail


def test_the_rules_import_neither_locust_nor_gevent():
    """gevent monkey-patches the standard library on import: the unit tests' process must not get it."""
    probe = "import sys, loadtests.soak_rules; print('locust' in sys.modules, 'gevent' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]


# --- writes kept ------------------------------------------------------------------------------------

REPLY = ack(11, 3, "reply", reply_to=7, acked=12.5)


@pytest.mark.parametrize(("rows", "expected"), [
    ({11: (3, "reply", None, 7, 0, 0, 0)}, []),
    ({}, [("writes kept", "reply 11 of user 3 (201 at t=12.5) is not in PostgreSQL")]),
    ({11: (3, "post", None, None, 0, 0, 0)},
     [("writes kept", "reply 11 of user 3 (201 at t=12.5) is stored as (3, 'post', None, None)")]),
    ({11: (4, "reply", None, 7, 0, 0, 0)}, [("writes kept", "reply 11 of user 3")]),  # another author
])
def test_an_acknowledged_post_is_in_postgresql_as_acknowledged(verdict, rows, expected):
    rules.posts_kept(verdict, [REPLY], rows)
    assert_reported(verdict, expected)
    assert verdict.checks["writes kept"] == 1


POST_URL = f"{BASE}/api/posts/11"
POST_ROW = (3, "reply", None, 7, 1, 0, 2)
POST_BODY = {"id": 11, "repost_count": 1, "quote_count": 0, "reply_count": 2}


@pytest.mark.parametrize(("status", "body", "stored", "quiescent", "expected"), [
    (200, POST_BODY, POST_ROW, True, []),
    (200, POST_BODY | {"reply_count": 1}, POST_ROW, False, []),  # under load, counters move between reads
    (200, POST_BODY, None, True, []),  # not in PostgreSQL: posts_kept's violation, no counters to compare
    (404, None, POST_ROW, True, [("writes kept", f"reply 11 (201 at t=12.5): {POST_URL} answered 404")]),
    (None, None, POST_ROW, True, [("writes kept", f"reply 11 (201 at t=12.5): {POST_URL} answered nothing")]),
    (200, POST_BODY | {"id": 12}, POST_ROW, True, [("writes kept", "reply 11")]),
    (200, POST_BODY | {"reply_count": 1}, POST_ROW, True,
     [("counters", f"post 11: {POST_URL} shows repost/quote/reply counts (1, 0, 1), the tables (1, 0, 2)")]),
])
def test_an_acknowledged_post_reads_back_with_its_counters_once_quiescent(verdict, status, body, stored, quiescent,
                                                                          expected):
    rules.post_reads_back(verdict, REPLY, POST_URL, status, body, stored, quiescent=quiescent)
    assert_reported(verdict, expected)


@pytest.mark.parametrize(("rows", "expected"), [
    ({8: (0, 0, 0), 9: (1, 0, 0)}, []),
    ({9: (1, 0, 0)}, [("writes kept", "user 8 (201 at t=3.0) is not in PostgreSQL")]),
])
def test_an_acknowledged_user_is_in_postgresql(verdict, rows, expected):
    rules.users_kept(verdict, {8: 3.0, 9: 4.0}, [8, 9], rows)
    assert_reported(verdict, expected)


USER_URL = f"{BASE}/api/users/8"
USER_BODY = {"id": 8, "posts_count": 2, "followers_count": 1, "following_count": 0}


@pytest.mark.parametrize(("status", "body", "quiescent", "expected"), [
    (200, USER_BODY, True, []),
    (200, USER_BODY | {"followers_count": 0}, False, []),
    (503, None, True, [("writes kept", f"user 8: {USER_URL} answered 503")]),
    (200, USER_BODY | {"followers_count": 0}, True,
     [("counters", f"user 8: {USER_URL} shows posts/followers/following (2, 0, 0), the tables (2, 1, 0)")]),
])
def test_an_acknowledged_user_reads_back_with_its_counters_once_quiescent(verdict, status, body, quiescent, expected):
    rules.user_reads_back(verdict, 8, USER_URL, status, body, (2, 1, 0), quiescent=quiescent)
    assert_reported(verdict, expected)


@pytest.mark.parametrize(("pair", "stored", "meanwhile", "expected"), [
    (FollowPair(following=True), {(1, 2)}, False, []),
    (FollowPair(following=False), set(), False, []),
    (FollowPair(following=True), set(), False,
     [("writes kept", "user 1 followed user 2 (acknowledged) but follows lacks the row")]),
    (FollowPair(following=False), {(1, 2)}, False,
     [("writes kept", "user 1 unfollowed user 2 (acknowledged) but follows still has the row")]),
    (FollowPair(following=None), set(), False, []),  # its last answer was lost: nobody knows
    (FollowPair(following=True, busy=True), set(), False, []),  # a request is changing it
    (FollowPair(following=True), set(), True, []),  # a request started while the table was read
])
def test_an_acknowledged_follow_or_unfollow_is_in_postgresql(verdict, pair, stored, meanwhile, expected):
    follows = {(1, 2): pair}
    before = rules.settled_follows(follows)
    if meanwhile:
        pair.version += 1
    rules.follows_kept(verdict, follows, before, stored)
    assert_reported(verdict, expected)


# --- read your writes -------------------------------------------------------------------------------

@pytest.mark.parametrize(("what", "status", "detail"), [
    ("author feed", 502, f"author feed {BASE}/api/posts answered 502"),
    ("replies", None, f"replies {BASE}/api/posts answered nothing"),
])
def test_a_feed_that_does_not_answer_is_a_violation(verdict, what, status, detail):
    rules.unreadable(verdict, what, f"{BASE}/api/posts", status)
    assert_reported(verdict, [("read your writes", detail)])


AUTHORED = [ack(21, 4, acked=1.0), ack(22, 4, "reply", reply_to=21, acked=2.0), ack(23, 4, acked=5.0)]


@pytest.mark.parametrize(("found", "expected"), [
    ({21, 22, 23}, []),
    ({21, 22}, []),  # 23 was acknowledged after the read was asked for
    ({21}, [("read your writes", f"user 4's feed on {BASE} lacks acknowledged posts [22]")]),
    (set(), [("read your writes", f"user 4's feed on {BASE} lacks acknowledged posts [21, 22]")]),
])
def test_the_authors_feed_holds_every_post_acknowledged_before_it_was_read(verdict, found, expected):
    wanted = rules.acknowledged_before(AUTHORED, asked=3.0)
    rules.author_feed(verdict, 4, BASE, wanted, found)
    assert wanted == {21, 22}
    assert_reported(verdict, expected)
    assert verdict.checks["read your writes"] == 2


@pytest.mark.parametrize(("found", "expected"), [
    ({10, 11}, []),
    ({10}, [("read your writes", "reply 11 of user 3 is not among post 7's replies")]),
])
def test_an_acknowledged_reply_is_among_its_parents_replies(verdict, found, expected):
    rules.reply_listed(verdict, REPLY, found)
    assert_reported(verdict, expected)


# Reader 1 follows users 2 and 3; user 4 is a stranger. Newest first: 35, 34, 33, 32, 31.
OLDER, NEWER = ack(31, 2, minute=1), ack(33, 3, minute=3)
THEIR_REPLY = ack(32, 3, "reply", reply_to=31, minute=2)
LATE = ack(35, 2, minute=5, acked=9.0)  # acknowledged after the read was asked for
STRANGERS = ack(34, 4, minute=4)
BY_AUTHOR = {2: [OLDER, LATE], 3: [THEIR_REPLY, NEWER], 4: [STRANGERS]}
FOLLOWING = f"user 1's Following feed on {BASE}"


@pytest.mark.parametrize(("page", "limit", "linked", "expected"), [
    ([NEWER, OLDER], 10, False, []),
    ([LATE, NEWER, OLDER], 10, False, []),
    ([NEWER], 1, True, []),  # a full page: 31, older than its last entry, has moved on
    ([NEWER], 1, False,
     [("older posts linked", f"{FOLLOWING} has no Link, though posts [31] of accounts it follows are older")]),
    ([NEWER], 10, False,
     [("read your writes", f"{FOLLOWING} lacks acknowledged posts [31] of accounts it follows, newer than its last entry"),
      ("older posts linked", "posts [31]")]),
    ([OLDER], 1, False, [("read your writes", "lacks acknowledged posts [33]")]),  # full, but 33 is newer than 31
    ([STRANGERS, NEWER, OLDER], 10, False,
     [("read your writes", f"{FOLLOWING} shows posts [34] of accounts it does not follow")]),
    ([NEWER, THEIR_REPLY, OLDER], 10, False,
     [("replies left out", f"{FOLLOWING} shows replies [32] (no include_replies)")]),
    ([NEWER, OLDER, OLDER], 10, False, [("no post twice", f"{FOLLOWING} shows posts [31] twice")]),
])
def test_the_following_feed_shows_the_followees_acknowledged_posts_and_only_theirs(verdict, page, limit, linked,
                                                                                   expected):
    rules.following_feed(verdict, 1, BASE, [shown(post) for post in page], linked, limit, {2, 3}, BY_AUTHOR,
                         asked=3.0)
    assert_reported(verdict, expected)


ALL_POSTS = [OLDER, THEIR_REPLY, NEWER, STRANGERS, LATE]


@pytest.mark.parametrize(("page", "limit", "expected"), [
    ([STRANGERS, NEWER, OLDER], 10, []),
    ([STRANGERS, NEWER], 2, []),  # a full page: 31 has moved on
    ([STRANGERS, OLDER], 10,
     [("read your writes", f"global feed on {BASE} lacks acknowledged posts [33] newer than its last entry")]),
    ([STRANGERS, NEWER], 10, [("read your writes", "lacks acknowledged posts [31]")]),  # the whole feed
    ([STRANGERS, NEWER, THEIR_REPLY, OLDER], 10,
     [("replies left out", f"global feed on {BASE} shows replies [32] (no include_replies)")]),
])
def test_the_global_feeds_first_page_holds_every_acknowledged_post_newer_than_its_last(verdict, page, limit,
                                                                                         expected):
    rules.global_feed(verdict, BASE, [shown(post) for post in page], limit, ALL_POSTS, asked=3.0)
    assert_reported(verdict, expected)


# --- counters and the daily limit -------------------------------------------------------------------

@pytest.mark.parametrize(("users", "posts", "expected"), [
    ([(5, 2, 1, 0, 2, 1, 0)], [(9, 1, 0, 3, 1, 0, 3)], []),
    ([(5, 2, 1, 0, 3, 1, 0)], [(9, 1, 0, 3, 1, 0, 3)],
     [("counters", "user 5: posts/followers/following counts (2, 1, 0), rows (3, 1, 0)")]),
    ([(5, 2, 1, 0, 2, 1, 0)], [(9, 1, 0, 2, 1, 0, 3)],
     [("counters", "post 9: repost/quote/reply counts (1, 0, 2), rows (1, 0, 3)")]),
])
def test_the_denormalised_counters_equal_the_rows(verdict, users, posts, expected):
    rules.counters(verdict, users, posts)
    assert_reported(verdict, expected)


@pytest.mark.parametrize(("made", "quota", "refusals", "uncertain", "expected"), [
    ({(1, DAY): 5}, [(1, DAY, 5)], [(1, NOON, 40.0)], set(), []),
    ({(1, DAY): 6}, [(1, DAY, 5)], [], set(), [("daily limit", "user 1 made 6 creations on 2026-12-01")]),
    ({(1, DAY): 5}, [(1, DAY, 6)], [], set(), [("daily limit", "post_quota says user 1 used 6 on 2026-12-01")]),
    ({(1, DAY): 4}, [(1, DAY, 4)], [(1, NOON, 40.0)], set(),
     [("daily limit", "user 1 got a 429 at t=40.0 with 4 creations that day")]),
    ({}, [], [(2, NOON, 41.0)], set(), [("daily limit", "user 2 got a 429 at t=41.0 with 0 creations that day")]),
    ({(1, date(2026, 11, 30)): 5}, [], [(1, NOON, 40.0)], set(),  # its 5 were the day before
     [("daily limit", "user 1 got a 429 at t=40.0 with 0 creations that day")]),
    ({(1, DAY): 4}, [(1, DAY, 5)], [(1, NOON, 40.0)], {1}, []),  # a creation's answer was lost: maybe made
    ({(1, DAY): 4}, [], [(1, at(23, 59, 58), 40.0)], set(), []),  # near midnight: the app's day may differ
    ({(1, DAY): 4}, [], [(1, at(0, 0, 2), 40.0)], set(), []),
    ({(1, DAY): 4}, [], [(1, at(0, 0, 5), 40.0)], set(), [("daily limit", "user 1 got a 429 at t=40.0")]),
])
def test_at_most_five_creations_a_day_and_a_429_only_after_five(verdict, made, quota, refusals, uncertain, expected):
    rules.daily_limit(verdict, made, quota, refusals, uncertain)
    assert_reported(verdict, expected)


@pytest.mark.parametrize(("counters", "made", "expected"), [
    ({(1, DAY): 4}, {(1, DAY): 4}, []),
    ({(1, DAY): 3}, {(1, DAY): 4}, []),  # behind: the next creation asks PostgreSQL
    ({(1, DAY): 5}, {(1, DAY): 4},  # a commit lost in a fail-over, still counted
     [("daily limit", "Redis counts 5 creations for user 1 on 2026-12-01, PostgreSQL 4")]),
    ({(2, DAY): 1}, {}, [("daily limit", "Redis counts 1 creations for user 2 on 2026-12-01, PostgreSQL 0")]),
])
def test_no_daily_counter_is_above_postgresqls_count(verdict, counters, made, expected):
    rules.counters_not_above(verdict, counters, made)
    assert_reported(verdict, expected)


@pytest.mark.parametrize(("totals", "expected"), [
    ([(1, 7, 7), (2, 0, 0)], []),
    ([(1, 5, 4)], [("daily limit", "post_quota says user 1 used 5; 4 posts")]),
])
def test_each_users_quota_used_is_their_number_of_posts(verdict, totals, expected):
    rules.quota_matches_posts(verdict, totals)
    assert_reported(verdict, expected)


# --- tokens ----------------------------------------------------------------------------------------

WRITE = f"POST {BASE}/api/posts with token 8 of user 3 (revoked at t=20.0, sent at t=20.5)"


def revoked(status: int, content: str | None = "Revoked 1a", sent: float = 20.5) -> RevokedWrite:
    """User 3's write with token 8 (revoked at 20.0), sent at `sent` and answered `status`."""
    return RevokedWrite(3, 8, 20.0, sent, f"POST {BASE}/api/posts", status, content)


@pytest.mark.parametrize(("writes", "stored", "expected"), [
    ([revoked(401), revoked(503), revoked(0, None), revoked(404, None)], set(), []),
    ([revoked(201, sent=19.0)], {"Revoked 1a"}, []),  # sent before the revocation's 204: it proves nothing
    ([revoked(201)], {"Revoked 1a"}, [("revoked tokens", f"{WRITE} was acknowledged: 201"),
                                      ("revoked tokens", f"{WRITE} answered 201, yet its post is in PostgreSQL")]),
    ([revoked(204, None)], set(), [("revoked tokens", f"{WRITE} was acknowledged: 204")]),
    ([revoked(0)], {"Revoked 1a"}, [("revoked tokens", f"{WRITE} answered nothing, yet its post is in PostgreSQL")]),
    ([revoked(503)], {"Revoked 1a"}, [("revoked tokens", "answered 503, yet its post is in PostgreSQL")]),
])
def test_no_write_with_a_revoked_token_is_acknowledged_or_stored(verdict, writes, stored, expected):
    rules.revoked_writes(verdict, writes, stored)
    assert_reported(verdict, expected)


@pytest.mark.parametrize(("status", "expected"), [
    (201, []), (403, []), (429, []),
    (401, [("live tokens", "PUT /api/users/3/following/4 with token 8 of user 3, never revoked: 401")]),
])
def test_a_token_never_revoked_is_never_refused(verdict, status, expected):
    rules.live_token_answer(verdict, 3, 8, "PUT /api/users/3/following/4", status)
    assert_reported(verdict, expected)
    assert verdict.checks["live tokens"] == 1


def test_a_check_names_one_of_the_soaks_invariants(verdict):
    """The report lists INVARIANTS only: a check under another name would go unseen there."""
    with pytest.raises(ValueError, match="'no such thing' is not one of the soak's invariants"):
        verdict.check("no such thing", True)
