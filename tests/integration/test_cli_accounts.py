"""`python -m posterr tokens …` and `users set-password`, against the suite's servers and app."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.integration.conftest import assert_problem


@pytest.fixture
def run(run_cli):
    return run_cli


def set_password(servers, username: str, typed: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": servers.database_url, "REDIS_URL": servers.redis_url}
    return subprocess.run([sys.executable, "-m", "posterr", "users", "set-password", username], input=typed,
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=60, check=False)


def test_an_issued_token_acts_for_its_user_until_revoked(run, api):
    alice = api.new_user("alice")["id"]
    token = run("tokens", "issue", "alice", "--name", "load test").strip()
    headers = {"Authorization": f"Bearer {token}"}
    assert api.post("/api/posts", {"content": "from the CLI's token"}, headers=headers).json()["user_id"] == alice
    listed = run("tokens", "list", "alice")
    assert "load test" in listed and "pst_" + token[-4:] in listed and token not in listed
    token_id = listed.splitlines()[1].split()[0]
    assert run("tokens", "revoke", token_id) == f"revoked token {token_id}\n"
    assert_problem(api.post("/api/posts", {"content": "revoked"}, headers=headers), 401)
    with pytest.raises(SystemExit) as refused:
        run("tokens", "revoke", token_id)
    assert refused.value.code == 1


def test_every_token_of_a_user_is_revoked_at_once(run, api):
    api.new_user("alice")
    api.new_user("bob")
    tokens = [run("tokens", "issue", "alice", "--scopes", "read").strip() for _ in range(3)]
    bobs = run("tokens", "issue", "bob").strip()
    assert run("tokens", "revoke", "--user", "alice") == "revoked 3 live token(s) of alice\n"
    for token in tokens:
        assert_problem(api.get("/api/tokens", headers={"Authorization": f"Bearer {token}"}), 401)
    assert api.get("/api/tokens", headers={"Authorization": f"Bearer {bobs}"}).status_code == 200


def test_bad_options_and_unknown_users_stop_with_a_message(run, api):
    api.new_user("alice")
    for argv, message in ((("tokens", "issue", "nobody"), "no user named"),
                          (("tokens", "issue", "alice", "--scopes", "admin"), "scopes"),
                          (("tokens", "issue", "alice", "--expires-in", "5"), "expires_in")):
        with pytest.raises(SystemExit, match=message):
            run(*argv)


def test_set_password_reads_standard_input_and_the_account_logs_in(servers, api):
    """An account made without a password (legacy mode) gets one from an operator, then a token."""
    api.new_user("old")
    assert_problem(api.post("/api/tokens", {"username": "old", "password": "a new long password"}), 401)
    done = set_password(servers, "old", "a new long password\n")
    assert done.returncode == 0 and "a new long password" not in done.stdout + done.stderr
    assert api.post("/api/tokens", {"username": "old", "password": "a new long password"}).status_code == 201
    too_short = set_password(servers, "old", "short\n")
    assert too_short.returncode != 0 and "12 to 1024" in too_short.stderr
