"""How a write's commands reach Redis (posterr/redis_client.py, Redis.before_answer): on a Redis
Cluster each command on its own (EachCommand), so that one master that refuses does not keep the
write's changes from the others (mechanism 4); on a standalone server, all in one round trip
(Batch). Both take the same calls (delete, evalsha: what a Change queues and a Script runs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
from redis.cluster import RedisCluster
from redis.commands.core import Script

from posterr.redis_failures import REDIS_ERRORS, refused


class Batch:
    """On a standalone server, a write's commands in one round trip. Not redis-py's pipeline, which
    asks SCRIPT EXISTS before every batch that calls a script, a round trip more: here a script the
    server does not have (it restarted, or its scripts were flushed) fails the batch, and the batch
    is sent again once every script is loaded. Sending it twice is harmless: its deletes, and the
    scripts, which leave the same state when run again."""

    def __init__(self, client: redis.Redis, scripts: list[Script]):
        self.client = client
        self.scripts = scripts
        self.commands: list[tuple] = []

    def delete(self, *keys: str) -> None:
        self.commands.append(("DEL", *keys))

    def evalsha(self, *args: Any) -> None:  # what a Script runs (redis.commands.core.Script.__call__)
        self.commands.append(("EVALSHA", *args))

    def execute(self, raise_on_error: bool = True) -> list:
        """The replies in order; with raise_on_error=False, an error reply is its exception, in place."""
        replies = self._send()
        if any(isinstance(reply, redis.exceptions.NoScriptError) for reply in replies):
            for script in self.scripts:
                self.client.script_load(script.script)
            replies = self._send()
        errors = [reply for reply in replies if isinstance(reply, Exception)]
        if errors and raise_on_error:
            raise errors[0]
        return replies

    def _send(self) -> list:
        pipe = self.client.pipeline(transaction=False)
        for command in self.commands:
            pipe.execute_command(*command)
        return pipe.execute(raise_on_error=False)


class EachCommand:
    """On a Redis Cluster, in place of a pipeline: each command runs at once, and one whose master
    refuses is skipped rather than failing the rest: a master that is gone comes back with a new
    epoch, and one that refused while it kept its keys gets its generation bumped before this process
    sends it anything else (mechanism 3), while the other masters must get theirs."""

    def __init__(self, client: RedisCluster, refused_by_one: Callable[[], None]):
        self.client = client
        self.refused_by_one = refused_by_one

    def delete(self, *keys: str) -> Any:
        return self._unless_refused(self.client.delete, *keys)

    def evalsha(self, *args: Any) -> Any:  # what a Script runs (redis.commands.core.Script.__call__)
        return self._unless_refused(self.client.evalsha, *args)

    def script_load(self, script: str) -> str:
        return self.client.script_load(script)

    def _unless_refused(self, command: Callable, *args: Any) -> Any:
        try:
            return command(*args)
        except REDIS_ERRORS as error:
            if refused(error):
                self.refused_by_one()
                return None
            raise

