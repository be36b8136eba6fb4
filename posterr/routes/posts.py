"""/api/posts: create (post, repost, quote, reply), read one, the feed and search, and threads."""

from __future__ import annotations

import bottle

from posterr import http
from posterr.context import Context
from posterr.services import idempotency, posts, threads

FEED_PARAMS = ("author_id", "followed_by", "keyword", "start_date", "end_date", "include_replies", "sort_by", "limit",
               "cursor")


def install(app: bottle.Bottle, ctx: Context) -> None:
    def created_post(body: dict, **what) -> bottle.HTTPResponse:
        """201 for posts.create_post (what it creates: content, repost_id, reply_to_id), once per
        Idempotency-Key."""
        author = http.actor(ctx, body.get("user_id"))
        attempt = http.attempt(body, "/api/posts/", author)
        return http.created(idempotency.create_once(ctx, attempt, lambda record: posts.create_post(
            ctx, author, record=record, **what), lambda post: posts.deliver_again(ctx, post)))

    @app.post("/api/posts", token_rechecked=True)
    def create_post():
        body = http.json_body()
        return created_post(body, content=body.get("content"), repost_id=body.get("repost_id"),
                            reply_to_id=body.get("reply_to_id"))

    @app.post("/api/posts/<post_id>/repost", token_rechecked=True)
    def repost(post_id):
        target_id = http.path_id(post_id, "post")
        return created_post(http.json_body(), repost_id=target_id)

    @app.post("/api/posts/<post_id>/replies", token_rechecked=True)
    def reply(post_id):
        target_id = http.path_id(post_id, "post")
        body = http.json_body()
        return created_post(body, content=body.get("content"), reply_to_id=target_id)

    @app.get("/api/posts/<post_id>/replies")
    def replies(post_id):
        target_id = http.path_id(post_id, "post")
        params = http.query_params("limit", "cursor")
        return http.page_response(threads.list_replies(ctx, target_id, params), params)

    @app.get("/api/posts/<post_id>/context")
    def context(post_id):
        return http.json_response(threads.thread_context(ctx, http.path_id(post_id, "post")))

    @app.get("/api/posts")
    def feed():
        params = http.query_params(*FEED_PARAMS)
        return http.page_response(posts.list_posts(ctx, params), params)

    @app.get("/api/posts/search")
    def search():
        params = http.query_params(*FEED_PARAMS)
        return http.page_response(posts.list_posts(ctx, params, keyword_required=True), params)

    @app.get("/api/posts/<post_id>")
    def get_post(post_id):
        return http.json_response(posts.get_post(ctx, http.path_id(post_id, "post")))
