"""Operations: liveness, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

from pathlib import Path

import bottle

from posterr import http, metrics
from posterr.context import Context
from posterr.services import health

OPENAPI_FILE = Path(__file__).resolve().parent.parent / "openapi.json"


def install(app: bottle.Bottle, ctx: Context) -> None:
    openapi = OPENAPI_FILE.read_bytes()  # served as committed, read once

    @app.get("/healthz")
    def healthz():
        return http.json_response({"status": "ok"})

    @app.get("/readyz")
    def readyz():
        return http.json_response(health.readiness(ctx))

    @app.get("/metrics")
    def metrics_text():
        return bottle.HTTPResponse(metrics.render(), headers={"Content-Type": metrics.CONTENT_TYPE})

    @app.get("/api/openapi.json")
    def openapi_document():
        return http.json_response(openapi)
