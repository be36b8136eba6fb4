"""Which failures mean "the server is gone" and which mean "this one call failed"."""

from __future__ import annotations

import psycopg
import pytest
import redis
from psycopg_pool import PoolTimeout

from posterr.db import server_unreachable
from posterr.redis_failures import refused


def _connection_error(cause: OSError) -> redis.ConnectionError:
    """A ConnectionError raised the way redis-py raises it: in the handler of the socket's error."""
    try:
        try:
            raise cause
        except OSError:
            raise redis.ConnectionError("Error connecting to 127.0.0.1:6379") from None
    except redis.ConnectionError as error:
        return error


@pytest.mark.parametrize(("error", "gone"), [
    (_connection_error(ConnectionRefusedError(111, "refused")), True),
    (redis.BusyLoadingError("Redis is loading the dataset in memory"), True),
    (_connection_error(ConnectionResetError(104, "reset")), False),
    (redis.TimeoutError("Timeout reading from socket"), False),
    (redis.ResponseError("OOM command not allowed"), False),
    (redis.exceptions.MovedError("3999 127.0.0.1:6381"), False),
])
def test_only_a_refused_or_freshly_started_redis_needs_no_retried_delete(error, gone):
    assert refused(error) is gone


def _pg_error(error_class, sqlstate: str | None = None) -> Exception:
    error = error_class("failed")
    if sqlstate is not None:
        assert error_class.sqlstate == sqlstate
    return error


@pytest.mark.parametrize(("error", "unreachable"), [
    (PoolTimeout("couldn't get a connection after 5 s"), True),
    (psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly"), True),
    (psycopg.InterfaceError("the connection is closed"), True),
    (_pg_error(psycopg.errors.AdminShutdown, "57P01"), True),
    (_pg_error(psycopg.errors.CrashShutdown, "57P02"), True),
    (_pg_error(psycopg.errors.CannotConnectNow, "57P03"), True),
    (_pg_error(psycopg.errors.TooManyConnections, "53300"), True),
    (_pg_error(psycopg.errors.ConnectionFailure, "08006"), True),
    (_pg_error(psycopg.errors.DeadlockDetected, "40P01"), False),
    (_pg_error(psycopg.errors.SerializationFailure, "40001"), False),
    (_pg_error(psycopg.errors.LockNotAvailable, "55P03"), False),
    (_pg_error(psycopg.errors.DiskFull, "53100"), False),
])
def test_only_connection_failures_count_as_postgresql_down(error, unreachable):
    assert server_unreachable(error) is unreachable
