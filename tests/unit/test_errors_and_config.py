"""The error edge without servers: a bug becomes a 500 problem without a stack trace."""

from __future__ import annotations

import io
from types import SimpleNamespace

import bottle
import orjson
import pytest

from posterr import http
from posterr.config import Settings
from posterr.errors import ConfigError, Conflict
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
    app.config["posterr.cors_origins"] = ("https://posterr.example",)
    app.config["posterr.trusted_proxies"] = ()
    # The plugin reads the rate limiter, pool statistics and replicas from the context: none here.
    app.config["posterr.context"] = SimpleNamespace(rate_limit=None, db=SimpleNamespace(
        pool=SimpleNamespace(get_stats=dict), replicas=None))
    app.install(http.EdgePlugin(Watchdog(timeout=30)))
    http.install_error_handlers(app)

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


@pytest.mark.parametrize("env, message", [
    ({}, "DATABASE_URL and REDIS_URL not set"),
    ({"DATABASE_URL": "postgres://x"}, "REDIS_URL not set"),
    ({"DATABASE_URL": "x", "REDIS_URL": "y", "POSTERR_DAILY_POST_LIMIT": "five"}, "not a whole number"),
    ({"DATABASE_URL": "x", "REDIS_URL": "y", "POSTERR_DAILY_POST_LIMIT": "0"}, "at least 1"),
    ({"DATABASE_URL": "x", "REDIS_URL": "y", "POSTERR_REDIS_TIMEOUT": "-1"}, "positive"),
    ({"DATABASE_URL": "x", "REDIS_URL": "y", "POSTERR_TIMELINE_SIZE": "0"}, "POSTERR_TIMELINE_SIZE=0 must be at least 1"),
    ({"DATABASE_URL": "x", "REDIS_URL": "y", "POSTERR_FANOUT_MAX_FOLLOWERS": "-1"}, "at least 0"),
])
def test_start_up_errors_name_the_missing_piece(env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_settings_defaults():
    settings = Settings.from_env({"DATABASE_URL": "x", "REDIS_URL": "y", "POSTERR_CORS_ORIGINS": "a, b"})
    assert settings.daily_post_limit == 5 and settings.cors_origins == ("a", "b")
    assert (settings.timeline_size, settings.timeline_ttl, settings.fanout_max_followers) == (800, 900, 1000)
