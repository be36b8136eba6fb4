"""The "Following" feed, newest first: read from the reader's home timeline (posterr/home_timelines.py
says what keeps it exact), built from PostgreSQL on a miss, or read from PostgreSQL outright when
Redis is unavailable or the timeline cannot fill the page."""

from __future__ import annotations

from datetime import datetime

from posterr import metrics
from posterr.context import Context
from posterr.home_timelines import Build, Slice, member
from posterr.services.users import existing_user


def page_entries(ctx: Context, run, user_id: int, after: tuple[datetime, int] | None, count: int) -> list[str]:
    """Up to `count` posts of the accounts user_id follows, after the (created_at, id) cursor
    `after`, newest first, as timeline members (home_timelines.member): exactly what
    page_followed_latest returns, unless the timeline names a post that a fail-over lost (the caller
    checks each against PostgreSQL, and calls forget and pulled when one is wrong)."""
    cursor = member(*after) if after else None
    timeline = ctx.timelines.read(user_id, cursor, count)
    source = "hit"
    if isinstance(timeline, Build):
        timeline, source = _build(ctx, run, timeline, cursor, count), "built"
    if timeline is None or (len(timeline.entries) < count and not timeline.complete):
        return [member(row["created_at"], row["id"]) for row in pulled(run, user_id, after, count)]
    metrics.TIMELINE_READS.labels(source).inc()
    if timeline.merged:  # followees with too many followers to push to: their posts are read now
        rows = run("page_by_authors_latest", author_ids=timeline.merged, limit=count, **_after(after))
        return sorted({*timeline.entries, *(member(row["created_at"], row["id"]) for row in rows)}, reverse=True)[:count]
    return timeline.entries


def forget(ctx: Context, user_id: int) -> None:
    """Deletes a timeline found to name a post that PostgreSQL lacks, or whose id another post now
    has (a commit lost in a fail-over, its id handed out again): the next read builds it afresh."""
    ctx.redis.before_answer(ctx.timelines.drops([user_id]))


def _build(ctx: Context, run, build: Build, cursor: str | None, count: int) -> Slice:
    # A timeline is built only for a user that exists: then a timeline found later shows it exists
    # (users are never deleted), and reading one needs no lookup.
    existing_user(run, build.user_id)
    followees = run("timeline_followees", user_id=build.user_id, fanout_max=ctx.settings.fanout_max_followers)
    pushed = [row["followee_id"] for row in followees if not row["merged_at_read"]]
    merged = [row["followee_id"] for row in followees if row["merged_at_read"]]
    size = ctx.timelines.build_size
    rows = run("page_by_authors_latest", author_ids=pushed, limit=size, **_after(None)) if pushed else []
    entries = [member(row["created_at"], row["id"]) for row in rows]
    ctx.timelines.store(build, entries, [row["followee_id"] for row in followees], merged)
    after_cursor = [entry for entry in entries if cursor is None or entry < cursor]
    return Slice(after_cursor[:count], len(entries) < size, merged)


def pulled(run, user_id: int, after: tuple[datetime, int] | None, count: int) -> list[dict]:
    """The page from PostgreSQL alone (page_followed_latest): each post's id and created_at."""
    metrics.TIMELINE_READS.labels("pulled").inc()
    filters = {"author_id": None, "pattern": None, "since": None, "until": None, "include_replies": False,
               "after_score": None, "floor_created_at": None, "floor_id": None}
    return run("page_followed_latest", followed_by=user_id, limit=count, **filters, **_after(after))


def _after(after: tuple[datetime, int] | None) -> dict:
    created_at, last_id = after or (None, None)
    return {"after_created_at": created_at, "after_id": last_id}
