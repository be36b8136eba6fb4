"""Users and follows."""

from __future__ import annotations

import logging

import orjson

from posterr import logs, passwords, presenters, validation
from posterr.context import Context
from posterr.errors import Conflict, DuplicateRow, NotFound, ValidationFailed
from posterr.keys import user_key
from posterr.services.acting import Actor, check_still_writes, validated_after_token
from posterr.services.idempotency import Record, Recorded, unkept
from posterr.services.pagination import NEWEST_FIRST_START, Keyset, Page, page_of

log = logging.getLogger("posterr.users")
USERS = Keyset("users", ("id",))
FOLLOWERS = Keyset("followers", ("followed_at", "id"))
FOLLOWING = Keyset("following", ("followed_at", "id"))


def create_user(ctx: Context, username: object, password: object = None, *, record: Record = unkept) -> Recorded:
    """A new account; its password is required unless in legacy mode (where an account without one
    gets no token until an operator sets one)."""
    name = validation.username(username)
    secret = None if password is None and ctx.legacy else passwords.new_password(password)
    password_hash = passwords.hashed(secret) if secret is not None else None
    try:
        with ctx.db.transaction() as run:
            recorded = record(run, presenters.user(run("insert_user", username=name, password_hash=password_hash)))
    except DuplicateRow:
        raise Conflict(f"the username {name!r} is taken") from None
    logs.event(log, "user_created", user_id=recorded.created["id"], username=name)
    return recorded


def list_users(ctx: Context, *, limit: str | None, cursor: str | None, username: str | None) -> Page:
    size = validation.limit(limit)
    if username is not None:
        validation.username(username)
    after = USERS.after(ctx.cursors, cursor)
    rows = ctx.db.read(lambda run: run("users_page", username=username or None, limit=size + 1, **after))
    return page_of(rows, size, ctx.cursors, USERS, presenters.user)


def get_user(ctx: Context, user_id: int, viewer_id: str | None = None) -> bytes:
    """A profile, as JSON; without a viewer it is the same for everyone, so it is cached."""
    viewer = validation.query_id("viewer_id", viewer_id)
    if viewer is None:
        return ctx.cache.fetch(user_key(user_id), "json", ctx.settings.object_cache_ttl, lambda: orjson.dumps(
            presenters.user(ctx.db.read_primary(lambda run: existing_user(run, user_id)))))

    def load(run) -> dict:
        row = existing_user(run, user_id)
        existing_user(run, viewer, "viewer")
        following = run("follow_exists", follower_id=viewer, followee_id=user_id)["following"]
        return presenters.user(row, followed_by_viewer=following)

    return orjson.dumps(ctx.db.read(load))


def follow(ctx: Context, follower: Actor, followee_id: int) -> None:
    validated_after_token(ctx.db, follower, lambda: _not_self(follower.user_id, followee_id))
    _change_follow(ctx, "insert_follow", follower, followee_id)


def _not_self(follower_id: int, followee_id: int) -> None:
    if follower_id == followee_id:
        raise ValidationFailed.of("target_id", "a user cannot follow themselves")


def unfollow(ctx: Context, follower: Actor, followee_id: int) -> None:
    """Idempotent: unfollowing yourself is a no-op, as there is nothing to remove."""
    _change_follow(ctx, "delete_follow", follower, followee_id)


def _change_follow(ctx: Context, query: str, follower: Actor, followee_id: int) -> None:
    fanout_max = ctx.settings.fanout_max_followers
    follower_id = follower.user_id
    with ctx.db.transaction() as run:
        check_still_writes(run, follower)
        followers = {row["id"]: row["followers_count"]
                     for row in run("lock_users", follower_id=follower_id, followee_id=followee_id)}
        for user_id in (follower_id, followee_id):
            if user_id not in followers:
                raise NotFound(f"there is no user {user_id}")
        changed = run(query, follower_id=follower_id, followee_id=followee_id)
        # The followee's posts stop being pushed from here: every timeline built while they were
        # pushed lacks their next posts (posterr/home_timelines.py, rule 6). A retry that finds the
        # follow made (its first attempt may have died before its cache work) judges by the count.
        crossed = query == "insert_follow" and fanout_max + 1 == (
            changed["followee_followers"] if changed["changed"] else followers[followee_id])
        readers = [row["follower_id"] for row in run("fanout_followers", user_id=followee_id, limit=fanout_max + 1)
                   ] if crossed else [follower_id]
    # Done for a request that changed nothing too: it may be the retry of one that committed and died
    # before this (PUT and DELETE are retried as they are; there is no replay to redo it).
    ctx.redis.before_answer(ctx.cache.deletes(user_key(follower_id), user_key(followee_id)),
                            ctx.timelines.drops(readers))


def followers(ctx: Context, user_id: int, *, limit: str | None, cursor: str | None) -> Page:
    return _follow_list(ctx, FOLLOWERS, user_id, limit, cursor)


def following(ctx: Context, user_id: int, *, limit: str | None, cursor: str | None) -> Page:
    return _follow_list(ctx, FOLLOWING, user_id, limit, cursor)


def _follow_list(ctx: Context, keyset: Keyset, user_id: int, limit: str | None, cursor: str | None) -> Page:
    size = validation.limit(limit)
    before = keyset.before(ctx.cursors, cursor, NEWEST_FIRST_START)

    def load(run) -> list[dict]:
        existing_user(run, user_id)
        return run("follow_list_page", list=keyset.kind, user_id=user_id, limit=size + 1, **before)

    return page_of(ctx.db.read(load), size, ctx.cursors, keyset, presenters.user)


def existing_user(run, user_id: int, role: str = "user") -> dict:
    row = run("user_by_id", id=user_id)
    if row is None:
        raise NotFound(f"there is no {role} {user_id}")
    return row
