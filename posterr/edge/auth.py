"""Who calls (contract v2.0): the request's bearer token, found in its Authorization header (a token
anywhere else is refused) and looked up (posterr/services/tokens.py), so that every /api request
that sends one is checked, in both modes, and the rate limit counts the request against its caller.

The contract orders a malformed body (400) before any check of the token, so a POST's caller is
found once its body has been read (posterr/http.py, json_body), every other request's before its
route runs. A route declared with `token_rechecked=True` is a write whose service checks the token
again in its own transaction: a lookup minutes old then says enough (posterr/recent_tokens.py)."""

from __future__ import annotations

import bottle

from posterr import credentials
from posterr.context import Context
from posterr.edge.clients import client_address
from posterr.edge.request_scope import RequestScope
from posterr.errors import ApiError
from posterr.services import tokens
from posterr.services.acting import ANONYMOUS, Caller

FOUND_AFTER_BODY = "POST"
RECHECKED = "token_rechecked"  # the route option that says so


class RequestCaller:
    """The current request's caller, found at the first call and kept (routes reach it through
    posterr.http.caller); finding it counts the request in the rate limit."""

    def __init__(self, ctx: Context, route: bottle.Route, scope: RequestScope):
        self.ctx, self.route_rule, self.scope = ctx, route.rule, scope
        self.rechecked = bool(route.config.get(RECHECKED))
        self._caller: Caller | None = None
        self._counted = False

    def __call__(self) -> Caller:
        if self._caller is None:
            try:
                self._caller = self._find()
            except ApiError:
                self.count_if_not_yet()  # a refused token: counted against the address
                raise
            self._count(self._caller.rate_limit_client(client_address()))
        return self._caller

    def count_if_not_yet(self) -> None:
        """Counts a request that ended before its caller was found against its address."""
        if not self._counted:
            self._count(client_address())

    def _count(self, client: str) -> None:
        self._counted = True
        self.scope.count_rate(self.ctx, self.route_rule, client)

    def _find(self) -> Caller:
        request = bottle.request
        if not self.route_rule.startswith("/api") or request.method == "OPTIONS":
            return ANONYMOUS  # operations endpoints and preflights act for nobody
        credentials.refuse_token_outside_header(request.query.allitems(), "query string")
        token = credentials.bearer_token(request.environ.get("HTTP_AUTHORIZATION"))
        if token is None:
            return ANONYMOUS
        caller = tokens.caller_of(self.ctx, token, rechecked=self.rechecked)
        request.environ["posterr.user_id"] = caller.user_id  # for the access log
        return caller
