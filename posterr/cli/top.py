"""`top`: which named query takes the database's time, from pg_stat_statements, one section per
server (the primary, then each read replica).

Every named query's text starts with /* posterr:NAME */ (posterr/db.py), so pg_stat_statements'
rows are grouped by that name; statements that are not ours are one group, "other". Figures are
PostgreSQL's since its statistics were last reset, or, with --since, since this tool's own reset
point (`top --mark` sets it; nothing is reset on the server, so other users of the view lose
nothing). The maximum is always PostgreSQL's own, since its last reset: it cannot be taken apart.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from posterr.cli.refresh import CLEAR_SCREEN, refreshed
from posterr.config import Settings
from posterr.db import Session, load_queries, query_name_of, server_name

OTHER = "other"
COUNTERS = ("calls", "total_exec_time", "rows", "shared_blks_hit", "shared_blks_read")
HOW_TO_ENABLE = (
    "pg_stat_statements is not available on {server}: {reason}\n"
    "To turn it on: add pg_stat_statements to shared_preload_libraries in postgresql.conf (or start the server "
    "with -c shared_preload_libraries=pg_stat_statements), restart PostgreSQL, then run `make migrate` (or, as a "
    "superuser, CREATE EXTENSION pg_stat_statements in the app's database). The servers `make run`, `make test`, "
    "`make cluster` and docker-compose.yml start have it already.")


class Unavailable(Exception):
    """pg_stat_statements cannot be read on a server; the message says why."""


@dataclass
class QueryFigures:
    name: str
    calls: int
    total_ms: float
    mean_ms: float
    max_ms: float
    rows_per_call: float
    hit_ratio: float | None  # shared buffers found in memory, of those the query needed
    share: float  # of all the time statements took in this database


def register(commands) -> None:
    parser = commands.add_parser("top", help="named queries ranked by the database time they take",
                                 description=__doc__.split("\n\n")[0])
    parser.add_argument("--since", action="store_true", help="figures since the reset point that --mark set")
    parser.add_argument("--mark", action="store_true", help="set the reset point to now (and print nothing else)")
    parser.add_argument("--watch", type=float, metavar="N", help="refresh every N seconds, like top")
    parser.add_argument("--iterations", type=int, metavar="N", help="with --watch: stop after N refreshes")
    parser.add_argument("--limit", type=int, default=25, help="rows per server (default 25; `other` always shown)")
    parser.add_argument("--json", action="store_true", help="one JSON document per refresh")
    parser.add_argument("--mark-dir", type=Path, default=Path.home() / ".local" / "state" / "posterr",
                        help="where reset points are kept, one file per server (default ~/.local/state/posterr)")
    parser.set_defaults(run=top)


def top(settings: Settings, args, out) -> int:
    servers = [("primary", settings.database_url)] + [("replica", url) for url in settings.replica_urls]
    if args.mark:
        for role, url in servers:
            try:
                args.mark_dir.mkdir(parents=True, exist_ok=True)
                (args.mark_dir / _mark_file(url)).write_text(json.dumps(_counters(read_statements(url))))
                print(f"{role} {server_name(url)}: reset point set; `top --since` shows what happens from now",
                      file=out)
            except Unavailable as error:
                print(str(error), file=out)
                if role == "primary":
                    return 2
        return 0
    return refreshed(lambda clear: _frame(servers, args, out, clear=clear), args.watch, args.iterations, out)


def _frame(servers: list[tuple[str, str]], args, out, *, clear: bool) -> int:
    sections = []
    for role, url in servers:
        try:
            rows = read_statements(url)
        except Unavailable as error:
            if role == "primary":
                print(str(error), file=out)
                return 2
            sections.append({"role": role, "server": server_name(url), "error": str(error)})
            continue
        mark = _read_mark(args.mark_dir / _mark_file(url)) if args.since else None
        since = "the reset point (top --mark)" if mark is not None else "PostgreSQL's last statistics reset"
        if args.since and mark is None:
            since += " (no reset point yet: run `top --mark` first)"
        sections.append({"role": role, "server": server_name(url), "since": since,
                         "queries": [asdict(q) for q in ranked(rows, mark or {}, args.limit)]})
    if args.json:
        print(json.dumps({"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "servers": sections}), file=out)
    else:
        if clear:
            print(CLEAR_SCREEN, end="", file=out)
        for section in sections:
            print(render(section), file=out)
    out.flush()
    return 0


def read_statements(url: str) -> list[dict]:
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=3, row_factory=dict_row) as conn:
            return Session(conn, load_queries())("statement_stats")
    except (psycopg.errors.UndefinedTable, psycopg.errors.ObjectNotInPrerequisiteState,
            psycopg.errors.InsufficientPrivilege) as error:
        raise Unavailable(HOW_TO_ENABLE.format(server=server_name(url), reason=_first_line(error))) from None
    except psycopg.OperationalError as error:
        raise Unavailable(f"{server_name(url)} cannot be reached: {_first_line(error)}") from None


def ranked(rows: list[dict], mark: dict[str, list[float]], limit: int) -> list[QueryFigures]:
    """Per named query (and `other`), the figures of `rows` less those at the reset point `mark`,
    by total time, the first `limit` and `other`."""
    groups: dict[str, dict[str, float]] = {}
    for row in rows:
        before = mark.get(str(row["queryid"]))
        # A statement evicted or reset since the mark starts again from zero: count it whole.
        counts = [row[c] for c in COUNTERS]
        if before and counts[0] >= before[0]:
            counts = [now - then for now, then in zip(counts, before, strict=True)]
        group = groups.setdefault(query_name_of(row["query"]) or OTHER, dict.fromkeys((*COUNTERS, "max"), 0.0))
        for counter, value in zip(COUNTERS, counts, strict=True):
            group[counter] += value
        group["max"] = max(group["max"], row["max_exec_time"])
    everything = sum(group["total_exec_time"] for group in groups.values()) or 1.0
    figures = [_figures(name, group, everything) for name, group in groups.items() if group["calls"]]
    figures.sort(key=lambda f: f.total_ms, reverse=True)
    named = [f for f in figures if f.name != OTHER][:limit]
    return named + [f for f in figures if f.name == OTHER]


def _figures(name: str, group: dict[str, float], everything: float) -> QueryFigures:
    calls = int(group["calls"])
    blocks = group["shared_blks_hit"] + group["shared_blks_read"]
    return QueryFigures(name=name, calls=calls, total_ms=round(group["total_exec_time"], 3),
                        mean_ms=round(group["total_exec_time"] / calls, 3), max_ms=round(group["max"], 3),
                        rows_per_call=round(group["rows"] / calls, 2),
                        hit_ratio=round(group["shared_blks_hit"] / blocks, 4) if blocks else None,
                        share=round(group["total_exec_time"] / everything, 4))


def render(section: dict) -> str:
    title = f"{section['role']} {section['server']}"
    if "error" in section:
        return f"{title}: {section['error']}\n"
    lines = [f"{title}: named queries by total time, since {section['since']}",
             (f"{'query':<28} {'calls':>9} {'total ms':>11} {'mean ms':>9} {'max ms':>9} {'rows/call':>9} "
             f"{'hit %':>6} {'share':>6}")]
    for q in (QueryFigures(**item) for item in section["queries"]):
        hits = "-" if q.hit_ratio is None else f"{q.hit_ratio:.1%}"
        lines.append(f"{q.name:<28} {q.calls:>9,} {q.total_ms:>11,.1f} {q.mean_ms:>9.3f} {q.max_ms:>9.1f} "
                     f"{q.rows_per_call:>9.1f} {hits:>6} {q.share:>6.1%}")
    if not section["queries"]:
        lines.append("(no statements yet)")
    return "\n".join(lines) + "\n"


def _counters(rows: list[dict]) -> dict[str, list[float]]:
    return {str(row["queryid"]): [row[c] for c in COUNTERS] for row in rows}


def _read_mark(path: Path) -> dict[str, list[float]] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _mark_file(url: str) -> str:
    database = url.rsplit("/", 1)[-1].split("?", 1)[0]
    return re.sub(r"[^A-Za-z0-9._-]", "_", f"top-{server_name(url)}-{database}.json")


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
