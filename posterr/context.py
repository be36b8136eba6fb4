"""What a service needs to do its work, built once per process by the app factory."""

from __future__ import annotations

from dataclasses import dataclass

from posterr.config import Settings
from posterr.cursors import CursorCodec
from posterr.data_tier import DataTier
from posterr.document_cache import DocumentCache
from posterr.home_timelines import HomeTimelines
from posterr.limits import ClientRateLimit, DailyQuota
from posterr.redis_client import Redis


@dataclass(frozen=True)
class Context:
    settings: Settings
    db: DataTier
    redis: Redis
    cache: DocumentCache
    timelines: HomeTimelines
    quota: DailyQuota
    rate_limit: ClientRateLimit | None
    cursors: CursorCodec

    def start(self) -> None:
        """Open the pools: after gunicorn forks, never in the master (sockets do not survive a fork)."""
        self.db.start()

    def stop(self) -> None:
        self.db.stop()
        self.redis.close()
