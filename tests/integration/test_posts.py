"""Posts in the API (docs/api.md): creating posts, reposts and quotes, and reading one."""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import psycopg
import pytest

from posterr.keys import daily_quota_key
from tests.conftest import running_app
from tests.integration.conftest import Api, assert_problem, row_count
from tests.integration.pglocks import waiting_behind
from tests.integration.workers import sessions_on_several_workers

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


def nothing_written(sql) -> bool:
    return row_count(sql, "posts") == 0 and row_count(sql, "post_quota") == 0


def test_create_post(api, alice):
    response = api.post("/api/posts", {"user_id": alice, "content": "  Hello,\tworld  "})
    assert response.status_code == 201
    post = response.json()
    assert response.headers["Location"] == f"/api/posts/{post['id']}"
    assert post == {"id": post["id"], "user_id": alice, "username": "alice", "type": "post",
                    "content": "  Hello,\tworld  ", "repost_id": None, "original": None,
                    "reply_to_id": None, "reply_to": None, "repost_count": 0, "quote_count": 0, "reply_count": 0,
                    "created_at": post["created_at"]}
    assert TIMESTAMP.match(post["created_at"])
    assert api.get(f"/api/posts/{post['id']}").json() == post
    assert api.get(f"/api/users/{alice}").json()["posts_count"] == 1


def test_the_old_frontends_post_body_creates_a_post(api, alice):
    response = api.post("/api/posts", {"user_id": alice, "content": "hi", "repost_id": None})
    assert response.status_code == 201 and response.json()["type"] == "post"


@pytest.mark.parametrize("content", ["", " ", "\n\t ", "\u2003\u3000", "a" * 778, "a\x00b", 7, ["x"], {"t": 1},
                                     "\u200b\u200b", "\ufeff \u2060", "a\u202eevil\u001b[31m\r\nfake", "del\x7f"])
def test_bad_content_is_422_and_writes_nothing(api, sql, alice, content):
    problem = assert_problem(api.post("/api/posts", {"user_id": alice, "content": content}), 422)
    assert problem["errors"][0]["field"] == "content"
    assert nothing_written(sql)


@pytest.mark.parametrize("content", ["\u200b\u200b", "a\u202eevil\u001b[31m\r\nfake", "bell\x07"])
def test_a_quote_with_invisible_or_control_content_is_422(api, sql, alice, content):
    original = api.new_post(alice)
    problem = assert_problem(api.post("/api/posts", {"user_id": alice, "content": content,
                                                     "repost_id": original["id"]}), 422)
    assert problem["errors"][0]["field"] == "content"
    assert row_count(sql, "posts") == 1


def test_direction_marks_inside_text_are_kept(api, alice):
    content = "\u200fمرحبا \u202eabc\u202c and a\u200db"
    created = api.new_post(alice, content)
    assert created["content"] == content
    assert api.get(f"/api/posts/{created['id']}").json()["content"] == content


def test_a_post_needs_content(api, sql, alice):
    assert_problem(api.post("/api/posts", {"user_id": alice}), 422)
    assert_problem(api.post("/api/posts", {"user_id": alice, "content": None}), 422)
    assert nothing_written(sql)


def test_content_counts_code_points(api, alice):
    assert api.post("/api/posts", {"user_id": alice, "content": "😀" * 777}).status_code == 201


@pytest.mark.parametrize("user_id", [None, "1", 1.0, 1.5, True, 0, -3, [1], 2**63])
def test_bad_user_id_is_422_and_writes_nothing(api, sql, alice, user_id):
    body = {"content": "hi"} if user_id is None else {"user_id": user_id, "content": "hi"}
    problem = assert_problem(api.post("/api/posts", body), 422)
    assert problem["errors"][0]["field"] == "user_id"
    assert nothing_written(sql)


@pytest.mark.parametrize("repost_id", ["1", 1.0, True, 0, -1])
def test_bad_repost_id_is_422(api, sql, alice, repost_id):
    assert_problem(api.post("/api/posts", {"user_id": alice, "repost_id": repost_id}), 422)
    assert nothing_written(sql)


def test_unknown_user_is_404_and_writes_nothing(api, sql):
    assert_problem(api.post("/api/posts", {"user_id": 99, "content": "hi"}), 404)
    assert nothing_written(sql)


def test_validation_comes_before_unknown_user(api):
    assert_problem(api.post("/api/posts", {"user_id": 99, "content": ""}), 422)


@pytest.mark.parametrize("no_content", [{}, {"content": None}, {"content": ""}])
def test_repost_shows_the_reposted_text_and_original(api, alice, bob, no_content):
    original = api.new_post(alice, "original words")
    response = api.post("/api/posts", {"user_id": bob, "repost_id": original["id"], **no_content})
    assert response.status_code == 201
    repost = response.json()
    assert repost["type"] == "repost" and repost["repost_id"] == original["id"]
    assert repost["content"] == "original words" and repost["username"] == "bob"
    assert repost["original"] == {key: original[key] for key in
                                  ("id", "user_id", "username", "type", "content", "created_at")}
    assert api.get(f"/api/posts/{original['id']}").json()["repost_count"] == 1


def test_repost_route_is_the_same_as_a_repost_through_posts(api, alice, bob):
    original = api.new_post(alice, "words")
    response = api.post(f"/api/posts/{original['id']}/repost", {"user_id": bob})
    assert response.status_code == 201
    assert response.json()["type"] == "repost" and response.json()["content"] == "words"
    assert response.headers["Location"] == f"/api/posts/{response.json()['id']}"


def test_quote_keeps_its_own_comment(api, alice, bob):
    original = api.new_post(alice, "original words")
    quote = api.new_post(bob, "my comment", repost_id=original["id"])
    assert quote["type"] == "quote" and quote["content"] == "my comment"
    assert quote["original"]["content"] == "original words"
    counts = api.get(f"/api/posts/{original['id']}").json()
    assert (counts["repost_count"], counts["quote_count"]) == (0, 1)


def test_a_repost_cannot_be_reposted(api, sql, alice, bob):
    repost = api.new_post(bob, None, repost_id=api.new_post(alice)["id"])
    problem = assert_problem(api.post(f"/api/posts/{repost['id']}/repost", {"user_id": alice}), 422)
    assert problem["errors"][0]["field"] == "repost_id"
    assert row_count(sql, "posts") == 2


def test_a_quote_cannot_be_quoted_but_can_be_reposted(api, alice, bob):
    quote = api.new_post(bob, "comment", repost_id=api.new_post(alice)["id"])
    assert_problem(api.post("/api/posts", {"user_id": alice, "content": "again", "repost_id": quote["id"]}), 422)
    repost = api.new_post(alice, None, repost_id=quote["id"])
    assert repost["content"] == "comment" and repost["original"]["type"] == "quote"


def test_a_repost_can_be_quoted_and_its_original_shows_the_reposted_text(api, alice, bob):
    repost = api.new_post(bob, None, repost_id=api.new_post(alice, "first words")["id"])
    quote = api.new_post(alice, "about that repost", repost_id=repost["id"])
    assert quote["original"]["type"] == "repost" and quote["original"]["content"] == "first words"
    assert api.get(f"/api/posts/{repost['id']}").json()["quote_count"] == 1


def test_reposting_twice_is_409_and_takes_no_quota(api, sql, alice, bob):
    original = api.new_post(alice)
    api.new_post(bob, None, repost_id=original["id"])
    assert_problem(api.post(f"/api/posts/{original['id']}/repost", {"user_id": bob}), 409)
    assert row_count(sql, "posts") == 2
    for _ in range(4):
        api.new_post(bob, "still allowed")


def test_own_posts_may_be_reposted_and_quoted_several_times(api, alice):
    original = api.new_post(alice)
    api.new_post(alice, None, repost_id=original["id"])
    api.new_post(alice, "one", repost_id=original["id"])
    api.new_post(alice, "two", repost_id=original["id"])
    counts = api.get(f"/api/posts/{original['id']}").json()
    assert (counts["repost_count"], counts["quote_count"]) == (1, 2)
    assert api.get(f"/api/users/{alice}").json()["posts_count"] == 4


def test_unknown_target_is_404(api, sql, alice):
    assert_problem(api.post("/api/posts", {"user_id": alice, "repost_id": 12345}), 404)
    assert_problem(api.post("/api/posts/12345/repost", {"user_id": alice}), 404)
    assert_problem(api.post("/api/posts/abc/repost", {"user_id": alice}), 404)
    assert nothing_written(sql)


def test_unknown_user_comes_before_conflict(api, alice):
    original = api.new_post(alice)
    assert_problem(api.post(f"/api/posts/{original['id']}/repost", {"user_id": 999}), 404)


@pytest.mark.parametrize("path", ["/api/posts/999", "/api/posts/0", "/api/posts/x", "/api/posts/-4"])
def test_unknown_post_is_404(api, path):
    assert_problem(api.get(path), 404)


def test_repost_route_needs_a_json_body(api, alice):
    original = api.new_post(alice)
    assert_problem(api.request("POST", f"/api/posts/{original['id']}/repost", data=b"{oops",
                               headers={"Content-Type": "application/json"}), 400)
    assert_problem(api.post(f"/api/posts/{original['id']}/repost", {}), 422)


@pytest.fixture(scope="module")
def patient_app(servers):
    """The app with a statement timeout and a request watchdog far longer than any lock a test holds
    (the default 5 s statement timeout could cancel a statement the test keeps waiting, and the
    outcome would depend on timing)."""
    with running_app(servers, "gunicorn-patient.log", POSTERR_STATEMENT_TIMEOUT_MS="600000",
                     POSTERR_REQUEST_TIMEOUT="600") as base:
        yield base


@pytest.mark.parametrize("threads", [4, 12])
def test_simultaneous_duplicate_reposts_create_one_and_give_the_quota_back(patient_app, sql, servers, redis_client,
                                                                          threads):
    """One user reposts one post from many connections at once (both routes, both workers). The
    author's row is locked meanwhile, so every request passes the "already reposted?" check and
    reaches the insert before any commits: the unique index decides, every time. Exactly one 201;
    every other is 409 problem+json (a duplicate is a conflict, whatever the quota: 12 racers are more
    than the daily limit of 5, yet the user is not over it); and no loser keeps a unit of the day's
    quota (post_quota, the Redis counter): 4 more creations succeed, the fifth is 429."""
    api = Api(patient_app)
    alice, bob = api.new_user("alice")["id"], api.new_user("bob")["id"]
    original = api.new_post(alice, "wanted")
    sessions = sessions_on_several_workers(patient_app, threads, at_most_per_worker=(threads + 1) // 2)
    barrier = threading.Barrier(threads)

    def repost(n: int):
        with sessions[n] as session:
            barrier.wait(timeout=30)
            if n % 2:
                return session.post(f"{patient_app}/api/posts/{original['id']}/repost", json={"user_id": bob},
                                    timeout=60)
            return session.post(f"{patient_app}/api/posts", json={"user_id": bob, "repost_id": original["id"]},
                                timeout=60)

    with psycopg.connect(servers.database_url) as locker, ThreadPoolExecutor(threads) as pool:
        locker.execute("SELECT 1 FROM users WHERE id = %s FOR UPDATE", (bob,))
        futures = [pool.submit(repost, n) for n in range(threads)]
        # Until every request has either answered or is waiting (on the lock, or on the insert
        # that waits on it): none can have seen another's repost.
        deadline = time.monotonic() + 30
        while waiting_behind(sql, locker.info.backend_pid, "INSERT") + sum(f.done() for f in futures) < threads:
            assert time.monotonic() < deadline, "the reposts neither answered nor queued on the lock"
            time.sleep(0.01)  # polling interval
        locker.rollback()
        responses = [f.result(timeout=60) for f in futures]
    assert sorted(r.status_code for r in responses) == [201] + [409] * (threads - 1), \
        [(r.status_code, r.text) for r in responses]
    for loser in (r for r in responses if r.status_code == 409):
        assert_problem(loser, 409)
    created = next(r.json() for r in responses if r.status_code == 201)
    assert created["type"] == "repost" and created["repost_id"] == original["id"]
    assert sql.execute("SELECT count(*) FROM posts WHERE user_id = %s", (bob,)).fetchone()[0] == 1
    assert api.get(f"/api/posts/{original['id']}").json()["repost_count"] == 1
    day = datetime.now(UTC).date()
    assert sql.execute("SELECT used FROM post_quota WHERE user_id = %s AND day = %s", (bob, day)).fetchone()[0] == 1
    assert int(redis_client.get(daily_quota_key(bob, day))) == 1
    for n in range(4):  # the day's remaining creations, and not one more
        api.new_post(bob, f"after the race {n}")
    assert_problem(api.post("/api/posts", {"user_id": bob, "content": "sixth"}), 429)
