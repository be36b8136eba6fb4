"""`replicas`: each read replica's state and lag, checked now against the primary."""

from __future__ import annotations

import psycopg
from psycopg.rows import dict_row

from posterr.config import Settings
from posterr.db import Session, load_queries, server_name
from posterr.replicas import lsn


def register(commands) -> None:
    commands.add_parser("replicas", help="each read replica's state and lag, checked now").set_defaults(run=replicas)


def replicas(settings: Settings, _args, out) -> int:
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
