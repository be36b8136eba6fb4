"""A commit that no synchronous standby confirmed is not acknowledged: under synchronous replication
(Patroni's synchronous_mode_strict) PostgreSQL answers a COMMIT whose wait for the standby was
cancelled with success and a warning. The app answers 503 with Retry-After instead of 201, still does
the write's cache work (the write is on the primary), and a retry with the same Idempotency-Key gets
the one write. Here the standby that never confirms is a synchronous_standby_names naming nobody.

The warning is no signal to rely on: PostgreSQL translates it (lc_messages) and sends none at all to a
session whose client_min_messages is `error`, a role's or database's setting an operator may well
have. The app knows from its own cancel, so the test runs with the app's role set so too."""

from __future__ import annotations

import re
import threading
from contextlib import contextmanager

import psycopg
import pytest

from tests.cluster.conftest import wait_for
from tests.conftest import running_app
from tests.integration.conftest import Api, assert_problem, row_count

NOBODY = "posterr_no_such_standby"


@contextmanager
def no_standby_confirms(sql, database_url: str):
    """Every commit that writes waits for a standby that never comes, until the context ends."""
    sql.execute(f"ALTER SYSTEM SET synchronous_standby_names = '{NOBODY}'")
    sql.execute("ALTER SYSTEM SET synchronous_commit = on")  # the suite's servers run with it off
    sql.execute("SELECT pg_reload_conf()")
    try:
        # The checkpointer tells the backends that a synchronous standby is named, some time after the
        # reload: a probe commit that waits (and is cancelled) shows it has.
        wait_for(lambda: commit_waits(database_url), 10, "commits to wait for the standby")
        yield
    finally:
        sql.execute("ALTER SYSTEM RESET synchronous_standby_names")
        sql.execute("ALTER SYSTEM RESET synchronous_commit")
        sql.execute("SELECT pg_reload_conf()")
        wait_for(lambda: not commit_waits(database_url), 10, "commits to stop waiting")


def commit_waits(database_url: str) -> bool:
    """Whether a commit that writes waits for a standby (it is cancelled after 0.2 s)."""
    warnings = []
    # Its own client_min_messages: the role's may be `error` (the `impatient` fixture), which would
    # silence the warning this probe looks for.
    with psycopg.connect(database_url, autocommit=True, options="-c client_min_messages=warning") as conn:
        conn.add_notice_handler(lambda diagnostic: warnings.append(diagnostic.message_primary))
        cancel = threading.Timer(0.2, conn.cancel_safe)
        cancel.start()
        try:
            conn.execute("CREATE TEMPORARY TABLE probe (x int)")  # written to the WAL: its commit waits
        finally:
            cancel.cancel()
            cancel.join()
    return any("synchronous replication" in warning for warning in warnings)


@pytest.fixture(params=["default", "error"], ids=["warnings_sent", "client_min_messages_error"])
def impatient(servers, sql, request):
    """The app with a short statement_timeout: the timeout is what cancels a commit's wait. With the
    app's role set to client_min_messages = error (on its connections, all opened after the setting),
    PostgreSQL sends it no warning when the wait is cancelled."""
    if not servers.owned:
        pytest.skip("needs the suite's own PostgreSQL (it changes a server-wide setting)")
    if request.param != "default":
        sql.execute(f"ALTER ROLE CURRENT_USER SET client_min_messages = {request.param}")
    try:
        with running_app(servers, "unconfirmed-commits.log", POSTERR_STATEMENT_TIMEOUT_MS="400") as base:
            yield Api(base)
    finally:
        sql.execute("ALTER ROLE CURRENT_USER RESET client_min_messages")


def unconfirmed_commits(api: Api) -> float:
    """posterr_unconfirmed_commits_total, summed over the app's workers."""
    found = re.search(r"^posterr_unconfirmed_commits_total (\S+)$", api.get("/metrics").text, re.MULTILINE)
    return float(found[1]) if found else 0.0


def test_a_write_no_standby_confirmed_is_503_and_its_retry_gets_it_once(impatient, sql, servers):
    alice = impatient.new_user("alice")["id"]
    assert impatient.get(f"/api/users/{alice}").json()["posts_count"] == 0  # now cached
    keyed = {"Idempotency-Key": "post-1"}
    assert unconfirmed_commits(impatient) == 0

    with no_standby_confirms(sql, servers.database_url):
        answer = impatient.post("/api/posts", {"user_id": alice, "content": "maybe"}, headers=keyed)
        problem = assert_problem(answer, 503)
        assert answer.headers["Retry-After"] == "2"
        assert "Idempotency-Key" in problem["detail"]
        # Reads go on, and the write's cache work ran: the cached profile was dropped.
        assert impatient.get(f"/api/users/{alice}").json()["posts_count"] == 1

    retried = impatient.post("/api/posts", {"user_id": alice, "content": "maybe"}, headers=keyed)
    assert retried.status_code == 201 and retried.headers["Idempotent-Replayed"] == "true"
    assert row_count(sql, "posts") == 1
    assert unconfirmed_commits(impatient) >= 1


def test_an_unconfirmed_creation_that_a_fail_over_loses_does_not_use_up_the_day(impatient, sql, servers):
    """The 5th post of the day is answered 503 (no standby confirmed it), and the fail-over that
    follows loses it: its retry must create it, not meet a daily counter that Redis raised for a post
    PostgreSQL no longer has (429 until midnight)."""
    alice = impatient.new_user("alice")["id"]
    for n in range(4):
        impatient.new_post(alice, f"post {n}")
    keyed = {"Idempotency-Key": "the-fifth"}
    with no_standby_confirms(sql, servers.database_url):
        assert_problem(impatient.post("/api/posts", {"user_id": alice, "content": "fifth"}, headers=keyed), 503)
    # What a fail-over to a standby that never received the commit leaves: none of its rows.
    sql.execute("DELETE FROM posts WHERE user_id = %s AND content = 'fifth'", (alice,))
    sql.execute("UPDATE post_quota SET used = used - 1 WHERE user_id = %s", (alice,))
    sql.execute("UPDATE users SET posts_count = posts_count - 1 WHERE id = %s", (alice,))
    sql.execute("DELETE FROM idempotency_keys WHERE key = 'the-fifth'")
    retried = impatient.post("/api/posts", {"user_id": alice, "content": "fifth"}, headers=keyed)
    assert retried.status_code == 201, retried.text
    assert row_count(sql, "posts") == 5
