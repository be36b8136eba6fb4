"""Accounts and logging in (contract v2.0, "Accounts and tokens"), on an app in required mode: passwords
stored only as Argon2id hashes, tokens issued once and stored as digests, failed logins limited per
username and per client across workers, and refused (503) when they cannot be counted."""

from __future__ import annotations

import hashlib
import re
import time
import unicodedata
from datetime import datetime, timedelta

import pytest

from tests.conftest import running_app
from tests.integration.conftest import PASSWORD, Api, app_behind_refusing_proxy, assert_problem, row_count
from tests.integration.workers import fresh_request, until_several_workers

TOKEN = re.compile(r"pst_[0-9A-Za-z]{43}")


@pytest.fixture
def api(required_app) -> Api:
    return Api(required_app)


def login(api: Api, username: str, password: str = PASSWORD, **options):
    return api.post("/api/tokens", {"username": username, "password": password, **options})


def test_an_account_keeps_only_an_argon2id_hash_of_its_password(api, sql):
    response = api.post("/api/users", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 201
    assert "password" not in response.json() and PASSWORD not in response.text
    (stored,) = sql.execute("SELECT password_hash FROM users WHERE username = 'alice'").fetchone()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


@pytest.mark.parametrize("password", [None, "a" * 11, "a" * 1025, "\x00" * 12, "twelve chars\x00", 123456789012, ["x"]])
def test_a_bad_password_is_422_and_makes_no_account(api, sql, password):
    body = {"username": "alice"} if password is None else {"username": "alice", "password": password}
    problem = assert_problem(api.post("/api/users", body), 422)
    assert problem["errors"][0]["field"] == "password"
    assert row_count(sql, "users") == 0
    if isinstance(password, str):
        assert password not in problem["detail"]


def test_any_unicode_makes_a_password_and_the_same_text_typed_otherwise_logs_in(api):
    password = "Ça fait 🔑 café"
    api.post("/api/users", {"username": "unicode", "password": password}).raise_for_status()
    assert login(api, "unicode", unicodedata.normalize("NFD", password)).status_code == 201
    assert api.post("/api/users", {"username": "longest", "password": "é" * 1024}).status_code == 201


def test_a_token_is_shown_once_and_stored_as_its_digest(api, sql):
    api.new_account("alice")
    response = login(api, "alice", name="laptop", expires_in=3600)
    assert response.status_code == 201 and response.headers["Cache-Control"] == "no-store"
    issued = response.json()
    assert TOKEN.fullmatch(issued["token"])
    assert issued["scopes"] == ["read", "write"] and issued["name"] == "laptop"
    lifetime = datetime.fromisoformat(issued["expires_at"]) - datetime.fromisoformat(issued["created_at"])
    assert timedelta(seconds=3599) < lifetime < timedelta(seconds=3601)
    digest = hashlib.sha256(issued["token"].encode()).digest()
    assert sql.execute("SELECT count(*) FROM api_tokens WHERE digest = %s", (digest,)).fetchone()[0] == 1
    stored = sql.execute("SELECT t::text FROM api_tokens t").fetchall()
    assert not any(issued["token"] in row or issued["token"][4:] in row for (row,) in stored)
    listed = api.get("/api/tokens", headers={"Authorization": f"Bearer {issued['token']}"})
    assert issued["token"] not in listed.text


@pytest.mark.parametrize("options", [{"scopes": ["admin"]}, {"scopes": []}, {"scopes": "read"}, {"scopes": ["read", "read"]},
                                     {"name": "n" * 101}, {"name": 7}, {"expires_in": 59}, {"expires_in": 31_536_001},
                                     {"expires_in": "60"}, {"expires_in": True}])
def test_bad_token_options_are_422_and_issue_nothing(api, sql, options):
    api.post("/api/users", {"username": "alice", "password": PASSWORD}).raise_for_status()
    assert_problem(login(api, "alice", **options), 422)
    assert row_count(sql, "api_tokens") == 0


def test_a_read_only_token_has_only_that_scope(api):
    api.new_account("alice")
    assert login(api, "alice", scopes=["read"]).json()["scopes"] == ["read"]


def test_a_wrong_password_and_an_unknown_username_get_the_same_401(api):
    api.new_account("alice")
    answers = [login(api, "alice", "not the password!"), login(api, "nobody"), login(api, "not a name!")]
    bodies = [assert_problem(response, 401) for response in answers]
    assert all(response.headers["WWW-Authenticate"] == 'Bearer realm="posterr"' for response in answers)
    assert len({(body["type"], body["detail"]) for body in bodies}) == 1


def test_an_account_without_a_password_gets_no_token(servers, sql):
    with running_app(servers, "gunicorn-accounts-legacy.log", POSTERR_AUTH="legacy") as base:
        legacy = Api(base)
        assert legacy.post("/api/users", {"username": "old"}).status_code == 201
        assert_problem(login(legacy, "old"), 401)


def test_the_eleventh_failed_login_in_a_row_is_429_even_with_the_right_password(api):
    """Ten failures for one username, spread over every worker on fresh connections: the eleventh
    attempt is refused before the password is looked at."""
    api.new_account("alice")
    failures = until_several_workers(lambda: fresh_request(
        "POST", f"{api.base}/api/tokens", json={"username": "alice", "password": "guess guess guess"}),
        attempts=10, at_once=2)
    assert len(failures) <= 10 and all(response.status_code == 401 for response, _ in failures)
    for _ in range(10 - len(failures)):
        assert login(api, "alice", "guess guess guess").status_code == 401
    refused = login(api, "alice")
    assert_problem(refused, 429)
    assert 0 < int(refused.headers["Retry-After"]) <= 900


def test_failed_logins_are_limited_per_client_across_usernames(api):
    api.new_account("alice")
    for n in range(10):
        assert login(api, f"nobody{n}", "guess guess guess").status_code == 401
    assert_problem(login(api, "alice"), 429)


@pytest.fixture
def refusing_redis(servers):
    """An app in required mode reaching Redis through a proxy that the test makes refuse."""
    with app_behind_refusing_proxy(servers, "gunicorn-accounts-refusals.log", POSTERR_AUTH="required") as found:
        yield found


def test_a_login_is_503_while_its_failures_cannot_be_counted(refusing_redis, sql):
    api, proxy = refusing_redis
    account = api.new_account("alice")
    proxy.refuse()
    for password in (PASSWORD, "guess guess guess"):
        assert_problem(login(api, "alice", password), 503)
    assert row_count(sql, "api_tokens") == 1  # only the one issued before
    # A token already issued still works: its check needs PostgreSQL only.
    assert api.post("/api/posts", {"content": "still here"}, headers=account.auth).status_code == 201
    proxy.resume()
    # Each worker tries Redis again once its breaker's 50 ms are over: logins come back.
    deadline = time.monotonic() + 5
    while (status := login(api, "alice").status_code) == 503 and time.monotonic() < deadline:
        pass
    assert status == 201
