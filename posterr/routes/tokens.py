"""/api/tokens: log in for a token, list your tokens, revoke one."""

from __future__ import annotations

import bottle

from posterr import http
from posterr.context import Context
from posterr.edge.clients import client_address
from posterr.services import tokens


def install(app: bottle.Bottle, ctx: Context) -> None:
    @app.post("/api/tokens")
    def log_in():
        # No Idempotency-Key here: the answer holds a secret, which is never stored.
        return http.json_response(tokens.log_in(ctx, http.json_body(), client_address()), 201,
                                  {"Cache-Control": "no-store"})

    @app.get("/api/tokens")
    def list_tokens():
        params = http.query_params("limit", "cursor")
        return http.page_response(tokens.list_tokens(ctx, http.caller(), **params), params)

    @app.delete("/api/tokens/<token_id>", token_rechecked=True)
    def revoke(token_id):
        tokens.revoke(ctx, http.caller(), http.path_id(token_id, "token"))
        return http.no_content()
