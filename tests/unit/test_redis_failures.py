"""posterr/redis_failures.py: which Redis failures mean "the server is gone" (refused) and which mean
"this one call failed". (PostgreSQL's: tests/unit/test_db.py.)"""

from __future__ import annotations

import pytest
import redis

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
