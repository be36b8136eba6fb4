"""`queries` (every named query, its file and the index that serves it) and `explain NAME k=v…`."""

from __future__ import annotations

import re

import psycopg

from posterr.config import Settings
from posterr.db import load_queries

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def register(commands) -> None:
    commands.add_parser("queries", help="every named query, its file and the index that serves it").set_defaults(
        run=list_queries, offline=True)
    explain_parser = commands.add_parser("explain", help="EXPLAIN (ANALYZE, BUFFERS) a named query")
    explain_parser.add_argument("name")
    explain_parser.add_argument("params", nargs="*", metavar="key=value", help="unset parameters are NULL")
    explain_parser.set_defaults(run=explain)


def list_queries(_settings: None, _args, out) -> None:
    for query in load_queries().values():
        print(f"{query.name:<16} :{query.kind:<5} {query.path:<12} {query.index}", file=out)


def explain(settings: Settings, args, out) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) in a transaction that is rolled back, so writes change nothing."""
    queries = load_queries()
    name = args.name
    if name not in queries:
        raise SystemExit(f"no query named {name!r}; `python -m posterr queries` lists them")
    params = dict.fromkeys(_PLACEHOLDER.findall(queries[name].sql))
    for assignment in args.params:
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
