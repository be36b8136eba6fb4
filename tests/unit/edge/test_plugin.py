"""The edge plugin (posterr/edge/plugin.py) without servers: a bug becomes a 500 problem without a
stack trace, a domain error its own status, and CORS grants only the listed origins; and the
slow_request line: which requests are slow, and what the line says of their queries (how a Session
times them: tests/unit/test_db.py)."""

from __future__ import annotations

import io
from types import SimpleNamespace

import bottle
import orjson
import pytest

from posterr.edge.plugin import EdgePlugin, database_time, install_error_handlers, is_slow
from posterr.errors import Conflict
from posterr.watchdog import Watchdog


def call(app: bottle.Bottle, path: str, **headers: str) -> tuple[str, dict, dict]:
    captured = {}

    def start_response(status, headers, exc_info=None):
        captured["status"], captured["headers"] = status, {k.lower(): v for k, v in headers}

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "SERVER_NAME": "t", "SERVER_PORT": "80",
               "wsgi.input": io.BytesIO(), "wsgi.url_scheme": "http", "wsgi.errors": io.StringIO(),
               **{"HTTP_" + name.upper(): value for name, value in headers.items()}}
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


def test_a_listed_origin_gets_a_cors_grant_for_itself(app):
    _, headers, _ = call(app, "/api/conflict", origin="https://posterr.example")
    assert headers["access-control-allow-origin"] == "https://posterr.example"
    assert headers["vary"] == "Origin"


@pytest.mark.parametrize("origin", ["https://evil.example", "https://posterr.example.evil.example",
                                    "http://posterr.example", "null"])
def test_an_unlisted_origin_gets_no_cors_grant(app, origin):
    _, headers, _ = call(app, "/api/conflict", origin=origin)
    assert "access-control-allow-origin" not in headers


# --- the slow_request line ------------------------------------------------------------------------


@pytest.mark.parametrize("elapsed, slow_request_ms, slow", [
    (0.0995, 100, False),
    (0.1005, 100, True),
    (0.002, 1, True),
    (60.0, None, False),  # off
])
def test_a_request_is_slow_when_over_the_threshold(elapsed, slow_request_ms, slow):
    assert is_slow(elapsed, slow_request_ms) is slow


def test_database_time_lists_each_query_in_order_and_their_sum():
    times = [("insert_post", 0.1523), ("post_by_id", 0.0004), ("post_by_id", 0.00041)]
    assert database_time(times) == {
        "queries": [{"name": "insert_post", "ms": 152.3}, {"name": "post_by_id", "ms": 0.4},
                    {"name": "post_by_id", "ms": 0.41}],
        "db_ms": 153.11}


def test_database_time_of_a_request_without_queries():
    assert database_time([]) == {"queries": [], "db_ms": 0}
