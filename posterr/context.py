"""What a service needs to do its work, built once per process by the app factory."""

from __future__ import annotations

from dataclasses import dataclass

from posterr.config import Settings
from posterr.cursors import CursorCodec
from posterr.data_tier import DataTier
from posterr.document_cache import DocumentCache
from posterr.home_timelines import HomeTimelines
from posterr.limits import ClientRateLimit, DailyQuota
from posterr.login_limit import LoginAttempts
from posterr.recent_tokens import RecentTokens
from posterr.redis_client import Redis
from posterr.segment_sealer import SegmentSealer
from posterr.token_uses import TokenUses


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
    login_attempts: LoginAttempts
    recent_tokens: RecentTokens
    token_uses: TokenUses
    segment_sealer: SegmentSealer

    @property
    def legacy(self) -> bool:
        """Whether a request without a token may act for the user it names (POSTERR_AUTH=legacy)."""
        return self.settings.auth_mode == "legacy"

    def start(self) -> None:
        """Open the pools and start the threads: after gunicorn forks, never in the master (sockets
        and threads do not survive a fork)."""
        self.db.start()
        self.token_uses.start()
        self.segment_sealer.start()

    def stop(self) -> None:
        self.segment_sealer.stop()
        self.token_uses.stop()
        self.db.stop()
        self.redis.close()
