"""Posts, reposts, quotes and replies: creating them under the daily limit, and reading the feeds."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from typing import Any

import orjson

from posterr import logs, presenters, validation
from posterr.context import Context
from posterr.errors import Conflict, DailyLimitReached, DuplicateRow, InvalidToken, NotFound, ValidationFailed
from posterr.home_timelines import member, post_id
from posterr.keys import FEEDS_KEY, feed_field, post_key, user_key
from posterr.limits import seconds_to_utc_midnight
from posterr.redis_client import Change
from posterr.services import search, timelines
from posterr.services.acting import Actor, validated_after_token
from posterr.services.feed_query import FeedQuery, Server, Source
from posterr.services.idempotency import Record, Recorded, unkept
from posterr.services.pagination import Page, newest_first_window, page_of, trending_window
from posterr.services.users import existing_user

log = logging.getLogger("posterr.posts")


def create_post(ctx: Context, actor: Actor, content: Any = None, repost_id: Any = None, reply_to_id: Any = None,
                *, record: Record = unkept) -> Recorded:
    """A post (no repost_id), a repost (repost_id, no content), a quote (both) or a reply (reply_to_id),
    by the actor (its token is checked again in the creation's own transaction)."""
    author = actor.user_id
    reposted_id, answered_id, kind, text = validated_after_token(
        ctx.db, actor, lambda: _what_is_created(content, repost_id, reply_to_id))
    target_id = reposted_id or answered_id

    try:
        with ctx.db.transaction() as run:
            user = run("author_of_new_post", id=author, token_digest=actor.token_digest)
            if user is None:
                raise NotFound(f"there is no user {author}")
            if not user["token_live"]:
                raise InvalidToken()
            day = user["today"]
            target = _checked_target(run, kind, author, target_id) if target_id is not None else None
            if ctx.quota.used_up(author, day):
                raise _limit_reached(ctx)
            # From here the transaction holds row locks: no Redis call until it ends. Concurrent
            # creations of one user queue on the quota row; a duplicate repost then fails on the
            # unique index, and the quota it took rolls back with it.
            created = run("insert_post", user_id=author, type=kind, content=text, repost_id=reposted_id,
                          reply_to_id=answered_id, day=day, daily_limit=ctx.settings.daily_post_limit)
            post = _new_post(created, user, kind, text, target) if created else None
            recorded = record(run, post) if post else None
            # Read while this transaction holds the author's row lock: see posterr/home_timelines.py, rule 2.
            followers = _followers_to_push(ctx, run, post, created["followers_count"]) if post else []
    except DuplicateRow:
        raise Conflict(f"user {author} has already reposted post {target_id}") from None
    if created is None:  # PostgreSQL refused: the counter learns that the day is full
        ctx.quota.remember(author, day, ctx.settings.daily_post_limit)
        raise _limit_reached(ctx)
    logs.event(log, "post_created", post_id=post["id"], user_id=author, type=kind, repost_id=reposted_id,
               reply_to_id=answered_id)
    # A commit that may yet be lost in a fail-over (unconfirmed: answered 503) must not raise the
    # counter above what PostgreSQL will hold then: the counter is dropped instead.
    counter = (ctx.quota.forgets(author, day) if run.commit_unconfirmed
               else ctx.quota.remembers(author, day, created["used"]))
    ctx.redis.before_answer(*_cache_work(ctx, post, created["created_at"], followers), counter)
    return recorded


def _what_is_created(content: Any, repost_id: Any, reply_to_id: Any) -> tuple[int | None, int | None, str, str | None]:
    reposted_id = validation.body_id("repost_id", repost_id, required=False)
    answered_id = validation.body_id("reply_to_id", reply_to_id, required=False)
    return reposted_id, answered_id, *validation.creation(content, reposted_id, answered_id)


def deliver_again(ctx: Context, post: dict) -> None:
    """A created post's cache work once more, for a replay of its creation (the first request may
    have died between its commit and that work): the same deletes, and pushes to the timelines of
    whoever follows its author now; each is harmless when it was done already."""
    def followers(run) -> list[int]:
        author = existing_user(run, post["user_id"])
        return _followers_to_push(ctx, run, post, author["followers_count"])

    ctx.redis.before_answer(*_cache_work(ctx, post, datetime.fromisoformat(post["created_at"]),
                                         ctx.db.read_primary(followers)))


def _followers_to_push(ctx: Context, run, post: dict, followers_count: int) -> list[int]:
    """The followers whose home timelines get `post`: nobody for an author with no followers, or with
    too many (merged at read time); a reply is in no home timeline."""
    if post["type"] == "reply" or not 0 < followers_count <= ctx.settings.fanout_max_followers:
        return []
    return [row["follower_id"] for row in run("fanout_followers", user_id=post["user_id"], limit=followers_count)]


def _cache_work(ctx: Context, post: dict, created_at: datetime, followers: list[int]) -> tuple[Change, ...]:
    """What a new post changes in Redis, to deliver before it is answered: nobody may read a feed,
    profile or post that lacks it (cached feed pages hold the target's counters too)."""
    target_id = post["repost_id"] or post["reply_to_id"]
    changed = [FEEDS_KEY, user_key(post["user_id"])] + ([post_key(target_id)] if target_id else [])
    return (ctx.cache.deletes(*changed),
            ctx.timelines.pushes(followers, post["user_id"], member(created_at, post["id"])))


def _new_post(created: dict, user: dict, kind: str, text: str | None, target: dict | None) -> dict:
    """The new post as post_by_id would read it, from what is known already (no read back)."""
    reposted = target if kind in ("repost", "quote") else None
    answered = target if kind == "reply" else None
    return presenters.post({
        "id": created["id"], "user_id": user["id"], "username": user["username"], "type": kind,
        "content": text if kind != "repost" else target["content"], "repost_id": reposted and reposted["id"],
        "repost_count": 0, "quote_count": 0, "reply_count": 0, "created_at": created["created_at"],
        **{f"reply_to_{column}": answered and answered[column] for column in ("id", "user_id", "username")},
        **{f"original_{column}": reposted and reposted[column]
           for column in ("id", "user_id", "username", "type", "content", "created_at")}})


def _checked_target(run, kind: str, author: int, target_id: int) -> dict:
    """The post to repost, quote or answer, once it is known to be a valid target for `kind`."""
    target = run("post_by_id", id=target_id)
    if target is None:
        raise NotFound(f"there is no post {target_id}")
    if kind == "repost" and target["type"] == "repost":
        raise ValidationFailed.of("repost_id", "a repost cannot be reposted; repost the original post")
    if kind == "quote" and target["type"] == "quote":
        raise ValidationFailed.of("repost_id", "a quote cannot be quoted")
    if kind == "reply" and target["type"] == "repost":
        raise ValidationFailed.of("reply_to_id", "a repost cannot be replied to; reply to the original post")
    if kind == "repost" and run("repost_exists", repost_id=target_id, user_id=author)["reposted"]:
        raise Conflict(f"user {author} has already reposted post {target_id}")
    return target


def _limit_reached(ctx: Context) -> DailyLimitReached:
    limit = ctx.settings.daily_post_limit
    return DailyLimitReached(f"the daily limit of {limit} posts, reposts, quotes and replies is reached; "
                             "it resets at midnight UTC", retry_after=seconds_to_utc_midnight())


def get_post(ctx: Context, post_id: int) -> bytes:
    def load() -> bytes:
        row = ctx.db("post_by_id", id=post_id)
        if row is None:
            raise NotFound(f"there is no post {post_id}")
        return orjson.dumps(presenters.post(row))

    return ctx.cache.fetch(post_key(post_id), "json", ctx.settings.object_cache_ttl, load)


def list_posts(ctx: Context, params: dict[str, str | None], *, keyword_required: bool = False) -> Page:
    """The feed: filters `author_id`, `followed_by`, `keyword`, `start_date`, `end_date`, combined
    with AND, replies only with `include_replies`, ordered by `sort_by` (latest | trending), one
    keyset page of `limit` after `cursor`."""
    query = FeedQuery.parse(params, ctx.cursors)
    if keyword_required and query.keyword is None:
        return Page(b"[]", None)
    server = query.server()
    if server is Server.PRIMARY:
        return ctx.db.read_primary(lambda run: _feed_page(ctx, run, query))
    if server is Server.REPLICA:
        page = ctx.db.read(lambda run: _feed_page(ctx, run, query))
        # Every answer to such a keyword says so, the empty ones and those over fewer posts than the window too.
        return replace(page, search_scope="recent") if query.recent_only else page
    field = feed_field(query.order, query.size, query.author_id, query.with_replies)
    return Page.unpack(ctx.cache.fetch(FEEDS_KEY, field, ctx.settings.feed_cache_ttl,
                                       lambda: ctx.db.read_primary(lambda run: _feed_page(ctx, run, query)).pack()))


def _feed_page(ctx: Context, run, query: FeedQuery) -> Page:
    source, wanted = query.source(), query.size + 1
    if source is Source.HOME_TIMELINE:
        rows = _home_timeline_rows(ctx, run, query.followed_by, query.last, wanted)
    elif source is Source.ONE_STATEMENT:
        window = (newest_first_window(query.last, *query.bounds) if query.order == "latest"
                  else trending_window((query.after["after_score"], *query.last) if query.last else None))
        rows = run(_ONE_STATEMENT_QUERIES[query.order], feed=query.author_id or GLOBAL_FEED,
                   include_replies=query.with_replies, limit=wanted, **window)
    else:
        ordered = (search.keyword_page(run, query) if query.keyword
                   else run(_PAGE_QUERIES[query.order, query.followed_by is not None], **query.filters()))
        rows = posts_in_order(run, [row["id"] for row in ordered])
        if query.order == "trending":  # the cursor takes the score the page was ordered by
            scores = {row["id"]: row["score"] for row in ordered}
            rows = [{**row, "score": scores[row["id"]]} for row in rows]
    if not rows:  # a post shows that its author and the follower it was found for exist
        for user_id in (query.author_id, query.followed_by):
            if user_id is not None:
                existing_user(run, user_id)
    return page_of(rows, query.size, ctx.cursors, query.keyset, presenters.post)


def _home_timeline_rows(ctx: Context, run, reader: int, last: tuple[datetime, int] | None, wanted: int) -> list[dict]:
    """A Following page from the reader's home timeline, each entry checked against PostgreSQL: one
    that names a post it lacks, or whose id another post now has, cuts the page short or shows a
    stranger's post, so the timeline is forgotten and the page read from PostgreSQL."""
    entries = timelines.page_entries(ctx, run, reader, last, wanted)
    rows = posts_in_order(run, [post_id(entry) for entry in entries])
    if [member(row["created_at"], row["id"]) for row in rows] == entries:
        return rows
    timelines.forget(ctx, reader)
    return posts_in_order(run, [row["id"] for row in timelines.pulled(run, reader, last, wanted)])


def posts_in_order(run, ids: list[int]) -> list[dict[str, Any]]:
    """The rows of post_details for `ids`, in the order of `ids`; an id PostgreSQL does not have is
    left out."""
    by_id = {row["id"]: row for row in run("posts_by_ids", ids=ids)} if ids else {}
    return [by_id[wanted_id] for wanted_id in ids if wanted_id in by_id]


_ONE_STATEMENT_QUERIES = {"latest": "posts_page_latest", "trending": "posts_page_trending"}
GLOBAL_FEED = 0  # the feed of every post in the view feed_posts; an author's feed is their id
_PAGE_QUERIES = {("latest", False): "page_latest", ("trending", False): "page_trending",
                 ("latest", True): "page_followed_latest", ("trending", True): "page_followed_trending"}

