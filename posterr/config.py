"""Settings: the one module that reads the environment (documented in the README's table).

Each setting is one field of Settings, which names its variable, its default and its parser, once. A
variable that is unset or empty takes the default; any other value must parse, or the start stops
with a ConfigError naming the variable and what it expects.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Any

from posterr.errors import ConfigError

DEV_SECRET = "posterr-development-secret-change-me"
ENVIRONMENTS = ("production", "development")
# Whoever knows the key can sign cursors and test guesses against the digests of idempotent bodies:
# outside development a server starts only with a key of its own, at least this long.
MIN_SECRET_KEY = 32
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
# prometheus_client's own variable, not a Settings field: the client reads it when it is imported
# (it is what switches on its multiprocess mode), so gunicorn_conf.py hands it to the workers by
# setting it, and metrics.py must see the same folder the client writes to.
METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


class Invalid(ValueError):
    """A variable's text does not parse; the message says what it should be."""


def parse_list(text: str) -> tuple[str, ...]:
    """Comma-separated items; blanks are dropped."""
    return tuple(item.strip() for item in text.split(",") if item.strip())


def whole_number(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    expected = (f"a whole number of at least {minimum}" if maximum is None
                else f"a whole number from {minimum} to {maximum}")

    def parse(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            raise Invalid(expected) from None
        if number < minimum or (maximum is not None and number > maximum):
            raise Invalid(expected)
        return number

    return parse


def parse_seconds(text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not 0 < number < math.inf:
        raise Invalid("a positive number of seconds")
    return number


def parse_log_level(text: str) -> str:
    level = text.upper()
    if level not in LOG_LEVELS:
        raise Invalid(f"one of {', '.join(LOG_LEVELS)}")
    return level


def parse_rate(text: str) -> tuple[int, int] | None:
    """`600/minute` → (600, 60); `off` → None."""
    text = text.strip().lower()
    if text == "off":
        return None
    count, _, unit = text.partition("/")
    if not count.isdigit() or int(count) < 1 or unit not in _PERIODS:
        raise Invalid("N/second|minute|hour|day, or off")
    return int(count), _PERIODS[unit]


AUTH_MODES = ("required", "legacy")


def parse_auth_mode(text: str) -> str:
    mode = text.strip().lower()
    if mode not in AUTH_MODES:
        raise Invalid(" or ".join(AUTH_MODES))
    return mode


def parse_environment(text: str) -> str:
    environment = text.strip().lower()
    if environment not in ENVIRONMENTS:
        raise Invalid(" or ".join(ENVIRONMENTS))
    return environment


def parse_threshold_ms(text: str) -> int | None:
    """`250` → 250 milliseconds; `off` or `0` → None (no threshold)."""
    if text.strip().lower() == "off":
        return None
    try:
        number = int(text)
    except ValueError:
        number = -1
    if number < 0:
        raise Invalid("a whole number of milliseconds, or off")
    return number or None


def parse_networks(text: str) -> tuple[IPv4Network | IPv6Network, ...]:
    try:
        return tuple(ip_network(part, strict=False) for part in parse_list(text))
    except ValueError as error:
        raise Invalid(f"comma-separated addresses or CIDRs ({error})") from None


def parse_folder(text: str) -> str:
    if not os.path.isdir(text):
        raise Invalid("an existing folder")
    return text


def _setting(variable: str, parse: Callable[[str], Any], default: Any = MISSING, *,
             default_factory: Any = MISSING) -> Any:
    """A Settings field read from `variable` by `parse`; no default makes the variable required."""
    return field(default=default, default_factory=default_factory, metadata={"variable": variable, "parse": parse})


def _parse(variable: str, text: str, parse: Callable[[str], Any]) -> Any:
    try:
        return parse(text)
    except Invalid as error:
        raise ConfigError(f"{variable}={text!r}: expected {error}") from None


@dataclass(frozen=True)
class Settings:
    database_url: str = _setting("DATABASE_URL", str)
    redis_url: str = _setting("REDIS_URL", str)
    replica_urls: tuple[str, ...] = _setting("DATABASE_REPLICA_URLS", parse_list, ())
    replica_max_lag: float = _setting("POSTERR_REPLICA_MAX_LAG", parse_seconds, 2.0)
    replica_check_interval: float = _setting("POSTERR_REPLICA_CHECK_INTERVAL", parse_seconds, 0.25)
    # gunicorn (posterr/gunicorn_conf.py); the worker's threads also size its connection pools.
    host: str = _setting("HOST", str, "0.0.0.0")
    port: int = _setting("PORT", whole_number(1, 65535), 5000)
    workers: int = _setting("WEB_CONCURRENCY", whole_number(1), default_factory=multiprocessing.cpu_count)
    threads: int = _setting("POSTERR_THREADS", whole_number(1), 4)
    max_requests: int = _setting("POSTERR_MAX_REQUESTS", whole_number(0), 100_000)
    max_requests_jitter: int = _setting("POSTERR_MAX_REQUESTS_JITTER", whole_number(0), 10_000)
    keepalive: int = _setting("POSTERR_KEEPALIVE", whole_number(0), 10)
    # A path, `off`, or unset: one socket per port in runtime_dir (see __post_init__).
    control_socket: str = _setting("POSTERR_CONTROL_SOCKET", str, "")
    # Not a posterr setting: systemd-logind sets it to the user's folder for sockets and the like.
    runtime_dir: str = _setting("XDG_RUNTIME_DIR", str, "~/.gunicorn")
    # `required`: acting for a user takes that user's bearer token; `legacy`: a request without an
    # Authorization header acts for the user it names (the previous frontend, which has no login).
    auth_mode: str = _setting("POSTERR_AUTH", parse_auth_mode, "required")
    daily_post_limit: int = _setting("POSTERR_DAILY_POST_LIMIT", whole_number(1), 5)
    cors_origins: tuple[str, ...] = _setting("POSTERR_CORS_ORIGINS", parse_list, ("*",))
    secret_key: str = _setting("POSTERR_SECRET_KEY", str, DEV_SECRET)
    # `development` lets a server start with the development key (`make run` sets it);
    # `production` refuses to (check_secret_key).
    environment: str = _setting("POSTERR_ENV", parse_environment, "production")
    pool_min_size: int = _setting("POSTERR_POOL_MIN_SIZE", whole_number(0), 2)
    # None: the worker's thread count (see __post_init__).
    pool_max_size: int | None = _setting("POSTERR_POOL_MAX_SIZE", whole_number(1), None)
    pool_timeout: float = _setting("POSTERR_POOL_TIMEOUT", parse_seconds, 5.0)
    statement_timeout_ms: int = _setting("POSTERR_STATEMENT_TIMEOUT_MS", whole_number(1), 5000)
    redis_timeout: float = _setting("POSTERR_REDIS_TIMEOUT", parse_seconds, 0.25)
    redis_retry_after: float = _setting("POSTERR_REDIS_RETRY_AFTER", parse_seconds, 2.0)
    cache_invalidation_deadline: float = _setting("POSTERR_CACHE_INVALIDATION_DEADLINE", parse_seconds, 10.0)
    # Each worker opens a new Redis connection at least this often (posterr/redis_connections.py);
    # a write that Redis refused waits this long at most.
    redis_reconnect_interval: float = _setting("POSTERR_REDIS_RECONNECT_INTERVAL", parse_seconds, 1.0)
    request_timeout: float = _setting("POSTERR_REQUEST_TIMEOUT", parse_seconds, 30.0)
    # A request's headers, then its whole body, must arrive within these (posterr/client_deadlines.py):
    # time enough for 64 KiB over a link of ~100 kbit/s, like the 5 s gunicorn waits for a first byte.
    header_timeout: float = _setting("POSTERR_HEADER_TIMEOUT", parse_seconds, 5.0)
    body_timeout: float = _setting("POSTERR_BODY_TIMEOUT", parse_seconds, 5.0)
    feed_cache_ttl: int = _setting("POSTERR_FEED_CACHE_TTL", whole_number(1), 60)
    object_cache_ttl: int = _setting("POSTERR_OBJECT_CACHE_TTL", whole_number(1), 300)
    timeline_size: int = _setting("POSTERR_TIMELINE_SIZE", whole_number(1), 800)
    timeline_ttl: int = _setting("POSTERR_TIMELINE_TTL", whole_number(1), 900)
    fanout_max_followers: int = _setting("POSTERR_FANOUT_MAX_FOLLOWERS", whole_number(0), 1000)
    # (requests, seconds); None = off.
    rate_limit: tuple[int, int] | None = _setting("POSTERR_RATE_LIMIT", parse_rate, parse_rate("600/minute"))
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = _setting("POSTERR_TRUSTED_PROXIES", parse_networks, ())
    log_level: str = _setting("LOG_LEVEL", parse_log_level, "INFO")
    # A request slower than this many milliseconds logs a slow_request line with the time of each
    # named query it ran; None (`off` or 0): none is logged, and queries are not timed.
    slow_request_ms: int | None = _setting("POSTERR_SLOW_MS", parse_threshold_ms, 100)

    def __post_init__(self) -> None:
        # Defaults that follow other settings. A pool as large as the threads that use it: the
        # connections beyond that would only sit idle on PostgreSQL.
        if self.pool_max_size is None:
            object.__setattr__(self, "pool_max_size", self.threads)
        # gunicorn's own default (~/.gunicorn/gunicorn.ctl) is one per OS user, so instances on one
        # host would take it from each other and stopping one would remove another's: one per port.
        if not self.control_socket:
            object.__setattr__(self, "control_socket",
                               os.path.join(os.path.expanduser(self.runtime_dir), f"posterr-{self.port}.ctl"))
        check_pool(self.pool_min_size, self.pool_max_size, self.threads)
        check_body_timeout(self.body_timeout, self.request_timeout)
        check_reconnect_interval(self.redis_reconnect_interval, self.cache_invalidation_deadline)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        given: dict[str, Any] = {}
        missing: list[str] = []
        for setting in fields(cls):
            variable = setting.metadata["variable"]
            if env.get(variable):
                given[setting.name] = _parse(variable, env[variable], setting.metadata["parse"])
            elif setting.default is MISSING and setting.default_factory is MISSING:
                missing.append(variable)
        if missing:
            raise ConfigError(
                f"{' and '.join(missing)} not set: run through `make run` (which starts local "
                "servers and sets them) or export the URL of your own server"
            )
        return cls(**given)


def check_secret_key(settings: Settings) -> None:
    """A server refuses to start outside development without a real key (the command-line tools,
    which sign nothing, do not ask)."""
    if settings.environment == "development":
        return
    if settings.secret_key == DEV_SECRET:
        problem = "is not set, so cursors would be signed with the development key everyone can read"
    elif len(settings.secret_key) < MIN_SECRET_KEY:
        problem = f"is shorter than {MIN_SECRET_KEY} characters"
    else:
        return
    raise ConfigError(f"POSTERR_SECRET_KEY {problem}: set it to a random value, the same on every host "
                      "(`openssl rand -hex 32`), or set POSTERR_ENV=development on a machine of your own")


def check_pool(min_size: int, max_size: int, threads: int) -> None:
    """Each of a worker's threads needs a connection at once (one without waits, then answers 503
    after POSTERR_POOL_TIMEOUT); the pool keeps min_size of its max_size open."""
    if max_size < threads:
        raise ConfigError(f"POSTERR_POOL_MAX_SIZE={max_size} is less than POSTERR_THREADS={threads}, so threads "
                          "would wait for connections: raise it, unset it (it then follows POSTERR_THREADS) or "
                          "lower POSTERR_THREADS")
    if min_size > max_size:
        raise ConfigError(f"POSTERR_POOL_MIN_SIZE={min_size} is more than the pool's max size {max_size} "
                          "(POSTERR_POOL_MAX_SIZE, by default POSTERR_THREADS): lower POSTERR_POOL_MIN_SIZE or "
                          "raise the max size")


def check_body_timeout(body_timeout: float, request_timeout: float) -> None:
    """A body still arriving when the request timeout runs out gets its worker replaced (the
    watchdog), with every request it serves: the body's deadline must come well before."""
    if body_timeout >= request_timeout:
        raise ConfigError(f"POSTERR_BODY_TIMEOUT={body_timeout:g} is not less than POSTERR_REQUEST_TIMEOUT="
                          f"{request_timeout:g}, so a slow client's body would get its worker replaced: "
                          "lower POSTERR_BODY_TIMEOUT (seconds; a few are plenty) or raise POSTERR_REQUEST_TIMEOUT")


def check_reconnect_interval(interval: float, invalidation_deadline: float) -> None:
    """A write that Redis refused is answered once every busy process has tried a new connection
    (posterr/redis_client.py, mechanism 3), which must come before the write gives up."""
    if interval >= invalidation_deadline:
        raise ConfigError(f"POSTERR_REDIS_RECONNECT_INTERVAL={interval:g} is not less than "
                          f"POSTERR_CACHE_INVALIDATION_DEADLINE={invalidation_deadline:g}, so a write that Redis "
                          "refused could be answered while another process still reads through an older "
                          "connection: lower it (a second is plenty) or raise the deadline")


def metrics_dir(environ: Mapping[str, str] | None = None) -> str | None:
    """The folder where every gunicorn worker writes its metric samples; None: not under gunicorn."""
    env = os.environ if environ is None else environ
    text = env.get(METRICS_DIR_VARIABLE)
    return _parse(METRICS_DIR_VARIABLE, text, parse_folder) if text else None
