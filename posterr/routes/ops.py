"""Operations: liveness and readiness."""

from __future__ import annotations

import bottle

from posterr import http
from posterr.context import Context
from posterr.services import health


def install(app: bottle.Bottle, ctx: Context) -> None:
    @app.get("/healthz")
    def healthz():
        return http.json_response({"status": "ok"})

    @app.get("/readyz")
    def readyz():
        return http.json_response(health.readiness(ctx))
