"""The HTTP edge around every route, one job per module: the request id (`request_id`), who the
client is (`clients`), CORS (`cors`), the per-client rate limit (`rate_limit`), errors as
problem+json (`problems`), and the plugin and error handlers that apply them all, log each request
and count it (`plugin`), the state a request sets and resets (`request_scope`). What routes use to read requests and write answers is `posterr.http`."""

from __future__ import annotations

import bottle

from posterr.context import Context


def current_context() -> Context:
    """The Context of the app serving the current request (the app factory puts it in the app's
    config): the one way the edge reaches the settings and the servers."""
    return bottle.request.app.config["posterr.context"]
