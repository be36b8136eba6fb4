"""`activity`: what each connection to the app's database is doing now, longest first, named by the
query it runs (pg_stat_activity; every named query's text starts with /* posterr:NAME */)."""

from __future__ import annotations

import json
import time

import psycopg
from psycopg.rows import dict_row

from posterr.cli.refresh import CLEAR_SCREEN, refreshed
from posterr.config import Settings
from posterr.db import Session, load_queries, query_name_of, server_name


def register(commands) -> None:
    parser = commands.add_parser("activity", help="what is running now, by named query, longest first")
    parser.add_argument("--all", action="store_true", help="idle connections too (with their last statement)")
    parser.add_argument("--watch", type=float, metavar="N", help="refresh every N seconds, like top")
    parser.add_argument("--iterations", type=int, metavar="N", help="with --watch: stop after N refreshes")
    parser.add_argument("--json", action="store_true", help="one JSON document per refresh")
    parser.set_defaults(run=activity)


def activity(settings: Settings, args, out) -> int:
    return refreshed(lambda clear: _frame(settings.database_url, args, out, clear=clear), args.watch, args.iterations,
                     out)


def _frame(url: str, args, out, *, clear: bool) -> int:
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=3, row_factory=dict_row) as conn:
            rows = Session(conn, load_queries())("running_statements")
    except psycopg.OperationalError as error:
        print(f"{server_name(url)} cannot be reached: {str(error).strip().splitlines()[0]}", file=out)
        return 2
    shown = [described(row) for row in rows if args.all or row["state"] != "idle"]
    if args.json:
        print(json.dumps({"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "server": server_name(url),
                          "connections": shown}), file=out)
    else:
        if clear:
            print(CLEAR_SCREEN, end="", file=out)
        print(render(server_name(url), shown, idle_left_out=len(rows) - len(shown)), file=out)
    out.flush()
    return 0


def described(row: dict) -> dict:
    """One connection as the operator reads it: the named query (or the statement's start)."""
    statement = " ".join((row["query"] or "").split())
    return {"pid": row["pid"], "query": query_name_of(statement) or f"other: {statement[:60]}",
            "state": row["state"] or "-", "wait": ":".join(filter(None, (row["wait_event_type"], row["wait_event"]))),
            "seconds": round(row["seconds"] or 0.0, 3), "blocked_by": list(row["blocked_by"] or []),
            "client": row["client"] or "local", "application": row["application_name"] or ""}


def render(server: str, connections: list[dict], *, idle_left_out: int) -> str:
    lines = [f"{server}: {len(connections)} connections, longest first"
             + (f" ({idle_left_out} idle left out: --all shows them)" if idle_left_out else ""),
             f"{'pid':>7} {'seconds':>9} {'state':<20} {'wait':<24} {'blocked by':<12} query"]
    for c in connections:
        blocked = ",".join(map(str, c["blocked_by"])) or "-"
        lines.append(f"{c['pid']:>7} {c['seconds']:>9.3f} {c['state'][:20]:<20} {c['wait'][:24] or '-':<24} "
                     f"{blocked:<12} {c['query']}")
    return "\n".join(lines) + "\n"
