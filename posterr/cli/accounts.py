"""`tokens issue|list|revoke` and `users set-password`: accounts and bearer tokens, for operators.
They run against DATABASE_URL directly (no app server needed); what they change is seen by every
worker within a second (a revoked token: at once by every write)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.rows import dict_row

from posterr import passwords, presenters, validation
from posterr.config import Settings
from posterr.db import Session, load_queries
from posterr.errors import ValidationFailed
from posterr.services import tokens
from posterr.services.pagination import NEWEST_FIRST_START

LISTED_AT_MOST = 1000


def register(commands) -> None:
    tokens_parser = commands.add_parser("tokens", help="issue, list or revoke a user's bearer tokens")
    actions = tokens_parser.add_subparsers(dest="action", required=True)
    issue = actions.add_parser("issue", help="issue a token (printed once, alone on standard output)")
    issue.add_argument("username")
    issue.add_argument("--scopes", default="read,write", help="comma-separated, among read and write (default: both)")
    issue.add_argument("--name", default="", help="what the token is for (up to 100 characters)")
    issue.add_argument("--expires-in", type=int, metavar="SECONDS", help="60 to 31536000; default: never")
    issue.set_defaults(run=issue_token)
    listing = actions.add_parser("list", help="a user's live tokens, newest first (never the tokens themselves)")
    listing.add_argument("username")
    listing.set_defaults(run=list_tokens)
    revoke = actions.add_parser("revoke", help="revoke one token by its id, or every live token of a user")
    target = revoke.add_mutually_exclusive_group(required=True)
    target.add_argument("id", nargs="?", type=int, help="the token's id (as `tokens list` shows it)")
    target.add_argument("--user", metavar="USERNAME", help="revoke every live token of this user")
    revoke.set_defaults(run=revoke_tokens)

    users_parser = commands.add_parser("users", help="accounts")
    user_actions = users_parser.add_subparsers(dest="action", required=True)
    set_password = user_actions.add_parser(
        "set-password", help="set a user's password, read from standard input (never from the command line)")
    set_password.add_argument("username")
    set_password.set_defaults(run=set_user_password)


@contextmanager
def _session(settings: Settings) -> Iterator[Session]:
    """One transaction on the primary, committed when the command succeeds."""
    with psycopg.connect(settings.database_url, row_factory=dict_row, connect_timeout=5) as conn:
        yield Session(conn, load_queries())


def _account(run: Session, username: str) -> dict:
    account = run("account_by_username", username=username)
    if account is None:
        raise SystemExit(f"no user named {username!r}")
    return account


def issue_token(settings: Settings, args, out) -> None:
    try:
        scopes = validation.token_scopes([scope.strip() for scope in args.scopes.split(",") if scope.strip()])
        name = validation.token_name(args.name)
        lifetime = validation.token_lifetime(args.expires_in)
    except ValidationFailed as error:
        raise SystemExit(error.detail) from None
    with _session(settings) as run:
        issued = tokens.issue(run, _account(run, args.username)["id"], scopes, name, lifetime)
    print(f"token {issued['id']} of {args.username} (scopes {','.join(issued['scopes'])}, expires "
          f"{issued['expires_at'] or 'never'}); it is shown once, below", file=sys.stderr)
    print(issued["token"], file=out)


def list_tokens(settings: Settings, args, out) -> None:
    with _session(settings) as run:
        user_id = _account(run, args.username)["id"]
        rows = run("tokens_page", user_id=user_id, limit=LISTED_AT_MOST, before_created_at=NEWEST_FIRST_START[0],
                   before_id=NEWEST_FIRST_START[1])
    print(f"{'id':>8}  {'hint':<8}  {'scopes':<10}  {'created_at':<27}  {'expires_at':<27}  {'last_used_at':<27}  name",
          file=out)
    for token in map(presenters.token, rows):
        print(f"{token['id']:>8}  {token['hint']:<8}  {','.join(token['scopes']):<10}  {token['created_at']:<27}  "
              f"{token['expires_at'] or 'never':<27}  {token['last_used_at'] or 'never':<27}  {token['name']}", file=out)


def revoke_tokens(settings: Settings, args, out) -> int:
    with _session(settings) as run:
        if args.user:
            revoked = run("revoke_user_tokens", user_id=_account(run, args.user)["id"])["revoked"]
            print(f"revoked {revoked} live token(s) of {args.user}", file=out)
            return 0
        if run("revoke_token", id=args.id, user_id=None) is None:
            print(f"no live token {args.id}", file=out)
            return 1
    print(f"revoked token {args.id}", file=out)
    return 0


def set_user_password(settings: Settings, args, out, stdin=None) -> None:
    """The password is the first line of standard input (without its line ending)."""
    line = (stdin or sys.stdin).readline().removesuffix("\n").removesuffix("\r")
    try:
        password_hash = passwords.hashed(passwords.new_password(line))
    except ValidationFailed as error:
        raise SystemExit(error.detail) from None
    with _session(settings) as run:
        account = _account(run, args.username)
        run("set_password_hash", id=account["id"], password_hash=password_hash)
    print(f"password of {account['username']} set", file=out)
