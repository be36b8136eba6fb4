"""`cache stats | keys PATTERN | flush`: what the Redis cache holds, how well it serves, and emptying it."""

from __future__ import annotations

import argparse
import http.client
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from prometheus_client.parser import text_string_to_metric_families

from posterr.cli.refresh import CLEAR_SCREEN, refreshed
from posterr.config import Settings
from posterr.document_cache import DOCUMENT_FAMILIES
from posterr.keys import KEY_FAMILIES, KeyFamily
from posterr.redis_connections import connect
from posterr.redis_failures import REDIS_ERRORS

# Not the daily counters, nor the clients' write positions and whether Redis still holds them (reads
# from replicas rely on them).
KEPT_BY_FLUSH = ("quota", "wrote", "positions", "login")
# Deleted before the others: every cached copy is then of a past generation at once.
FLUSHED_FIRST = "generation"
# The families whose reads are cache lookups, with hits and misses; the others are not caches.
LOOKUP_FAMILIES = (*DOCUMENT_FAMILIES.values(), "timelines")
MEMORY_SAMPLE = 200  # keys per family whose MEMORY USAGE is asked
METRICS_TIMEOUT = 2.0  # seconds
WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]"}  # the app listens on all, ask locally
BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")

STATS_EPILOG = f"""\
columns (one row per key family, posterr/keys.py KEY_FAMILIES, and a total):
  keys       keys matching the family's pattern, counted with SCAN
  memory     MEMORY USAGE of up to {MEMORY_SAMPLE} sampled keys of the family, scaled to its key count
             (~: an estimate from the sample)
  hits       lookups answered from Redis, misses those it could not answer (PostgreSQL did, and
             the result was stored for the next reader): the app's own counters, read from its
             /metrics (every worker, since the app started)
  hit ratio  hits / (hits + misses)
  hits/s, misses/s  with --watch: per second since the previous frame
families:
  feeds, posts, users  document cache lookups, posterr_cache_lookups_total{{family}}; a read skipped
             while Redis is unavailable is neither a hit nor a miss
  timelines  pages of the Following feed, posterr_timeline_reads_total: hits were read from a home
             timeline, misses rebuilt one from PostgreSQL; pages read from PostgreSQL alone (Redis
             unavailable, or past a timeline's end) are neither, and are counted on a line below
  quota, rate_limit, login, wrote, positions, generation  not caches: no hits or misses (—). The
             lines below give the refusals of the daily limit (the Redis counter's and PostgreSQL's,
             not counted apart) and of the rate limit (all decided in Redis); login holds the failed
             logins; wrote and positions are the clients' write positions (with read replicas),
             generation the generation of every cached copy
  ?          the app's /metrics could not be read (the line above the table says why), or no
             previous frame to compute a rate from
"""


def register(commands) -> None:
    cache_parser = commands.add_parser("cache", help="inspect or flush the Redis cache")
    cache_commands = cache_parser.add_subparsers(dest="cache_command", required=True)
    stats_parser = cache_commands.add_parser(
        "stats", help="keys, memory, hits, misses and hit ratio per key family",
        description="Keys, memory, hits, misses and hit ratio per key family: keys and memory from\n"
                    "Redis, hits and misses from the running app's /metrics.",
        epilog=STATS_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    stats_parser.add_argument("--metrics-url", metavar="URL",
                              help="the app's metrics (default: http://HOST:PORT/metrics from the settings)")
    stats_parser.add_argument("--watch", type=positive(float), metavar="SECONDS",
                              help="show a new frame every SECONDS, with hits and misses per second, until Ctrl-C")
    stats_parser.add_argument("--frames", type=positive(int), metavar="N",
                              help="with --watch: stop after N frames (for tests and scripts)")
    stats_parser.set_defaults(run=cache_stats)
    keys_parser = cache_commands.add_parser("keys", help="keys matching a pattern")
    keys_parser.add_argument("pattern")
    keys_parser.set_defaults(run=cache_keys)
    cache_commands.add_parser(
        "flush", help="delete every cached document, home timeline and rate-limit state (not the daily counters, the write positions, nor the failed logins)").set_defaults(run=cache_flush)


def positive(number_type: type[float | int]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        number = number_type(text)
        if number <= 0:
            raise argparse.ArgumentTypeError(f"{text} is not positive")
        return number

    parse.__name__ = number_type.__name__  # argparse names the type in its error message
    return parse


# --- what one frame shows ------------------------------------------------------------------------


@dataclass(frozen=True)
class Keys:
    """A family's keys in Redis."""
    count: int
    memory: int  # bytes
    estimated: bool  # memory scaled from a sample smaller than the family


@dataclass(frozen=True)
class Lookups:
    hits: float
    misses: float


@dataclass(frozen=True)
class AppFigures:
    """The app's counters that `cache stats` shows (cumulative, every worker)."""
    lookups: dict[str, Lookups]  # by family: LOOKUP_FAMILIES
    pulled: float  # Following feed pages read from PostgreSQL alone
    refusals: dict[str, float]  # by limit: daily_posts, client_rate


@dataclass(frozen=True)
class Snapshot:
    keys: dict[str, Keys]  # by family
    redis_memory: str  # Redis's own figures, server-wide
    app: AppFigures | None
    app_problem: str | None  # why app is None
    taken: float  # time.monotonic(), for rates
    clock: datetime


def metrics_url(settings: Settings) -> str:
    host = WILDCARD_HOSTS.get(settings.host, settings.host)
    return f"http://{host}:{settings.port}/metrics"


def app_figures(text: str) -> AppFigures:
    """The figures `cache stats` shows, from the app's /metrics text; ValueError when the text has
    no cache lookups by family (not Posterr's metrics, or an app older than this command)."""
    samples = [sample for metric in text_string_to_metric_families(text) for sample in metric.samples]
    if not any("family" in sample.labels for sample in samples if sample.name == "posterr_cache_lookups_total"):
        raise ValueError("no posterr_cache_lookups_total{family} in it (not Posterr, or an older version)")

    def total(name: str, **labels: str) -> float:
        return sum(sample.value for sample in samples
                   if sample.name == name and labels.items() <= sample.labels.items())

    lookups = {family: Lookups(total("posterr_cache_lookups_total", family=family, result="hit"),
                               total("posterr_cache_lookups_total", family=family, result="miss"))
               for family in DOCUMENT_FAMILIES.values()}
    lookups["timelines"] = Lookups(total("posterr_timeline_reads_total", source="hit"),
                                   total("posterr_timeline_reads_total", source="built"))
    return AppFigures(lookups, total("posterr_timeline_reads_total", source="pulled"),
                      {limit: total("posterr_limit_refusals_total", limit=limit)
                       for limit in ("daily_posts", "client_rate")})


def hit_ratio(lookups: Lookups) -> float | None:
    """None before the first lookup."""
    looked_up = lookups.hits + lookups.misses
    return lookups.hits / looked_up if looked_up else None


def rates(previous: Lookups, current: Lookups, seconds: float) -> Lookups:
    """Hits and misses per second between two readings. A counter that went down was reset (the app
    restarted), so all of its current value is new, as Prometheus's rate() takes it."""
    def per_second(before: float, now: float) -> float:
        return (now - before if now >= before else now) / seconds

    return Lookups(per_second(previous.hits, current.hits), per_second(previous.misses, current.misses))


def estimated_memory(sizes: list[int], count: int) -> int:
    """A family's bytes from the MEMORY USAGE of a sample of its `count` keys."""
    return round(sum(sizes) * count / len(sizes)) if sizes else 0


def human_bytes(size: float) -> str:
    power = 0
    while size >= 1024 and power < len(BYTE_UNITS) - 1:
        size /= 1024
        power += 1
    return f"{size:.0f} B" if power == 0 else f"{size:.1f} {BYTE_UNITS[power]}"


def total_lookups(lookups: Iterable[Lookups]) -> Lookups:
    each_family = list(lookups)
    return Lookups(sum(each.hits for each in each_family), sum(each.misses for each in each_family))


# --- the table -----------------------------------------------------------------------------------

NOT_A_CACHE = "—"
UNKNOWN = "?"
COLUMNS = ("family", "keys", "memory", "hits", "misses", "hits/s", "misses/s", "hit ratio")
WIDTHS = (-10, 9, 11, 10, 10, 9, 10, 11)  # negative: left-aligned
WATCH_ONLY = ("hits/s", "misses/s")


def frame(current: Snapshot, previous: Snapshot | None, *, watching: bool) -> list[str]:
    """The lines of one `cache stats` frame; `previous`: the watch's frame before, if any."""
    seconds = current.taken - previous.taken if previous else None
    lines = [f"{current.clock:%Y-%m-%d %H:%M:%S}  Redis memory used {current.redis_memory} (server-wide)"]
    if current.app is None:
        lines.append(f"hits and misses unavailable: {current.app_problem}")
    elif watching:
        lines.append(f"per second over the last {seconds:.1f} s" if seconds else "per second: from the next frame on")
    lines.append(_row(COLUMNS, watching) + "  pattern")
    cells = {family.name: _cells(family, current, previous, seconds) for family in KEY_FAMILIES}
    for family in KEY_FAMILIES:
        lines.append(_row(cells[family.name], watching) + f"  {family.pattern}")
    lines.append(_row(_total_cells(current, previous, seconds), watching))
    lines.append(f"memory: MEMORY USAGE of up to {MEMORY_SAMPLE} sampled keys per family, scaled to its key count "
                 "(~: more keys than sampled)")
    if current.app is not None:
        lines.extend(_notes(current.app))
    return lines


def _cells(family: KeyFamily, current: Snapshot, previous: Snapshot | None, seconds: float | None) -> tuple:
    keys = current.keys[family.name]
    if family.name not in LOOKUP_FAMILIES:
        return (family.name, keys.count, _memory(keys), *[NOT_A_CACHE] * 5)
    now = current.app.lookups[family.name] if current.app else None
    before = previous.app.lookups[family.name] if previous and previous.app else None
    return (family.name, keys.count, _memory(keys), *_lookup_cells(now, before, seconds))


def _total_cells(current: Snapshot, previous: Snapshot | None, seconds: float | None) -> tuple:
    families = current.keys.values()
    together = Keys(sum(each.count for each in families), sum(each.memory for each in families),
                    any(each.estimated for each in families))
    now = total_lookups(current.app.lookups.values()) if current.app else None
    before = total_lookups(previous.app.lookups.values()) if previous and previous.app else None
    return ("total", together.count, _memory(together), *_lookup_cells(now, before, seconds))


def _lookup_cells(now: Lookups | None, before: Lookups | None, seconds: float | None) -> tuple:
    """hits, misses, hits/s, misses/s, hit ratio."""
    if now is None:
        return (UNKNOWN,) * 5
    per_second = rates(before, now, seconds) if before and seconds else None
    shown_rates = (f"{per_second.hits:.1f}", f"{per_second.misses:.1f}") if per_second else (UNKNOWN, UNKNOWN)
    ratio = hit_ratio(now)
    return (f"{now.hits:.0f}", f"{now.misses:.0f}", *shown_rates, NOT_A_CACHE if ratio is None else f"{ratio:.1%}")


def _memory(keys: Keys) -> str:
    return ("~" if keys.estimated else "") + human_bytes(keys.memory)


def _row(cells: tuple, watching: bool) -> str:
    return "".join(f"{cell:<{-width}}" if width < 0 else f"{cell:>{width}}"
                   for column, cell, width in zip(COLUMNS, cells, WIDTHS, strict=True)
                   if watching or column not in WATCH_ONLY)


def _notes(app: AppFigures) -> list[str]:
    pulled, daily, rate = app.pulled, app.refusals["daily_posts"], app.refusals["client_rate"]
    return [f"timelines: {pulled:.0f} more pages read from PostgreSQL alone (Redis unavailable, or past the end)",
            f"quota: {daily:.0f} refusals of the daily limit (by the Redis counter or PostgreSQL, not told apart)",
            f"rate_limit: {rate:.0f} refusals, all decided in Redis"]


# --- reading Redis and the app -------------------------------------------------------------------


def snapshot(client, url: str) -> Snapshot:
    keys = {family.name: family_keys(client, family) for family in KEY_FAMILIES}
    memory = client.info("memory")
    app, problem = read_app(url)
    return Snapshot(keys, f"{memory['used_memory_human']}  peak {memory['used_memory_peak_human']}", app, problem,
                    time.monotonic(), datetime.now())


def family_keys(client, family: KeyFamily) -> Keys:
    """Every key counted; the memory of the first MEMORY_SAMPLE scanned, scaled up: SCAN walks the
    hash table bucket by bucket, an order that owes nothing to the keys' names or age, so the first
    keys it returns are as fair a sample as any."""
    count, sample = 0, []
    for key in client.scan_iter(match=family.pattern, count=1000):
        count += 1
        if len(sample) < MEMORY_SAMPLE:
            sample.append(key)
    pipeline = client.pipeline(transaction=False)
    for key in sample:
        pipeline.memory_usage(key)
    sizes = [size for size in pipeline.execute() if size is not None]  # None: expired since the scan
    return Keys(count, estimated_memory(sizes, count), len(sizes) < count)


def read_app(url: str) -> tuple[AppFigures | None, str | None]:
    """The app's figures, or None and why they could not be read (one line)."""
    try:
        with urllib.request.urlopen(url, timeout=METRICS_TIMEOUT) as response:
            return app_figures(response.read().decode()), None
    except urllib.error.HTTPError as error:
        return None, f"{url} answered {error.code} {error.reason}"
    except urllib.error.URLError as error:
        return None, f"{url} could not be reached ({error.reason})"
    except (OSError, http.client.HTTPException, ValueError) as error:
        return None, f"{url} could not be read ({type(error).__name__}: {error})"


# --- the commands --------------------------------------------------------------------------------


def cache_stats(settings: Settings, args, out) -> int:
    if args.frames and not args.watch:
        raise SystemExit("--frames counts the frames of --watch: give --watch SECONDS too")
    url = args.metrics_url or metrics_url(settings)
    try:
        client = connect(settings.redis_url, decode_responses=True)
        shown: list[Snapshot] = []  # the frames' snapshots, for the rates between the last two

        def show(clear: bool) -> int:
            shown[:] = [*shown[-1:], snapshot(client, url)]
            if clear:
                out.write(CLEAR_SCREEN)
            lines = frame(shown[-1], shown[0] if len(shown) == 2 else None, watching=bool(args.watch))
            print("\n".join(lines) + ("\n" if args.watch else ""), file=out, flush=True)
            return 0

        refreshed(show, args.watch, args.frames, out)
    except REDIS_ERRORS as error:
        raise SystemExit(f"Redis could not be read ({type(error).__name__}: {error})") from None
    return 0


def cache_keys(settings: Settings, args, out) -> None:
    pattern = args.pattern
    client = connect(settings.redis_url, decode_responses=True)
    for key in sorted(client.scan_iter(match=pattern, count=1000)):
        print(f"{client.type(key):<7} ttl {client.ttl(key):>6}  {key}", file=out)


def cache_flush(settings: Settings, _args, out) -> None:
    """Deletes every cached document, home timeline and rate-limit state; the families of
    KEPT_BY_FLUSH stay. The generations go first: every copy is then of a past generation at once
    (on a cluster, each master's at once), while the keys are deleted one by one."""
    client = connect(settings.redis_url)
    families = {family.name: family for family in KEY_FAMILIES}
    for key in client.scan_iter(match=families[FLUSHED_FIRST].pattern, count=1000):
        client.delete(key)
    deleted = 0
    for family in KEY_FAMILIES:
        if family.name in (*KEPT_BY_FLUSH, FLUSHED_FIRST):
            continue
        for key in client.scan_iter(match=family.pattern, count=1000):
            deleted += client.delete(key)
    kept = "; ".join(f"{families[name].holds} ({families[name].pattern})" for name in KEPT_BY_FLUSH)
    print(f"deleted {deleted} cached documents, home timelines and rate-limit states; kept: {kept}", file=out)
