"""How the app connects to Redis: a standalone server or a cluster, and the connections themselves
(posterr/redis_client.py, mechanism 3). Each connection reports its failures, those redis-py
retries on its own and callers never see included, and each process opens a new connection to each
server at least once per reconnect interval while it uses it (and at every use after one was
refused): a Redis that refuses new connections while the established ones go on (a Kubernetes
Service whose endpoint went away keeps the flows it had; a proxy whose listener died) is then seen
by every busy process within that interval, not only by those whose connections happened to break."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from typing import Any

import redis
from redis.cluster import RedisCluster
from redis.connection import parse_url

Server = tuple[str, int] | str  # (host, port), or a Unix socket's path
FailureReport = Callable[[Any, BaseException], None]  # (the connection, what it raised)


def connect(url: str, **options: Any) -> redis.Redis | RedisCluster:
    """A client for REDIS_URL as it is, a standalone server or a cluster (for the CLI and tests)."""
    return RedisCluster.from_url(url, **options) if is_cluster(url, 2.0) else redis.Redis.from_url(url, **options)


def is_cluster(url: str, timeout: float) -> bool | None:
    """Whether REDIS_URL names a node of a Redis Cluster (`INFO cluster`); None when it cannot be asked."""
    try:
        return cluster_enabled(url, timeout)
    except redis.RedisError:
        return None


def cluster_enabled(url: str, timeout: float) -> bool:
    """As is_cluster; raises what Redis raises."""
    probe = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return bool(probe.info("cluster").get("cluster_enabled"))
    finally:
        probe.close()


def server_of(connection: Any) -> Server:
    return getattr(connection, "path", None) or (connection.host, connection.port)


def connection_class(url: str, report: FailureReport, interval: float) -> type:
    """The redis-py connection class for `url`: report(connection, error) whenever one fails to
    connect, send or read, or is found closed; and when this process has opened no connection to a
    server for `interval` seconds, or its last attempt failed, the next connection its pool hands out
    there is replaced by a new one (redis-py's pools connect every connection they hand out, a no-op
    for an open one)."""
    base = parse_url(url).get("connection_class", redis.Connection)
    opened_at: dict[Server, float] = {}  # per server: this process's last new connection (or attempt)

    def reported(method: Callable) -> Callable:
        @functools.wraps(method)
        def call(connection: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(connection, *args, **kwargs)
            except (redis.ConnectionError, redis.TimeoutError) as error:
                report(connection, error)
                raise
        return call

    can_read_reported = reported(base.can_read)
    connect_reported = reported(base.connect)

    @functools.wraps(base.can_read)
    def can_read_broken(connection: Any, *args: Any, **kwargs: Any) -> bool:
        # A pool asks this of each connection it hands out: True there means the server closed it
        # (or left a reply unread), and the pool replaces it on its own, unseen by callers.
        readable = can_read_reported(connection, *args, **kwargs)
        if readable:
            report(connection, redis.ConnectionError("the connection was closed by the other end"))
        return readable

    @functools.wraps(base.connect)
    def connect_probing(connection: Any) -> None:
        server, now = server_of(connection), time.monotonic()
        if connection._sock is not None and now - opened_at.get(server, -math.inf) > interval:
            try:
                can_read_broken(connection)  # a cut seen now is reported, as it would be in use
            except (redis.ConnectionError, redis.TimeoutError):
                pass
            connection.disconnect()
        if connection._sock is None:
            opened_at[server] = now
            try:
                connect_reported(connection)
            except (redis.ConnectionError, redis.TimeoutError):
                opened_at.pop(server, None)  # so that the next use tries a new connection too
                raise

    methods = {name: reported(getattr(base, name)) for name in ("send_packed_command", "read_response")}
    return type(f"Probing{base.__name__}", (base,), {**methods, "connect": connect_probing, "can_read": can_read_broken})


class Refusals:
    """The servers that refused this process a new connection, each since when (until it accepts
    one again), and how long a write they refused must wait (mechanism 3)."""

    def __init__(self, interval: float):
        self.interval = interval
        self._since: dict[Server, float] = {}

    def seen(self, server: Server) -> None:
        self._since.setdefault(server, time.monotonic())

    def ended(self, server: Server) -> None:
        self._since.pop(server, None)

    def seen_by_all_at(self) -> float:
        """When (time.monotonic) every busy process has tried a new connection since these refusals
        began, and been refused too; 0: none."""
        return max(tuple(self._since.values()), default=-self.interval) + self.interval

