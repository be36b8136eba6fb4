"""`replicas`: each read replica's state and lag, checked now against the primary (and, behind a
multi-host DATABASE_URL, each member of the fail-over cluster)."""

from __future__ import annotations

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row

from posterr.config import Settings
from posterr.db import Session, load_queries, server_name
from posterr.wal_positions import lsn


def _name(conninfo: str) -> str:
    params = conninfo_to_dict(conninfo)
    return f"{params.get('host') or 'localhost'}:{params.get('port') or 5432}"


def register(commands) -> None:
    commands.add_parser("replicas", help="each read replica's state and lag, checked now").set_defaults(run=replicas)


def members(url: str) -> list[str]:
    """Each server of a multi-host (fail-over) URL as a URL of its own, whatever its role; [] for a
    URL naming one server."""
    params = conninfo_to_dict(url)
    hosts = str(params.get("host") or "").split(",")
    if len(hosts) < 2:
        return []
    ports = str(params.get("port") or "").split(",")  # one for all, or one each (empty: the default)
    params.pop("target_session_attrs", None)
    return [make_conninfo("", **{**params, "host": host, "port": (ports[i] if len(ports) > 1 else ports[0]) or "5432"})
            for i, host in enumerate(hosts)]


def replicas(settings: Settings, _args, out) -> int:
    """Each replica's state and lag, checked now against the primary; 1 when one is not serving.
    Behind a multi-host DATABASE_URL, every member's role, timeline and WAL position first."""
    queries = load_queries()

    def ask(url: str, name: str, **role: str) -> dict:
        with psycopg.connect(url, autocommit=True, connect_timeout=3, row_factory=dict_row, **role) as conn:
            return Session(conn, queries)(name)

    for url in members(settings.database_url):
        try:
            row = ask(url, "member_state")
        except psycopg.Error as error:
            print(f"member   {_name(url):<24} down      {str(error).strip().splitlines()[0]}", file=out)
            continue
        role, verb = ("standby", "replayed to") if row["in_recovery"] else ("primary", "WAL written to")
        print(f"member   {_name(url):<24} {role:<9} timeline {row['timeline'] or 'unknown'}, {verb} {row['position']}",
              file=out)
    if not settings.replica_urls:
        print("no replicas configured (DATABASE_REPLICA_URLS is empty): every read goes to the primary", file=out)
        return 0
    sample = ask(settings.database_url, "primary_position")
    primary = sample["position"]
    print(f"primary  {server_name(settings.database_url):<24} WAL written to {primary}", file=out)
    healthy = True
    for url in settings.replica_urls:
        try:
            # Whatever its role (the URL may ask for a standby): a primary is told apart below.
            row = ask(url, "replica_position", target_session_attrs="any")
        except psycopg.Error as error:
            healthy = False
            print(f"replica  {server_name(url):<24} down      {str(error).strip().splitlines()[0]}", file=out)
            continue
        if not row["in_recovery"]:
            # The primary the app writes to, listed with the other members behind Patroni: expected.
            # Any other primary no longer follows it (promoted by hand, split off): a fault.
            state = "primary" if row["started"] == sample["started"] else "not a replica"
            healthy = healthy and state == "primary"
            print(f"replica  {server_name(url):<24} {state:<9} serves no replica reads", file=out)
            continue
        behind = max(0, lsn(primary) - lsn(row["position"]))
        # Caught up: no lag, however long ago the last commit was. Behind: the last replayed commit's age.
        lag = 0.0 if behind == 0 else row["replay_age"]
        state = "ok" if lag is not None and lag <= settings.replica_max_lag else "lagging"
        healthy = healthy and state == "ok"
        shown = "unknown" if lag is None else f"{lag:.3f} s"
        print(f"replica  {server_name(url):<24} {state:<9} replayed to {row['position']}, {behind} bytes behind, "
              f"lag {shown} (limit {settings.replica_max_lag:g} s)", file=out)
    return 0 if healthy else 1
