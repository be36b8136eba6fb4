"""Threads: a post's direct replies, and its conversation (what it answers, and every reply under it)."""

from __future__ import annotations

from posterr import presenters, validation
from posterr.context import Context
from posterr.errors import NotFound
from posterr.services.pagination import Keyset, Page, page_of
from posterr.services.posts import posts_in_order

# The API's caps: the nearest ancestors (then the root is left out), and the first descendants
# in depth-first order.
MAX_ANCESTORS = 40
MAX_DESCENDANTS = 200
REPLIES = Keyset("replies", ("created_at", "id"))  # oldest first


def list_replies(ctx: Context, post_id: int, params: dict[str, str | None]) -> Page:
    """The direct replies to post_id, oldest first (created_at, then id), one keyset page."""
    size = validation.limit(params.get("limit"))
    after = REPLIES.after(ctx.cursors, params.get("cursor"))

    def load(run) -> Page:
        ids = [row["id"] for row in run("replies_page", post_id=post_id, limit=size + 1, **after)]
        if not ids and not run("post_exists", id=post_id)["found"]:  # a post with replies exists
            raise NotFound(f"there is no post {post_id}")
        return page_of(posts_in_order(run, ids), size, ctx.cursors, REPLIES, presenters.post)

    return ctx.db.read(load)


def thread_context(ctx: Context, post_id: int) -> dict[str, list[dict]]:
    """What post_id answers, root first (at most the nearest MAX_ANCESTORS), and the replies under it
    in depth-first order (at most MAX_DESCENDANTS). A repost answers nothing and has no replies."""
    def load(run) -> dict[str, list[dict]]:
        chain = [row["id"] for row in run("thread_ancestors", post_id=post_id, limit=MAX_ANCESTORS)]
        if not chain:  # the chain starts with the post itself
            raise NotFound(f"there is no post {post_id}")
        ancestors = chain[:0:-1]
        descendants = [row["id"] for row in run("thread_descendants", post_id=post_id, limit=MAX_DESCENDANTS)]
        rows = posts_in_order(run, ancestors + descendants)
        return {"ancestors": [presenters.post(row) for row in rows[:len(ancestors)]],
                "descendants": [presenters.post(row) for row in rows[len(ancestors):]]}

    return ctx.db.read(load)

