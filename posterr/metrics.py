"""Prometheus metrics. Under gunicorn every worker writes its samples to PROMETHEUS_MULTIPROC_DIR
(set by posterr/gunicorn_conf.py) and /metrics adds them up; elsewhere the process's own registry."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from posterr import config

# Read once, like prometheus_client, which chose its mode from the same variable when imported
# (above); checked before the first metric below writes its samples there.
_SAMPLES_DIR = config.metrics_dir()

REQUESTS = Counter("posterr_http_requests_total", "HTTP requests by route template and status",
                   ["method", "route", "status"])
LATENCY = Histogram("posterr_http_request_duration_seconds", "Time to answer, by route template",
                    ["method", "route"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
CACHE = Counter("posterr_cache_lookups_total", "Document cache lookups by key family (feeds, posts, users) "
                "and result (hit, miss)", ["family", "result"])
TIMELINE_READS = Counter("posterr_timeline_reads_total", "Pages of the Following feed (newest first) by "
                         "source: hit (home timeline), built (timeline rebuilt from PostgreSQL), "
                         "pulled (PostgreSQL only: Redis unavailable, or past the timeline's end)", ["source"])
CACHE_INVALIDATION_FAILURES = Counter("posterr_cache_invalidation_failures_total",
                                      "Writes answered before their cached documents could be deleted")
REQUEST_TIMEOUTS = Counter("posterr_request_timeouts_total",
                           "Requests that ran past POSTERR_REQUEST_TIMEOUT (their worker was replaced)")
UNCONFIRMED_COMMITS = Counter("posterr_unconfirmed_commits_total",
                              "Commits that succeeded after their deadline's cancel (their wait for a "
                              "synchronous standby may have been cut short): answered 503")
POOL = Gauge("posterr_db_pool_connections", "PostgreSQL pool connections per state (all workers)",
             ["state"], multiprocess_mode="livesum")
DB_READS = Counter("posterr_db_reads_total", "Reads that a replica may serve, by the server that served "
                   "them (replica, or primary: no replica fit the client, or one failed)", ["target"])
REPLICA_LAG = Gauge("posterr_replica_lag_seconds", "How far behind the primary each replica may be "
                    "(+Inf while unknown or unreachable)", ["replica"], multiprocess_mode="livemax")
REPLICA_SERVING = Gauge("posterr_replica_serving", "1 while the replica is within POSTERR_REPLICA_MAX_LAG "
                        "and reachable (it serves reads), else 0", ["replica"], multiprocess_mode="livemin")
REFUSALS = Counter("posterr_limit_refusals_total", "Requests refused by a limit", ["limit"])

CONTENT_TYPE = CONTENT_TYPE_LATEST
_next_pool_sample = 0.0


def render() -> bytes:
    if _SAMPLES_DIR:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=_SAMPLES_DIR)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


# Each (method, route, status)'s samples, looked up once per process: `labels()` takes a lock and
# builds its key on every call.
_request_samples: dict[tuple[str, str, int], tuple] = {}


# Every label comes from a closed set: gunicorn takes any upper-case token as a method, and each new
# value would be a new series in every worker's file until a restart (issue 37, finding 1). Routes
# are the app's templates or "(unmatched)"; statuses are the app's own.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT"})
OTHER_METHOD = "OTHER"


def observe_request(method: str, route: str, status: int, elapsed: float) -> None:
    """One answered request: its count and its latency (a method HTTP does not define counts as OTHER)."""
    if method not in METHODS:
        method = OTHER_METHOD
    samples = _request_samples.get((method, route, status))
    if samples is None:
        samples = _request_samples[method, route, status] = (REQUESTS.labels(method, route, str(status)),
                                                             LATENCY.labels(method, route))
    samples[0].inc()
    samples[1].observe(elapsed)


def observe_pool(stats_of: Callable[[], dict]) -> None:
    """Pool gauges from stats_of() (psycopg_pool's statistics), sampled at most once a second per
    process (not worth the pool's lock on every request)."""
    global _next_pool_sample
    now = time.monotonic()
    if now < _next_pool_sample:
        return
    _next_pool_sample = now + 1.0
    stats = stats_of()
    POOL.labels("size").set(stats.get("pool_size", 0))
    POOL.labels("idle").set(stats.get("pool_available", 0))
    POOL.labels("waiting").set(stats.get("requests_waiting", 0))


def observe_replica(name: str, lag: float, serving: bool) -> None:
    REPLICA_LAG.labels(name).set(lag)
    REPLICA_SERVING.labels(name).set(1 if serving else 0)
