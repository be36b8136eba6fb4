"""What a Redis call may raise, and which failures need no retry: a server that is gone (refused)
rather than one that is there but slow, paused, rejoining or answering errors."""

from __future__ import annotations

import redis
from redis.exceptions import RedisClusterException

# What a Redis call may raise: a cluster's own failures (no node for a slot, say) are not RedisErrors.
REDIS_ERRORS = (redis.RedisError, RedisClusterException)
# Error replies of a cluster node that is there but not serving yet (rejoining after a restart, say):
# not refusals, since that very process and its keys serve again shortly, so they are retried.
BETWEEN_STATES = (redis.exceptions.ClusterDownError, redis.exceptions.TryAgainError)


def refused(error: BaseException) -> bool:
    """Whether nothing listens where Redis should be (a stopped server, a dead cluster master), as
    opposed to a server that is there but slow, paused, rejoining or answering errors."""
    # LOADING: a server process just started, so it has a new epoch
    return _caused_by(error, (ConnectionRefusedError, redis.BusyLoadingError))


def refused_connection(error: BaseException) -> bool:
    """Whether a new connection was refused (not a reply, a timeout or a connection cut)."""
    return _caused_by(error, (ConnectionRefusedError,))


def _caused_by(error: BaseException, kinds: tuple[type[BaseException], ...]) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, kinds):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
