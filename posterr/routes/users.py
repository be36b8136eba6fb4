"""/api/users: create, list, read, follow and unfollow, followers and following."""

from __future__ import annotations

import bottle

from posterr import http
from posterr.context import Context
from posterr.services import idempotency, users


def install(app: bottle.Bottle, ctx: Context) -> None:
    @app.post("/api/users")
    def create_user():
        body = http.json_body()
        attempt = http.attempt(body, "/api/users/")
        return http.created(idempotency.create_once(ctx, attempt, lambda record: users.create_user(
            ctx, body.get("username"), body.get("password"), record=record)))

    @app.get("/api/users")
    def list_users():
        params = http.query_params("limit", "cursor", "username")
        return http.page_response(users.list_users(ctx, **params), params)

    @app.get("/api/users/<user_id>")
    def get_user(user_id):
        viewer_id = http.query_params("viewer_id")["viewer_id"]
        return http.json_response(users.get_user(ctx, http.path_id(user_id, "user"), viewer_id))

    @app.put("/api/users/<user_id>/following/<target_id>", token_rechecked=True)
    def follow(user_id, target_id):
        follower = http.actor(ctx, http.path_id(user_id, "user"), "id")
        users.follow(ctx, follower, http.path_id(target_id, "user"))
        return http.no_content()

    @app.delete("/api/users/<user_id>/following/<target_id>", token_rechecked=True)
    def unfollow(user_id, target_id):
        follower = http.actor(ctx, http.path_id(user_id, "user"), "id")
        users.unfollow(ctx, follower, http.path_id(target_id, "user"))
        return http.no_content()

    @app.get("/api/users/<user_id>/followers")
    def followers(user_id):
        params = http.query_params("limit", "cursor")
        return http.page_response(users.followers(ctx, http.path_id(user_id, "user"), **params), params)

    @app.get("/api/users/<user_id>/following")
    def following(user_id):
        params = http.query_params("limit", "cursor")
        return http.page_response(users.following(ctx, http.path_id(user_id, "user"), **params), params)
