"""Operator commands, `python -m posterr COMMAND`: one module per command family, each adding its
subcommands with `register` (the function that runs one is its parser's `run` default)."""

from __future__ import annotations

import argparse
import sys

from posterr.cli import accounts, activity, cache, queries, replicas, top
from posterr.config import Settings

COMMANDS = (queries, top, activity, replicas, cache, accounts)


def main(argv: list[str] | None = None, out=sys.stdout) -> None:
    parser = argparse.ArgumentParser(prog="python -m posterr", description=(
        "Operator commands: the named queries and their plans, what the database spends its time on and is "
        "doing now, the read replicas, the Redis cache, and accounts and tokens; against the servers of DATABASE_URL, "
        "DATABASE_REPLICA_URLS and REDIS_URL."))
    commands = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.register(commands)
    args = parser.parse_args(argv)
    settings = None if getattr(args, "offline", False) else Settings.from_env()
    status = args.run(settings, args, out)
    if status:
        sys.exit(status)
