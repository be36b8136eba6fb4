"""The soak's judgements, from plain data: the writes the ledger says were acknowledged, the rows
read from PostgreSQL, the pages read through the API and the 429s the load got. Each records its
checks and violations in the verdict.

loadtests/soak_checks.py does the reading (fresh connections, SQL, retries) and hands what it read
to these; they do no I/O, so tests/unit/loadtests/test_soak_rules.py can give them histories that
break each invariant and see that they say so. They import neither Locust nor gevent (which
monkey-patches the standard library on import), so the unit tests' process stays unpatched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime

from loadtests.soak_servers import DAILY_POST_LIMIT
from loadtests.soak_state import AckPost, FollowPair, RevokedWrite, Verdict

# --- acknowledged writes ----------------------------------------------------------------------------


def posts_kept(verdict: Verdict, posts: list[AckPost], rows: Mapping[int, tuple]) -> None:
    """Every acknowledged post is in PostgreSQL as its 201 said: `rows` maps a post id to its row of
    `posts` (user_id, type, repost_id, reply_to_id, then repost_count, quote_count, reply_count)."""
    for post in posts:
        stored = rows.get(post.id)
        acked = (post.user_id, post.type, post.repost_id, post.reply_to_id)
        verdict.check("writes kept", stored is not None and stored[:4] == acked,
                      f"{post.type} {post.id} of user {post.user_id} (201 at t={run_time(verdict, post.acked_at)}) "
                      f"{'is not in PostgreSQL' if stored is None else f'is stored as {stored[:4]}'}")


def post_reads_back(verdict: Verdict, post: AckPost, url: str, status: int | None, body: dict | None,
                    stored: tuple | None, *, quiescent: bool) -> None:
    """GET `url` (`status`, None: no answer; `body`, the 200's JSON) showed the post; once the load
    has stopped (`quiescent`), with the counters of its row (`stored`, as in posts_kept; None when it
    is not in PostgreSQL, already a violation): under load they may move between the two reads."""
    verdict.check("writes kept", body is not None and body["id"] == post.id,
                  f"{post.type} {post.id} (201 at t={run_time(verdict, post.acked_at)}): {url} answered "
                  f"{shown_status(status)}")
    if quiescent and body is not None and stored is not None:
        shown = (body["repost_count"], body["quote_count"], body["reply_count"])
        verdict.check("counters", shown == stored[4:],
                      f"post {post.id}: {url} shows repost/quote/reply counts {shown}, the tables {stored[4:]}")


def users_kept(verdict: Verdict, acked: Mapping[int, float], users: list[int], rows: Mapping[int, tuple]) -> None:
    """Every one of `users` (acknowledged: `acked` maps an id to when its 201 came) is in PostgreSQL:
    `rows` maps a user id to its row of `users` (posts_count, followers_count, following_count)."""
    for user in users:
        verdict.check("writes kept", user in rows, f"user {user} (201 at t={run_time(verdict, acked[user])}) "
                                                   "is not in PostgreSQL")


def user_reads_back(verdict: Verdict, user: int, url: str, status: int | None, body: dict | None,
                    stored: tuple | None, *, quiescent: bool) -> None:
    """As post_reads_back, for a user and its row of users_kept."""
    verdict.check("writes kept", body is not None and body["id"] == user,
                  f"user {user}: {url} answered {shown_status(status)}")
    if quiescent and body is not None and stored is not None:
        shown = (body["posts_count"], body["followers_count"], body["following_count"])
        verdict.check("counters", shown == stored,
                      f"user {user}: {url} shows posts/followers/following {shown}, the tables {stored}")


def settled_follows(follows: Mapping[tuple[int, int], FollowPair]) -> dict[tuple[int, int], tuple[int, bool]]:
    """The pairs whose last acknowledged PUT/DELETE is known and that no request is changing, each
    with its version (to tell, after `follows` was read, whether a request touched it meanwhile)."""
    return {key: (pair.version, pair.following) for key, pair in list(follows.items())
            if not pair.busy and pair.following is not None}


def follows_kept(verdict: Verdict, follows: Mapping[tuple[int, int], FollowPair],
                 before: Mapping[tuple[int, int], tuple[int, bool]], stored: set[tuple[int, int]]) -> None:
    """Each pair settled `before` the table was read (`stored`: its (follower, followee) rows), and
    still untouched now, is in `follows` exactly when it was last followed."""
    for key, (version, following) in before.items():
        pair = follows[key]
        if pair.busy or pair.version != version:
            continue  # changed meanwhile: the next checkpoint looks again
        verdict.check("writes kept", (key in stored) == following,
                      f"user {key[0]} {'followed' if following else 'unfollowed'} user {key[1]} (acknowledged) "
                      f"but follows {'lacks' if following else 'still has'} the row")


# --- read your writes -------------------------------------------------------------------------------


def unreadable(verdict: Verdict, what: str, url: str, status: int | None) -> None:
    """A feed or thread that did not answer 200 (after the checker's retries) shows no acknowledged post."""
    verdict.check("read your writes", False, f"{what} {url} answered {shown_status(status)}")


def acknowledged_before(posts: Iterable[AckPost], asked: float) -> set[int]:
    """The posts whose 201 came before the read was asked for: a read may not have seen later ones."""
    return {post.id for post in list(posts) if post.acked_at < asked}


def author_feed(verdict: Verdict, author: int, base: str, expected: set[int], found: set[int]) -> None:
    """The author's Posts and Replies feed, read as the author's client (`found`: the ids of its pages),
    holds every post of theirs acknowledged before it was asked for (`expected`)."""
    missing = sorted(expected - found)
    verdict.check("read your writes", not missing,
                  f"user {author}'s feed on {base} lacks acknowledged posts {missing}", count=len(expected))


def reply_listed(verdict: Verdict, post: AckPost, found: set[int]) -> None:
    """An acknowledged reply is among its parent's replies (`found`: their ids)."""
    verdict.check("read your writes", post.id in found,
                  f"reply {post.id} of user {post.user_id} is not among post {post.reply_to_id}'s replies")


def following_feed(verdict: Verdict, reader: int, base: str, page: list[dict], linked: bool, limit: int,
                   followees: set[int], by_author: Mapping[int, list[AckPost]], asked: float) -> None:
    """The first page (of at most `limit`) of the reader's Following feed shows no reply and no post
    twice, only posts of `followees` (whom the reader followed before and after the read), every
    acknowledged post of theirs newer than its last entry, and a Link to the next page (`linked`)
    when one of theirs is older."""
    where = f"user {reader}'s Following feed on {base}"
    replies_left_out(verdict, page, where)
    no_repeats(verdict, page, where)
    strangers = sorted({p["id"] for p in page if p["user_id"] not in followees})
    verdict.check("read your writes", not strangers, f"{where} shows posts {strangers} of accounts it does not follow")
    theirs = [post for followee in followees for post in list(by_author.get(followee, ()))]
    missing, expected = missing_newer(page, limit, theirs, asked)
    verdict.check("read your writes", not missing,
                  f"{where} lacks acknowledged posts {missing} of accounts it follows, newer than its last entry",
                  count=expected)
    last = min(((p["created_at"], p["id"]) for p in page), default=None)
    older = sorted(post.id for post in theirs
                   if post.type != "reply" and post.acked_at < asked and last is not None and post.feed_key < last)
    verdict.check("older posts linked", linked or not older,
                  f"{where} has no Link, though posts {older[:5]} of accounts it follows are older than its last entry")


def global_feed(verdict: Verdict, base: str, page: list[dict], limit: int, posts: Iterable[AckPost],
                asked: float) -> None:
    """The first page (of at most `limit`) of the global feed shows no reply and no post twice, and
    every acknowledged post newer than its last entry (older ones have legitimately moved on)."""
    where = f"global feed on {base}"
    replies_left_out(verdict, page, where)
    no_repeats(verdict, page, where)
    missing, expected = missing_newer(page, limit, posts, asked)
    verdict.check("read your writes", not missing, f"{where} lacks acknowledged posts {missing} newer than its "
                                                   "last entry", count=expected)


def missing_newer(page: list[dict], limit: int, posts: Iterable[AckPost], asked: float) -> tuple[list[int], int]:
    """Of `posts` that are not replies and were acknowledged before the page was asked for, those a
    first page must show, and the ids it lacks: a full page (`limit` entries) only those at or above
    its last entry in the feed's order; a shorter one is the whole feed, so all of them."""
    oldest = min(((p["created_at"], p["id"]) for p in page), default=None) if len(page) == limit else None
    expected = {post.id for post in posts
                if post.type != "reply" and post.acked_at < asked and (oldest is None or post.feed_key >= oldest)}
    return sorted(expected - {p["id"] for p in page}), len(expected)


def no_repeats(verdict: Verdict, page: list[dict], where: str) -> None:
    """No page shows a post twice (a lost post's id handed out again by a new primary could)."""
    ids = [p["id"] for p in page]
    repeated = sorted({post_id for post_id in ids if ids.count(post_id) > 1})
    verdict.check("no post twice", not repeated, f"{where} shows posts {repeated} twice")


def replies_left_out(verdict: Verdict, page: list[dict], where: str) -> None:
    replies = sorted(p["id"] for p in page if p["type"] == "reply")
    verdict.check("replies left out", not replies, f"{where} shows replies {replies} (no include_replies)")


# --- counters and the daily limit -------------------------------------------------------------------


def counters(verdict: Verdict, users: Iterable[tuple], posts: Iterable[tuple]) -> None:
    """Each row: an id, its three denormalised counters, then the counts of the rows they stand for
    (users: posts, followers, following; posts: reposts, quotes, replies)."""
    for user, *counts in users:
        verdict.check("counters", counts[:3] == counts[3:],
                      f"user {user}: posts/followers/following counts {tuple(counts[:3])}, rows {tuple(counts[3:])}")
    for post, *counts in posts:
        verdict.check("counters", counts[:3] == counts[3:],
                      f"post {post}: repost/quote/reply counts {tuple(counts[:3])}, rows {tuple(counts[3:])}")


def daily_limit(verdict: Verdict, made: Mapping[tuple[int, date], int], quota: Iterable[tuple[int, date, int]],
                refusals: Iterable[tuple[int, datetime, float]], uncertain: set[int]) -> None:
    """At most DAILY_POST_LIMIT creations per user per UTC day in `posts` (`made`: (user, day) →
    count) and in `post_quota` (`quota`: its (user, day, used) rows); and every 429 (`refusals`: (user,
    UTC time, when)) came when the user had made them all that day. Users with a creation whose answer
    was lost (`uncertain`) are left out: it may have been written, or its unit kept; so are 429s near
    midnight."""
    for (user, day), count in made.items():
        verdict.check("daily limit", count <= DAILY_POST_LIMIT, f"user {user} made {count} creations on {day}")
    for user, day, used in quota:
        verdict.check("daily limit", used <= DAILY_POST_LIMIT, f"post_quota says user {user} used {used} on {day}")
    for user, moment, when in refusals:
        if user in uncertain or near_midnight(moment):
            continue
        count = made.get((user, moment.date()), 0)
        verdict.check("daily limit", count >= DAILY_POST_LIMIT,
                      f"user {user} got a 429 at t={run_time(verdict, when)} with {count} creations that day")


def counters_not_above(verdict: Verdict, counters: Mapping[tuple[int, date], int],
                       made: Mapping[tuple[int, date], int]) -> None:
    """No daily counter in Redis (`counters`, read before `made`) is above PostgreSQL's count of
    that user's creations that day: a counter above it would refuse posts the user still has."""
    for (user, day), counter in counters.items():
        count = made.get((user, day), 0)
        verdict.check("daily limit", counter <= count,
                      f"Redis counts {counter} creations for user {user} on {day}, PostgreSQL {count}")


def quota_matches_posts(verdict: Verdict, totals: Iterable[tuple[int, int, int]]) -> None:
    """Each user's quota used (`post_quota`) is their number of posts (`totals`: user, used, made;
    one snapshot): the two are written in one transaction, and lost together."""
    for user, used, made in totals:
        verdict.check("daily limit", used == made, f"post_quota says user {user} used {used}; {made} posts")


def near_midnight(moment: datetime) -> bool:
    """Within 5 s of a UTC midnight, the app's day and ours may differ."""
    seconds = moment.hour * 3600 + moment.minute * 60 + moment.second
    return seconds < 5 or seconds > 86_395


# --- tokens ---------------------------------------------------------------------------------------


def revoked_writes(verdict: Verdict, writes: Iterable[RevokedWrite], stored: set[str]) -> None:
    """No write sent with a token after its revocation was acknowledged is acknowledged itself (2xx),
    and no post one carried is in PostgreSQL (`stored`: those of their contents it holds), whatever
    the answer was. A write sent before the revocation's 204 came proves nothing: it is left out."""
    for write in writes:
        if write.sent_at < write.revoked_at:
            continue
        where = (f"{write.what} with token {write.token_id} of user {write.user_id} (revoked at "
                 f"t={run_time(verdict, write.revoked_at)}, sent at t={run_time(verdict, write.sent_at)})")
        verdict.check("revoked tokens", not 200 <= write.status < 300, f"{where} was acknowledged: {write.status}")
        if write.content is not None:
            verdict.check("revoked tokens", write.content not in stored,
                          f"{where} answered {shown_status(write.status or None)}, yet its post is in PostgreSQL")


def live_token_answer(verdict: Verdict, user: int, token: int, what: str, status: int) -> None:
    """A call made with a token its holder never revoked was not refused as if it were (401)."""
    verdict.check("live tokens", status != 401, f"{what} with token {token} of user {user}, never revoked: 401")


# --- wording ----------------------------------------------------------------------------------------


def run_time(verdict: Verdict, moment: float) -> str:
    """A monotonic moment as the report shows times: seconds since the start of the run."""
    return f"{verdict.clock.since_start(moment):.1f}"


def shown_status(status: int | None) -> str:
    return "nothing" if status is None else str(status)
