"""Operator commands: `python -m posterr queries | explain NAME k=v… | replicas | cache stats|keys PATTERN|flush`."""

from __future__ import annotations

import argparse
import re
import sys

import psycopg
from psycopg.rows import dict_row

from posterr.cache import KEY_PATTERNS, PREFIX, connect
from posterr.config import Settings
from posterr.db import Session, load_queries, server_name
from posterr.replicas import lsn

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
# Not the daily counters, nor the clients' write positions (reads from replicas rely on them).
DOCUMENT_PATTERNS = [pattern for pattern in KEY_PATTERNS if ":quota:" not in pattern and ":wrote:" not in pattern]


def list_queries(_: Settings, out) -> None:
    for query in load_queries().values():
        print(f"{query.name:<16} :{query.kind:<5} {query.path:<12} {query.index}", file=out)


def explain(settings: Settings, out, name: str, assignments: list[str]) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) in a transaction that is rolled back, so writes change nothing."""
    queries = load_queries()
    if name not in queries:
        raise SystemExit(f"no query named {name!r}; `python -m posterr queries` lists them")
    params = dict.fromkeys(_PLACEHOLDER.findall(queries[name].sql))
    for assignment in assignments:
        key, _, value = assignment.partition("=")
        if key not in params:
            raise SystemExit(f"{name} takes no parameter {key!r}; it takes: {', '.join(params) or 'none'}")
        params[key] = None if value in ("", "null") else int(value) if value.lstrip("-").isdigit() else value
    with psycopg.connect(settings.database_url) as conn:
        # As the app plans it: per-call queries with their values, the others generically (prepared).
        mode = "force_custom_plan" if queries[name].per_call_plan else "force_generic_plan"
        conn.execute(f"SET plan_cache_mode = {mode}")
        for (line,) in conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {queries[name].sql}", params):
            print(line, file=out)
        conn.rollback()


def replicas(settings: Settings, out) -> int:
    """Each replica's state and lag, checked now against the primary; 1 when one is not serving."""
    if not settings.replica_urls:
        print("no replicas configured (DATABASE_REPLICA_URLS is empty): every read goes to the primary", file=out)
        return 0
    queries = load_queries()

    def ask(url: str, name: str) -> dict:
        with psycopg.connect(url, autocommit=True, connect_timeout=3, row_factory=dict_row) as conn:
            return Session(conn, queries)(name)

    primary = ask(settings.database_url, "primary_position")["position"]
    print(f"primary  {server_name(settings.database_url):<24} WAL written to {primary}", file=out)
    healthy = True
    for url in settings.replica_urls:
        try:
            row = ask(url, "replica_position")
        except psycopg.Error as error:
            healthy = False
            print(f"replica  {server_name(url):<24} down      {str(error).strip().splitlines()[0]}", file=out)
            continue
        behind = max(0, lsn(primary) - lsn(row["position"]))
        # Caught up: no lag, however long ago the last commit was. Behind: the last replayed commit's age.
        lag = 0.0 if behind == 0 else row["replay_age"]
        state = ("not a replica" if not row["in_recovery"] else
                 "ok" if lag is not None and lag <= settings.replica_max_lag else "lagging")
        healthy = healthy and state == "ok"
        shown = "unknown" if lag is None else f"{lag:.3f} s"
        print(f"replica  {server_name(url):<24} {state:<9} replayed to {row['position']}, {behind} bytes behind, "
              f"lag {shown} (limit {settings.replica_max_lag:g} s)", file=out)
    return 0 if healthy else 1


def cache_stats(settings: Settings, out) -> None:
    client = connect(settings.redis_url, decode_responses=True)
    stats, memory = client.info("stats"), client.info("memory")
    hits, misses = stats["keyspace_hits"], stats["keyspace_misses"]
    ratio = hits / (hits + misses) if hits + misses else 0.0
    print(f"hits {hits}  misses {misses}  hit ratio {ratio:.1%}  (server-wide, since Redis started)", file=out)
    print(f"memory used {memory['used_memory_human']}  peak {memory['used_memory_peak_human']}", file=out)
    for pattern, meaning in KEY_PATTERNS.items():
        count = sum(1 for _ in client.scan_iter(match=pattern, count=1000))
        print(f"{count:>9}  {pattern:<28} {meaning}", file=out)


def cache_keys(settings: Settings, out, pattern: str) -> None:
    client = connect(settings.redis_url, decode_responses=True)
    for key in sorted(client.scan_iter(match=pattern, count=1000)):
        print(f"{client.type(key):<7} ttl {client.ttl(key):>6}  {key}", file=out)


def cache_flush(settings: Settings, out) -> None:
    """Deletes every cached document (feeds, posts, users); the daily counters stay."""
    client = connect(settings.redis_url)
    deleted = 0
    for pattern in DOCUMENT_PATTERNS:
        for key in client.scan_iter(match=pattern, count=1000):
            deleted += client.delete(key)
    print(f"deleted {deleted} cached documents (daily counters under {PREFIX}:quota:* kept)", file=out)


def main(argv: list[str] | None = None, out=sys.stdout) -> None:
    parser = argparse.ArgumentParser(prog="python -m posterr", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("queries", help="every named query, its file and the index that serves it")
    explain_parser = commands.add_parser("explain", help="EXPLAIN (ANALYZE, BUFFERS) a named query")
    explain_parser.add_argument("name")
    explain_parser.add_argument("params", nargs="*", metavar="key=value", help="unset parameters are NULL")
    commands.add_parser("replicas", help="each read replica's state and lag, checked now")
    cache_parser = commands.add_parser("cache", help="inspect or flush the Redis cache")
    cache_commands = cache_parser.add_subparsers(dest="cache_command", required=True)
    cache_commands.add_parser("stats", help="hits, misses, memory and keys per pattern")
    cache_commands.add_parser("keys", help="keys matching a pattern").add_argument("pattern")
    cache_commands.add_parser("flush", help="delete every cached document")
    args = parser.parse_args(argv)

    if args.command == "queries":
        list_queries(None, out)
        return
    settings = Settings.from_env()
    if args.command == "explain":
        explain(settings, out, args.name, args.params)
    elif args.command == "replicas":
        if replicas(settings, out):
            sys.exit(1)
    elif args.cache_command == "stats":
        cache_stats(settings, out)
    elif args.cache_command == "keys":
        cache_keys(settings, out, args.pattern)
    else:
        cache_flush(settings, out)
