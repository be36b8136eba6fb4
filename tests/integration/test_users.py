"""Users in the API (docs/api.md), over HTTP against the real app."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.integration.conftest import assert_problem, row_count

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


def test_create_user_answers_201_with_the_user_and_its_location(api):
    response = api.post("/api/users", {"username": "Alice1"})
    assert response.status_code == 201
    user = response.json()
    assert response.headers["Location"] == f"/api/users/{user['id']}"
    assert user["username"] == "Alice1"
    assert TIMESTAMP.match(user["created_at"])
    assert re.fullmatch(r"[A-Z][a-z]+ [1-9]\d?, \d{4}", user["joined"])
    assert (user["posts_count"], user["followers_count"], user["following_count"]) == (0, 0, 0)
    assert "followed_by_viewer" not in user
    assert api.get(f"/api/users/{user['id']}").json() == user


@pytest.mark.parametrize("body", [
    {}, {"username": None}, {"username": ""}, {"username": "a" * 15}, {"username": "abc\n"},
    {"username": "ab c"}, {"username": "ab-c"}, {"username": "é"}, {"username": 123},
    {"username": ["abc"]}, {"username": "١٢٣"},
])
def test_bad_username_is_422_and_writes_nothing(api, sql, body):
    problem = assert_problem(api.post("/api/users", body), 422)
    assert problem["errors"][0]["field"] == "username"
    assert row_count(sql, "users") == 0


def test_fourteen_characters_is_the_longest_username(api):
    assert api.post("/api/users", {"username": "a" * 14}).status_code == 201


def test_taken_username_is_409_whatever_its_case(api, sql):
    api.new_user("Alice")
    assert_problem(api.post("/api/users", {"username": "aLICE"}), 409)
    assert row_count(sql, "users") == 1


@pytest.mark.parametrize("raw, status", [
    (b"{", 400), (b"", 400), (b"[1, 2]", 400), (b'"alice"', 400), (b"\xff\xfe", 400), (b"null", 400),
])
def test_malformed_body_is_400_and_writes_nothing(api, sql, raw, status):
    response = api.request("POST", "/api/users", data=raw, headers={"Content-Type": "application/json"})
    assert_problem(response, status)
    assert row_count(sql, "users") == 0


def test_body_over_64_kib_is_413_and_writes_nothing(api, sql):
    body = b'{"username": "bob", "pad": "' + b"x" * (64 * 1024) + b'"}'
    assert_problem(api.request("POST", "/api/users", data=body, headers={"Content-Type": "application/json"}), 413)
    assert row_count(sql, "users") == 0


def test_users_list_by_id_ascending_with_link_pagination(api):
    ids = [api.new_user(f"user{n}")["id"] for n in range(23)]
    seen, url, pages = [], "/api/users?limit=10", 0
    while url:
        response = api.get(url)
        assert response.status_code == 200
        seen += [user["id"] for user in response.json()]
        pages += 1
        link = response.headers.get("Link")
        url = re.fullmatch(r'<([^>]+)>; rel="next"', link).group(1) if link else None
    assert seen == ids and pages == 3


def test_exactly_full_last_page_has_no_link(api):
    for n in range(4):
        api.new_user(f"user{n}")
    first = api.get("/api/users?limit=2")
    assert "Link" in first.headers
    second = api.get(first.headers["Link"][1:].split(">")[0])
    assert len(second.json()) == 2 and "Link" not in second.headers
    assert "Link" not in api.get("/api/users?limit=4").headers


def test_users_list_default_limit_is_10_and_link_repeats_filters(api):
    for n in range(12):
        api.new_user(f"user{n}")
    response = api.get("/api/users")
    assert len(response.json()) == 10
    query = parse_qs(urlsplit(response.headers["Link"][1:].split(">")[0]).query)
    assert set(query) == {"cursor"}


def test_username_lookup_is_exact_and_ignores_case(api):
    bob = api.new_user("Bob")
    api.new_user("Bobby")
    assert api.get("/api/users?username=bOB").json() == [bob]
    assert api.get("/api/users?username=Bo").json() == []
    assert api.get("/api/users?username=nobody").json() == []


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=abc", "limit=-1", "limit=1.5",
                                   "cursor=garbage", "cursor=abc.def"])
def test_bad_list_parameters_are_422(api, query):
    problem = assert_problem(api.get(f"/api/users?{query}"), 422)
    assert problem["errors"][0]["field"] in ("limit", "cursor")


def test_empty_parameters_count_as_absent(api):
    api.new_user("alice")
    assert len(api.get("/api/users?limit=&cursor=&username=").json()) == 1


def test_cursor_of_another_list_is_422(api):
    alice, bob, carol = (api.new_user(name)["id"] for name in ("alice", "bob", "carol"))
    api.follow(bob, alice)
    api.follow(carol, alice)
    followers = api.get(f"/api/users/{alice}/followers?limit=1")
    cursor = parse_qs(urlsplit(followers.headers["Link"][1:].split(">")[0]).query)["cursor"][0]
    assert_problem(api.get(f"/api/users?cursor={cursor}"), 422)


@pytest.mark.parametrize("path", ["/api/users/999", "/api/users/0", "/api/users/-1", "/api/users/abc",
                                  "/api/users/1.5", "/api/users/99999999999999999999999"])
def test_unknown_or_malformed_user_id_is_404(api, path):
    assert_problem(api.get(path), 404)


def test_joined_is_the_unpadded_utc_creation_date(api, sql):
    user = api.new_user("alice")
    sql.execute("UPDATE users SET created_at = '2021-03-05 23:30:00-05' WHERE id = %s", (user["id"],))
    fetched = api.get(f"/api/users/{user['id']}").json()
    assert fetched["joined"] == "March 6, 2021"
    assert fetched["created_at"] == "2021-03-06T04:30:00.000000Z"


def test_followed_by_viewer_only_with_viewer_id(api):
    alice, bob = api.new_user("alice")["id"], api.new_user("bob")["id"]
    api.follow(bob, alice)
    assert "followed_by_viewer" not in api.get(f"/api/users/{alice}").json()
    assert api.get(f"/api/users/{alice}?viewer_id={bob}").json()["followed_by_viewer"] is True
    assert api.get(f"/api/users/{bob}?viewer_id={alice}").json()["followed_by_viewer"] is False
    assert_problem(api.get(f"/api/users/{alice}?viewer_id=999"), 404)
    assert_problem(api.get(f"/api/users/{alice}?viewer_id=abc"), 422)


@pytest.mark.parametrize("path", ["/api/users?username=%FF", "/api/users?limit=%FF", "/api/users/1?viewer_id=%FF",
                                  "/api/users?username=a%00b", "/api/users?username=not-a-name"])
def test_undecodable_or_impossible_user_parameters_are_422(api, path):
    api.new_user("alice")
    assert_problem(api.get(path), 422)
