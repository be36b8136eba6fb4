"""Bearer tokens on every call that acts for a user (contract v2.0), tried as an attacker would, on an
app in required mode: each bad case gets the contract's status, RFC 6750's WWW-Authenticate and a
problem+json body, changes nothing and leaks nothing."""

from __future__ import annotations

import hashlib
import http.client
import json
import secrets
import time

import pytest

from tests.conftest import DATA, running_app
from tests.integration.conftest import PASSWORD, Api, assert_problem, row_count
from tests.integration.workers import distinct, fresh_request, until_several_workers

LOG = "gunicorn-test_bearer_tokens.log"  # required_app's (tests/integration/conftest.py)
REALM = 'Bearer realm="posterr"'
INVALID_TOKEN = f'{REALM}, error="invalid_token"'
INVALID_REQUEST = f'{REALM}, error="invalid_request"'


@pytest.fixture
def api(required_app) -> Api:
    return Api(required_app)


@pytest.fixture
def alice(api):
    return api.new_account("alice")


@pytest.fixture
def bob(api):
    return api.new_account("bob")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def nothing_written(sql) -> bool:
    return row_count(sql, "posts") == 0 and row_count(sql, "follows") == 0 and row_count(sql, "post_quota") == 0


def acting_calls(alice, bob) -> list[tuple[str, str, dict | None]]:
    """Every call that acts for a user, as alice, with what it sends."""
    return [("POST", "/api/posts", {"content": "hi"}), ("POST", "/api/posts/1/repost", {}),
            ("POST", "/api/posts/1/replies", {"content": "re"}), ("PUT", f"/api/users/{alice.id}/following/{bob.id}", None),
            ("DELETE", f"/api/users/{alice.id}/following/{bob.id}", None), ("GET", "/api/tokens", None),
            ("DELETE", "/api/tokens/1", None)]


def test_a_post_acts_for_the_tokens_user_with_or_without_user_id(api, alice):
    assert api.post("/api/posts", {"content": "mine"}, headers=alice.auth).json()["user_id"] == alice.id
    assert api.post("/api/posts", {"user_id": alice.id, "content": "mine"}, headers=alice.auth).status_code == 201


def test_every_acting_call_without_a_token_is_401(api, sql, alice, bob):
    for method, path, body in acting_calls(alice, bob):
        response = api.request(method, path, json=body)
        assert_problem(response, 401)
        assert response.headers["WWW-Authenticate"] == REALM, path
    assert nothing_written(sql)


BAD_TOKENS = {"empty": "", "10 KB": "pst_" + "a" * 10_240, "non-ASCII": "pst_" + "é" * 43,
              "random pst_": "pst_" + "A" * 43, "random of another shape": secrets.token_urlsafe(32)}


@pytest.mark.parametrize("label", BAD_TOKENS)
def test_a_bad_token_is_401_invalid_token_on_every_call(api, sql, alice, bob, label):
    token = BAD_TOKENS[label]
    for method, path, body in [*acting_calls(alice, bob), ("GET", "/api/posts", None)]:
        response = raw_request(api, method, path, [("Authorization", f"Bearer {token}")], body)
        assert response.status == 401, (path, response.status)
        assert response.getheader("WWW-Authenticate") == INVALID_TOKEN
        assert response.getheader("Content-Type") == "application/problem+json"
        assert token[:40] not in response.read().decode("utf-8", "replace") or not token
    assert nothing_written(sql)


def raw_request(api: Api, method: str, path: str, headers: list[tuple[str, str]], body: dict | None = None):
    """Headers exactly as given (two of one name, raw bytes), which requests does not send."""
    host, port = api.base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.putrequest(method, path)
    for name, value in headers:
        connection.putheader(name, value.encode("utf-8"))
    payload = b"" if body is None else json.dumps(body).encode()
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(len(payload)))
    connection.endheaders(payload)
    return connection.getresponse()


def test_another_scheme_or_two_headers_are_400_invalid_request(api, sql, alice):
    for headers in ([("Authorization", "Basic YWxpY2U6cGFzc3dvcmQ=")],
                    [("Authorization", f"Bearer {alice.token}"), ("Authorization", f"Bearer {alice.token}")]):
        response = raw_request(api, "POST", "/api/posts", headers, {"content": "hi"})
        assert response.status == 400 and response.getheader("WWW-Authenticate") == INVALID_REQUEST
    assert nothing_written(sql)


def test_a_token_in_the_query_string_or_the_body_is_400_even_a_good_one(api, sql, alice):
    for response in (api.post(f"/api/posts?access_token={alice.token}", {"content": "hi"}),
                     api.get(f"/api/posts?token={alice.token}"),
                     api.post("/api/posts", {"content": "hi", "access_token": alice.token}),
                     api.post("/api/posts", {"content": alice.token}, headers=alice.auth)):
        problem = assert_problem(response, 400)
        assert response.headers["WWW-Authenticate"] == INVALID_REQUEST and alice.token not in problem["detail"]
    assert nothing_written(sql)


def test_a_malformed_body_is_400_before_the_token_is_looked_at(api):
    response = api.post("/api/posts", data=b"{not json", headers={**bearer("pst_" + "A" * 43),
                                                                   "Content-Type": "application/json"})
    assert assert_problem(response, 400)["type"] == "/problems/bad-request"


def test_a_read_token_cannot_write(api, sql, alice):
    reader = api.token("alice", scopes=["read"])
    for method, path, body in [("POST", "/api/posts", {"content": "hi"}), ("PUT", f"/api/users/{alice.id}/following/9", None),
                               ("DELETE", "/api/tokens/1", None)]:
        response = api.request(method, path, json=body, headers=bearer(reader))
        assert_problem(response, 403)
        assert response.headers["WWW-Authenticate"] == f'{REALM}, error="insufficient_scope", scope="write"'
    assert api.get("/api/tokens", headers=bearer(reader)).status_code == 200
    assert nothing_written(sql)


def test_a_token_cannot_act_for_another_user(api, sql, alice, bob):
    assert_problem(api.post("/api/posts", {"user_id": bob.id, "content": "as bob"}, headers=alice.auth), 403)
    assert_problem(api.put(f"/api/users/{bob.id}/following/{alice.id}", headers=alice.auth), 403)
    assert_problem(api.delete(f"/api/users/{bob.id}/following/{alice.id}", headers=alice.auth), 403)
    assert nothing_written(sql)
    assert api.put(f"/api/users/{alice.id}/following/{bob.id}", headers=alice.auth).status_code == 204


def test_checks_come_in_the_contracts_order(api, alice):
    """400 body, then 401/403, then 422: a bad token with bad content is 401, a good one 422."""
    assert_problem(api.post("/api/posts", {"content": ""}, headers=bearer("pst_" + "B" * 43)), 401)
    assert_problem(api.post("/api/posts", {"user_id": 999, "content": ""}, headers=alice.auth), 403)
    assert_problem(api.post("/api/posts", {"content": ""}, headers=alice.auth), 422)
    assert_problem(api.post("/api/posts", {"user_id": "me", "content": "x"}, headers=alice.auth), 422)


def test_tokens_are_listed_newest_first_without_the_token(api, alice):
    second = api.post("/api/tokens", {"username": "alice", "password": PASSWORD, "name": "phone"}).json()
    listed = api.get("/api/tokens", headers=alice.auth)
    assert listed.status_code == 200
    tokens = listed.json()
    assert [token["id"] for token in tokens] == [second["id"], second["id"] - 1]
    assert tokens[0] == {"id": second["id"], "name": "phone", "scopes": ["read", "write"],
                         "created_at": second["created_at"], "expires_at": None, "last_used_at": None,
                         "hint": "pst_" + second["token"][-4:]}
    assert tokens[1]["last_used_at"].endswith(":00.000000Z")  # to the minute: alice's token was just used
    assert alice.token not in listed.text and second["token"] not in listed.text


def test_a_revoked_token_is_refused_by_every_worker(api, sql, alice, bob):
    """A write checks its token in its own transaction: refused at once on every worker, whatever
    they cached; a read within a second of the revocation, on every worker."""
    spare = api.post("/api/tokens", {"username": "alice", "password": PASSWORD}).json()
    url = f"{api.base}/api/posts"
    until_several_workers(lambda: fresh_request("GET", url, headers=bearer(spare["token"])))  # cached by each
    revoked_at = time.monotonic()
    assert api.delete(f"/api/tokens/{spare['id']}", headers=alice.auth).status_code == 204
    writes = until_several_workers(lambda: fresh_request("POST", url, json={"content": "x"}, headers=bearer(spare["token"])))
    assert len(distinct(writes)) == 2 and {response.status_code for response, _ in writes} == {401}
    invalid = until_several_workers(lambda: fresh_request("POST", url, json={"content": ""}, headers=bearer(spare["token"])))
    assert {response.status_code for response, _ in invalid} == {401}  # 401 comes before 422
    follows = until_several_workers(lambda: fresh_request("PUT", f"{api.base}/api/users/{alice.id}/following/{bob.id}",
                                                          headers=bearer(spare["token"])))
    assert {response.status_code for response, _ in follows} == {401}
    assert nothing_written(sql)
    time.sleep(max(0.0, revoked_at + 1.0 - time.monotonic()))  # the contract's bound, not a synchronisation
    reads = until_several_workers(lambda: fresh_request("GET", url, headers=bearer(spare["token"])))
    assert {response.status_code for response, _ in reads} == {401}
    assert_problem(api.delete(f"/api/tokens/{spare['id']}", headers=alice.auth), 404)  # no longer live


def test_a_revoked_token_gets_no_replay_of_what_it_created(api, alice):
    """A replay of an Idempotency-Key's first 201 acknowledges the write again: a token revoked since
    gets 401 on every worker, however recently a worker looked it up."""
    spare = api.post("/api/tokens", {"username": "alice", "password": PASSWORD}).json()
    headers = {"Idempotency-Key": "again", **bearer(spare["token"])}
    url = f"{api.base}/api/posts"
    assert api.post("/api/posts", {"content": "once"}, headers=headers).status_code == 201
    until_several_workers(lambda: fresh_request("GET", url, headers=bearer(spare["token"])))  # cached by each
    assert api.delete(f"/api/tokens/{spare['id']}", headers=alice.auth).status_code == 204
    replays = until_several_workers(lambda: fresh_request("POST", url, json={"content": "once"}, headers=headers))
    assert {response.status_code for response, _ in replays} == {401}


def test_an_expired_token_is_refused(api, sql, alice):
    sql.execute("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE user_id = %s", (alice.id,))
    response = api.post("/api/posts", {"content": "late"}, headers=alice.auth)
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"] == INVALID_TOKEN


def test_another_users_token_cannot_be_revoked(api, alice, bob):
    bobs = api.get("/api/tokens", headers=bob.auth).json()[0]["id"]
    assert_problem(api.delete(f"/api/tokens/{bobs}", headers=alice.auth), 404)
    assert_problem(api.delete("/api/tokens/999999", headers=alice.auth), 404)
    assert api.post("/api/posts", {"content": "still mine"}, headers=bob.auth).status_code == 201


def test_idempotency_keys_are_scoped_to_the_acting_user(api, alice, bob):
    headers = {"Idempotency-Key": "same-key"}
    first = api.post("/api/posts", {"content": "same"}, headers={**headers, **alice.auth})
    second = api.post("/api/posts", {"content": "same"}, headers={**headers, **bob.auth})
    assert first.status_code == second.status_code == 201 and first.json()["id"] != second.json()["id"]
    replay = api.post("/api/posts", {"content": "same"}, headers={**headers, **alice.auth})
    assert replay.json() == first.json()


def test_preflight_allows_authorization_and_answers_expose_www_authenticate(api):
    preflight = api.request("OPTIONS", "/api/tokens", headers={"Origin": "http://app.example",
                                                               "Access-Control-Request-Method": "GET"})
    assert "authorization" in preflight.headers["Access-Control-Allow-Headers"].lower()
    exposed = api.get("/api/tokens").headers["Access-Control-Expose-Headers"].lower()
    assert "www-authenticate" in exposed


def test_no_secret_reaches_the_logs_or_redis_or_the_idempotency_records(api, sql, redis_client, alice):
    api.post("/api/posts", {"content": "keyed"}, headers={"Idempotency-Key": "k", **alice.auth}).raise_for_status()
    api.post("/api/users", {"username": "carol", "password": PASSWORD}, headers={"Idempotency-Key": "k"})
    api.post("/api/tokens", {"username": "alice", "password": "wrong wrong wrong"})
    digest = hashlib.sha256(alice.token.encode()).hexdigest()
    secrets_ = (alice.token, alice.token[4:], PASSWORD, digest, "wrong wrong wrong")
    seen = {"log": (DATA / LOG).read_text(), "metrics": api.get("/metrics").text,
            "redis keys": " ".join(key.decode() for key in redis_client.scan_iter("*")),
            "idempotency records": " ".join(str(row) for row in sql.execute("SELECT * FROM idempotency_keys"))}
    for where, text in seen.items():
        assert not [secret for secret in secrets_ if secret in text], where


def test_legacy_mode_still_checks_a_token_that_is_sent(servers, sql):
    with running_app(servers, "gunicorn-bearer-legacy.log", POSTERR_AUTH="legacy") as base:
        legacy = Api(base)
        old = legacy.new_user("old")["id"]
        assert legacy.post("/api/posts", {"user_id": old, "content": "v1.1"}).status_code == 201
        assert_problem(legacy.post("/api/posts", {"user_id": old, "content": "x"}, headers=bearer("pst_" + "C" * 43)), 401)
        account = legacy.new_account("modern")
        assert_problem(legacy.post("/api/posts", {"user_id": old, "content": "x"}, headers=account.auth), 403)
        assert legacy.post("/api/posts", {"content": "with my token"}, headers=account.auth).json()["user_id"] == account.id
