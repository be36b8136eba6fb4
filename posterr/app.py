"""The app factory: settings, the pieces a service needs, routes and error handling, wired once."""

from __future__ import annotations

import logging
from functools import partial

import bottle

from posterr import logs
from posterr.config import DEV_SECRET, Settings, check_secret_key
from posterr.context import Context
from posterr.cursors import CursorCodec
from posterr.data_tier import DataTier
from posterr.db import Database, load_queries
from posterr.document_cache import DocumentCache
from posterr.edge.cors import preflight
from posterr.edge.plugin import EdgePlugin, install_error_handlers
from posterr.home_timelines import HomeTimelines
from posterr.limits import ClientRateLimit, DailyQuota
from posterr.login_limit import LoginAttempts
from posterr.recent_tokens import RecentTokens
from posterr.redis_client import Redis
from posterr.replicas import Replica, Replicas
from posterr.routes import ops, posts, tokens, users
from posterr.segment_sealer import SegmentSealer
from posterr.services.search import seal_segments
from posterr.services.tokens import write_uses
from posterr.token_uses import TokenUses
from posterr.watchdog import Watchdog

log = logging.getLogger("posterr")


def build_context(settings: Settings) -> Context:
    redis = Redis(settings.redis_url, timeout=settings.redis_timeout, retry_after=settings.redis_retry_after,
                  invalidation_deadline=settings.cache_invalidation_deadline,
                  reconnect_interval=settings.redis_reconnect_interval)
    queries = load_queries()

    def database(url: str, timeout: float) -> Database:
        return Database(url, queries, min_size=settings.pool_min_size, max_size=settings.pool_max_size,
                        timeout=timeout, statement_timeout_ms=settings.statement_timeout_ms)

    # A replica that cannot give a connection within a second is left for the primary.
    replicas = Replicas(settings.database_url,
                        [Replica(url, database(url, min(settings.pool_timeout, 1.0))) for url in settings.replica_urls],
                        queries, redis, max_lag=settings.replica_max_lag,
                        check_interval=settings.replica_check_interval) if settings.replica_urls else None
    db = DataTier(database(settings.database_url, settings.pool_timeout), replicas)
    return Context(
        settings=settings,
        db=db,
        redis=redis,
        cache=DocumentCache(redis),
        timelines=HomeTimelines(redis, size=settings.timeline_size, ttl=settings.timeline_ttl),
        quota=DailyQuota(redis, settings.daily_post_limit),
        rate_limit=ClientRateLimit(redis, *settings.rate_limit) if settings.rate_limit else None,
        cursors=CursorCodec(settings.secret_key),
        login_attempts=LoginAttempts(redis),
        recent_tokens=RecentTokens(),
        token_uses=TokenUses(partial(write_uses, db)),
        segment_sealer=SegmentSealer(partial(seal_segments, db)),
    )


def create_app(settings: Settings | None = None, *, start: bool = False) -> bottle.Bottle:
    """A Bottle app. Its pool opens on `app.config['posterr.context'].start()` (gunicorn's
    post_worker_init does it after the fork, and starts `app.config['posterr.watchdog']`), or at
    once with start=True."""
    settings = settings or Settings.from_env()
    check_secret_key(settings)
    logs.configure(settings.log_level)
    if settings.secret_key == DEV_SECRET:
        log.warning("POSTERR_SECRET_KEY is not set: cursors are signed with the development key")
    if settings.auth_mode == "legacy":
        log.warning("POSTERR_AUTH=legacy: a request without a token acts for the user it names, so anyone can "
                    "act for anyone; use it only for the previous frontend, which has no login")
    ctx = build_context(settings)
    app = bottle.Bottle()
    app.config["posterr.context"] = ctx
    app.config["posterr.watchdog"] = watchdog = Watchdog(settings.request_timeout)
    app.install(EdgePlugin(watchdog))
    install_error_handlers(app)
    ops.install(app, ctx)
    users.install(app, ctx)
    posts.install(app, ctx)
    tokens.install(app, ctx)
    # CORS preflight on every /api route, and only there: unknown paths stay 404, not 405.
    for rule in sorted({route.rule for route in app.routes if route.rule.startswith("/api/")}):
        app.route(rule, "OPTIONS", preflight)
    if start:
        ctx.start()
    return app
