"""The edge plugin's errors without servers (posterr/edge/): a bug becomes a 500 problem without a
stack trace, a domain error its own status, and CORS grants only the listed origins."""

from __future__ import annotations

import io
from types import SimpleNamespace

import bottle
import orjson
import pytest

from posterr.edge.plugin import EdgePlugin, install_error_handlers
from posterr.errors import Conflict
from posterr.watchdog import Watchdog


def call(app: bottle.Bottle, path: str) -> tuple[str, dict, dict]:
    captured = {}

    def start_response(status, headers, exc_info=None):
        captured["status"], captured["headers"] = status, {k.lower(): v for k, v in headers}

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "SERVER_NAME": "t", "SERVER_PORT": "80",
               "wsgi.input": io.BytesIO(), "wsgi.url_scheme": "http", "wsgi.errors": io.StringIO()}
    body = b"".join(app(environ, start_response))
    return captured["status"], captured["headers"], orjson.loads(body)


@pytest.fixture
def app():
    app = bottle.Bottle()
    # The plugin reads the settings, rate limiter, pool statistics and replicas from the context.
    app.config["posterr.context"] = SimpleNamespace(
        rate_limit=None, db=SimpleNamespace(pool_stats=dict, replicas=None),
        settings=SimpleNamespace(slow_request_ms=None, cors_origins=("https://posterr.example",), trusted_proxies=()))
    app.install(EdgePlugin(Watchdog(timeout=30)))
    install_error_handlers(app)

    @app.get("/api/bug")
    def bug():
        raise RuntimeError("secret internals")

    @app.get("/api/conflict")
    def conflict():
        raise Conflict("already there")

    return app


def test_a_bug_is_a_500_problem_without_internals(app):
    status, headers, body = call(app, "/api/bug")
    assert status.startswith("500")
    assert headers["content-type"] == "application/problem+json"
    assert body["status"] == 500 and body["error"] == body["detail"]
    assert "secret" not in orjson.dumps(body).decode() and "Traceback" not in orjson.dumps(body).decode()
    assert headers["x-request-id"]


def test_domain_errors_carry_their_status(app):
    status, _, body = call(app, "/api/conflict")
    assert status.startswith("409")
    assert body == {"type": "/problems/conflict", "title": "Conflict", "status": 409,
                    "detail": "already there", "error": "already there"}


def test_unlisted_origin_gets_no_cors_grant(app):
    _, headers, _ = call(app, "/api/conflict")
    assert "access-control-allow-origin" not in headers
