"""Settings: the one module that reads the environment (documented in the README's table)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_network

from posterr.errors import ConfigError

_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
DEV_SECRET = "posterr-development-secret-change-me"


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str
    replica_urls: tuple[str, ...] = ()
    replica_max_lag: float = 2.0
    replica_check_interval: float = 0.25
    daily_post_limit: int = 5
    cors_origins: tuple[str, ...] = ("*",)
    secret_key: str = DEV_SECRET
    pool_min_size: int = 2
    pool_max_size: int = 10
    pool_timeout: float = 5.0
    statement_timeout_ms: int = 5000
    redis_timeout: float = 0.25
    redis_retry_after: float = 2.0
    cache_invalidation_deadline: float = 10.0
    request_timeout: float = 30.0
    feed_cache_ttl: int = 60
    object_cache_ttl: int = 300
    timeline_size: int = 800
    timeline_ttl: int = 900
    fanout_max_followers: int = 1000
    rate_limit: tuple[int, int] | None = None  # (requests, seconds); None = off
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        missing = [name for name in ("DATABASE_URL", "REDIS_URL") if not env.get(name)]
        if missing:
            raise ConfigError(
                f"{' and '.join(missing)} not set: run through `make run` (which starts local "
                "servers and sets them) or export the URL of your own server"
            )
        return cls(
            database_url=env["DATABASE_URL"],
            redis_url=env["REDIS_URL"],
            replica_urls=tuple(url.strip() for url in env.get("DATABASE_REPLICA_URLS", "").split(",") if url.strip()),
            replica_max_lag=_float(env, "POSTERR_REPLICA_MAX_LAG", 2.0),
            replica_check_interval=_float(env, "POSTERR_REPLICA_CHECK_INTERVAL", 0.25),
            daily_post_limit=_int(env, "POSTERR_DAILY_POST_LIMIT", 5, minimum=1),
            cors_origins=tuple(o.strip() for o in env.get("POSTERR_CORS_ORIGINS", "*").split(",") if o.strip()),
            secret_key=env.get("POSTERR_SECRET_KEY") or DEV_SECRET,
            pool_min_size=_int(env, "POSTERR_POOL_MIN_SIZE", 2, minimum=0),
            pool_max_size=_int(env, "POSTERR_POOL_MAX_SIZE", 10, minimum=1),
            pool_timeout=_float(env, "POSTERR_POOL_TIMEOUT", 5.0),
            statement_timeout_ms=_int(env, "POSTERR_STATEMENT_TIMEOUT_MS", 5000, minimum=1),
            redis_timeout=_float(env, "POSTERR_REDIS_TIMEOUT", 0.25),
            redis_retry_after=_float(env, "POSTERR_REDIS_RETRY_AFTER", 2.0),
            cache_invalidation_deadline=_float(env, "POSTERR_CACHE_INVALIDATION_DEADLINE", 10.0),
            request_timeout=_float(env, "POSTERR_REQUEST_TIMEOUT", 30.0),
            feed_cache_ttl=_int(env, "POSTERR_FEED_CACHE_TTL", 60, minimum=1),
            object_cache_ttl=_int(env, "POSTERR_OBJECT_CACHE_TTL", 300, minimum=1),
            timeline_size=_int(env, "POSTERR_TIMELINE_SIZE", 800, minimum=1),
            timeline_ttl=_int(env, "POSTERR_TIMELINE_TTL", 900, minimum=1),
            fanout_max_followers=_int(env, "POSTERR_FANOUT_MAX_FOLLOWERS", 1000, minimum=0),
            rate_limit=parse_rate(env.get("POSTERR_RATE_LIMIT", "600/minute")),
            trusted_proxies=parse_networks(env.get("POSTERR_TRUSTED_PROXIES", "")),
            log_level=_choice(env, "LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
        )


def parse_rate(text: str) -> tuple[int, int] | None:
    """`600/minute` → (600, 60); `off` → None."""
    text = text.strip().lower()
    if text == "off":
        return None
    count, _, unit = text.partition("/")
    if not count.isdigit() or int(count) < 1 or unit not in _PERIODS:
        raise ConfigError(f"POSTERR_RATE_LIMIT={text!r}: expected N/second|minute|hour|day, or off")
    return int(count), _PERIODS[unit]


def parse_networks(text: str) -> tuple[IPv4Network | IPv6Network, ...]:
    try:
        return tuple(ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip())
    except ValueError as error:
        raise ConfigError(f"POSTERR_TRUSTED_PROXIES: {error} (expected comma-separated addresses or CIDRs)") from None


def _choice(env, name: str, default: str, choices: tuple[str, ...]) -> str:
    value = (env.get(name) or default).upper()
    if value not in choices:
        raise ConfigError(f"{name}={value!r}: expected one of {', '.join(choices)}")
    return value


def _int(env, name: str, default: int, minimum: int) -> int:
    value = _number(env, name, default, int, "a whole number")
    if value < minimum:
        raise ConfigError(f"{name}={value!r} must be at least {minimum}")
    return value


def _float(env, name: str, default: float) -> float:
    value = _number(env, name, default, float, "a number")
    if value <= 0:
        raise ConfigError(f"{name}={value!r} must be positive")
    return value


def _number(env, name: str, default, parse, kind: str):
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return parse(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not {kind}") from None
