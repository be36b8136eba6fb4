"""The app tier scales out: three gunicorn instances behind nginx, sharing one PostgreSQL and one
Redis, behave as one service — the daily limit stays exact, a write is visible everywhere at once,
a token issued by one instance is taken by the others and one revoked through one is refused by
every worker's writes at once, a killed instance loses no acknowledged write, and SIGTERM drains
in-flight requests. Every write acts with a token its user logged in for (POSTERR_AUTH=required).

Synchronisation is by conditions polled with deadlines (pg_stat_activity, process exit, log
lines, counters), never by sleeping for a guessed time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
import requests

from posterr.keys import daily_quota_key
from tests.cluster.conftest import CLUSTER_DIR, Cluster, Instance, healthy, new_account, wait_for
from tests.conftest import RESULTS, ROOT, _free_port
from tests.integration.conftest import PASSWORD
from tests.integration.pglocks import waiting_behind
from tests.integration.workers import fresh_request, until_several_workers

LIMIT = 5

pytestmark = pytest.mark.usefixtures("clean_state")


def _json(response: requests.Response, status: int):
    assert response.status_code == status, f"{response.status_code} {response.text[:300]}"
    return response.json() if response.content else None


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def test_nginx_spreads_requests_over_every_instance(cluster):
    seen: Counter[str] = Counter()
    with requests.Session() as session:
        for _ in range(30):
            response = session.get(f"{cluster.base}/healthz", timeout=5)
            assert response.status_code == 200
            seen[response.headers["X-Upstream"]] += 1
    assert set(seen) == {f"127.0.0.1:{instance.port}" for instance in cluster.instances}, seen


def test_nginx_keeps_the_metrics_to_the_operators(cluster):
    hidden = requests.get(f"{cluster.base}/metrics", timeout=5)
    assert hidden.status_code == 404 and hidden.headers["Content-Type"] == "application/problem+json"
    assert hidden.json()["status"] == 404 and "posterr_" not in hidden.text
    for instance in cluster.instances:  # where Prometheus scrapes them
        assert "posterr_http_requests_total" in requests.get(f"{instance.base}/metrics", timeout=5).text


def test_daily_limit_is_exact_under_simultaneous_requests_spread_over_instances(cluster, sql, redis_client):
    users, per_user = 4, 15
    with requests.Session() as session:
        accounts = [new_account(cluster.base, f"racer{n}", session) for n in range(users)]
    ids = [account.id for account in accounts]
    # Each user's 15 creations go round-robin to the three instances directly and through nginx.
    targets = [instance.base for instance in cluster.instances] + [cluster.base]
    jobs = [(accounts[u], targets[j % len(targets)], f"race {u}-{j}") for u in range(users) for j in range(per_user)]
    barrier = threading.Barrier(len(jobs))

    def create(job):
        account, base, content = job
        with requests.Session() as session:
            session.get(f"{base}/healthz", timeout=10)  # connect first, so the barrier lines up the POSTs
            barrier.wait(timeout=30)
            return base, account.id, session.post(f"{base}/api/posts", json={"content": content},
                                                  headers=account.auth, timeout=30)

    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(create, jobs))

    day = datetime.now(UTC).date()
    for user_id in ids:
        statuses = sorted(r.status_code for _, uid, r in results if uid == user_id)
        assert statuses == [201] * LIMIT + [429] * (per_user - LIMIT), (user_id, statuses)
        assert sql.execute("SELECT count(*) FROM posts WHERE user_id = %s", (user_id,)).fetchone()[0] == LIMIT
        assert sql.execute("SELECT used FROM post_quota WHERE user_id = %s AND day = %s",
                           (user_id, day)).fetchone()[0] == LIMIT
        assert int(redis_client.get(daily_quota_key(user_id, day))) == LIMIT
    for _, _, refused in (r for r in results if r[2].status_code == 429):
        assert refused.headers["Content-Type"].startswith("application/problem+json")
        assert int(refused.headers["Retry-After"]) >= 1
    created_by = Counter(base for base, _, r in results if r.status_code == 201)
    RESULTS.append(f"daily limit: {len(jobs)} simultaneous creations for {users} users over 3 instances and nginx "
                   f"-> {sum(created_by.values())} x 201, {len(jobs) - sum(created_by.values())} x 429, 0 errors; "
                   f"posts, post_quota and Redis counters all {LIMIT} per user; 201s by target: "
                   + ", ".join(f"{urlsplit(b).port}={n}" for b, n in sorted(created_by.items())))


def _on_every_worker(base: str, path: str) -> list:
    """GET `path` on one instance over fresh connections until both of its workers have answered
    (a bug local to one process, such as a copy it keeps, shows on one worker only); every answer's body."""
    answers = until_several_workers(lambda: fresh_request("GET", base + path))
    return [_json(response, 200) for response, _ in answers]


def _first_id(items: list) -> int | None:
    return items[0]["id"] if items else None


def test_a_write_through_one_instance_is_visible_at_once_through_the_others(cluster):
    """Through every worker of the other instances, not just one: each reader instance's two workers
    read (and could cache) the feeds first, then each must answer with the write."""
    bases = [instance.base for instance in cluster.instances]

    def call(n: int, method: str, path: str, status: int, **kwargs):
        return _json(requests.request(method, bases[n] + path, timeout=10, **kwargs), status)

    checks = 0
    fan_account = new_account(bases[0], "fan")
    fan = fan_account.id
    for round_ in range(6):
        writer = round_ % 3
        readers = [n for n in range(3) if n != writer]
        # Every worker of every reader reads first, so anything it might cache is cached before the write.
        for n in readers:
            for path in ("/api/posts", f"/api/posts?followed_by={fan}", f"/api/users/{fan}",
                         f"/api/users/{fan}/following"):
                _on_every_worker(bases[n], path)
        name = f"Visible{round_}"
        user = call(writer, "POST", "/api/users", 201, json={"username": name, "password": PASSWORD})
        for n in readers:
            for body in _on_every_worker(bases[n], f"/api/users/{user['id']}"):
                assert body["username"] == name
                checks += 1
            for body in _on_every_worker(bases[n], f"/api/users?username={name.lower()}"):
                assert [u["id"] for u in body] == [user["id"]]
                checks += 1
        # Logged in through a reader, the token writes through the writer at once.
        token = call(readers[0], "POST", "/api/tokens", 201, json={"username": name, "password": PASSWORD})["token"]
        post = call(writer, "POST", "/api/posts", 201, json={"content": f"seen {round_}"},
                    headers={"Authorization": f"Bearer {token}"})
        call(writer, "PUT", f"/api/users/{fan}/following/{user['id']}", 204, headers=fan_account.auth)
        # path: (what to read from the answer, its value now)
        expected = {
            f"/api/posts/{post['id']}": (lambda body: body["content"], f"seen {round_}"),
            "/api/posts": (_first_id, post["id"]),
            f"/api/posts?author_id={user['id']}": (_first_id, post["id"]),
            f"/api/posts?followed_by={fan}": (_first_id, post["id"]),
            f"/api/users/{user['id']}": (lambda body: body["posts_count"], 1),
            f"/api/users/{fan}": (lambda body: body["following_count"], round_ + 1),
            f"/api/users/{fan}/following": (_first_id, user["id"]),
        }
        for n in readers:
            for path, (read, now) in expected.items():
                for body in _on_every_worker(bases[n], path):
                    assert read(body) == now, (round_, bases[n], path, body)
                    checks += 1

    # A cursor made by one instance is read by the others (one signing key on every instance).
    first = requests.get(f"{bases[0]}/api/posts?limit=2", timeout=10)
    next_path = _path(first.links["next"]["url"])
    pages = [_json(requests.get(bases[n] + next_path, timeout=10), 200) for n in (1, 2)]
    assert pages[0] == pages[1] and len(pages[0]) == 2
    assert {p["id"] for p in pages[0]}.isdisjoint(p["id"] for p in first.json())
    checks += 2
    RESULTS.append(f"read-your-writes: 6 rounds, each writing through one instance (user, post, follow; the "
                   f"post with a token issued by another) and reading through both workers of the two others "
                   f"(fresh connections) after warming their reads: {checks} cross-instance reads checked, all "
                   "current; a cursor from one instance pages on the others")


def test_a_token_revoked_through_one_instance_is_refused_at_once_by_every_workers_writes(cluster, sql):
    """Every worker of the two other instances has just looked the token up, and may keep it for half
    a second as live; revoked through the first instance, it is refused (401) by writes on every one
    of those workers all the same, whatever they cached: a write checks its token in its own
    transaction. Nothing is written."""
    bases = [instance.base for instance in cluster.instances]
    holder = new_account(bases[0], "holder")
    second = _json(requests.post(f"{bases[0]}/api/tokens", json={"username": "holder", "password": PASSWORD},
                                 timeout=10), 201)
    doomed = {"Authorization": f"Bearer {second['token']}"}
    for base in bases[1:]:
        until_several_workers(lambda base=base: fresh_request("GET", f"{base}/api/tokens", headers=doomed))
    _json(requests.delete(f"{bases[0]}/api/tokens/{second['id']}", headers=holder.auth, timeout=10), 204)
    writes = [answer for base in bases[1:] for answer in until_several_workers(
        lambda base=base: fresh_request("POST", f"{base}/api/posts", json={"content": "revoked"}, headers=doomed))]
    assert {response.status_code for response, _ in writes} == {401}
    assert sql.execute("SELECT count(*) FROM posts").fetchone()[0] == 0
    assert _json(requests.post(f"{bases[2]}/api/posts", json={"content": "kept"}, headers=holder.auth, timeout=10),
                 201)["user_id"] == holder.id
    RESULTS.append(f"revocation: a token cached by both workers of two instances, revoked through the third: "
                   f"{len(writes)} writes with it on those {len({pid for _, pid in writes})} workers, all 401, "
                   "nothing written; the holder's other token still writes")


@dataclass
class Attempt:
    kind: str  # "user", "token" or "post"
    key: str  # the username (of a user, or of the token's user), or the post's content
    started: float
    ended: float
    status: int | None  # None: no HTTP answer (connection error)
    upstream: str | None
    body: dict | None  # without the token itself, which no assertion message may show
    problem: bool  # application/problem+json


class Load:
    """Clients creating users through nginx, each with a password, reading it back, logging it in for
    a token and creating a post with that token, each retrying a failed creation (what a careful client
    does) until it gets an answer: 201, or 409 for a user whose failed attempt had in fact been
    committed. Reads are not retried by the client."""

    def __init__(self, base: str, threads: int, keepalive: bool = True):
        self.base = base
        self.threads = threads
        # Without keep-alive every request opens its own connection to nginx.
        self.headers = {} if keepalive else {"Connection": "close"}
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.attempts: list[Attempt] = []
        self.acked = 0
        self.unresolved: list[str] = []
        self.workers = [threading.Thread(target=self._run, args=(t,), daemon=True) for t in range(threads)]

    def start(self) -> None:
        for worker in self.workers:
            worker.start()

    def finish(self) -> None:
        self.stop.set()
        for worker in self.workers:
            worker.join(timeout=60)
            assert not worker.is_alive(), "a load thread did not finish"

    def _attempt(self, session, kind, key, path, body, token: str | None = None) -> tuple[Attempt, dict | None]:
        """One request (a GET without a body), recorded; the attempt and the answer's JSON."""
        started = time.monotonic()
        headers = {**self.headers, **({"Authorization": f"Bearer {token}"} if token else {})}
        try:
            if body is None:
                response = session.get(self.base + path, headers=headers, timeout=30)
            else:
                response = session.post(self.base + path, json=body, headers=headers, timeout=30)
            status, upstream = response.status_code, response.headers.get("X-Upstream")
            problem = response.headers.get("Content-Type", "").startswith("application/problem+json")
            payload = response.json() if response.content else None
        except requests.RequestException:
            status, upstream, problem, payload = None, None, False, None
        shown = {name: value for name, value in payload.items() if name != "token"} if payload else payload
        attempt = Attempt(kind, key, started, time.monotonic(), status, upstream, shown, problem)
        with self.lock:
            self.attempts.append(attempt)
            if status == 201:
                self.acked += 1
        return attempt, payload

    def _create(self, session, kind, key, path, body, token: str | None = None) -> dict | None:
        failed_before = False
        for _ in range(5):
            attempt, payload = self._attempt(session, kind, key, path, body, token)
            if attempt.status == 201:
                return payload
            if attempt.status == 409 and kind == "user" and failed_before:
                found = session.get(f"{self.base}/api/users?username={key}", headers=self.headers, timeout=30).json()
                return found[0]
            if attempt.status is not None and attempt.status < 500:
                break  # an answer that retrying will not change
            failed_before = True
        with self.lock:
            self.unresolved.append(f"{kind} {key}")
        return None

    def _run(self, thread: int) -> None:
        with requests.Session() as session:
            n = 0
            while not self.stop.is_set():
                name = f"k{thread:02d}n{n:05d}"
                login = {"username": name, "password": PASSWORD}
                user = self._create(session, "user", name, "/api/users", login)
                if user is not None:
                    self._attempt(session, "read", name, f"/api/users/{user['id']}", None)
                    issued = self._create(session, "token", name, "/api/tokens", login)
                    if issued is not None:
                        self._create(session, "post", f"load {name}", "/api/posts", {"content": f"load {name}"},
                                     issued["token"])
                n += 1


def not_stored(sql, acked: list[Attempt]) -> list[Attempt]:
    """The acknowledged creations that PostgreSQL does not hold as acknowledged: a user under its
    name, a token of that user, a post of its author with its content."""
    users = dict(sql.execute("SELECT username, id FROM users WHERE username LIKE 'k%'").fetchall())
    tokens = dict(sql.execute("SELECT id, user_id FROM api_tokens").fetchall())
    posts = {pid: (uid, content) for pid, uid, content in
             sql.execute("SELECT id, user_id, content FROM posts WHERE content LIKE 'load k%'").fetchall()}
    expected = {"user": lambda a: users.get(a.key) == a.body["id"],
                "token": lambda a: a.key in users and tokens.get(a.body["id"]) == users[a.key],
                "post": lambda a: posts.get(a.body["id"]) == (a.body["user_id"], a.key)}
    return [a for a in acked if not expected[a.kind](a)]


def test_an_instance_killed_under_load_loses_no_acknowledged_write(cluster, sql):
    victim = cluster.instances[2]
    # One creation surely in flight on the victim when it dies: held inside its INSERT by a lock on
    # its author's quota row (on a victim whose statement timeout outlasts the hold).
    with requests.Session() as session:
        held_account = new_account(cluster.base, "held", session)
        _json(session.post(f"{cluster.base}/api/posts", json={"content": "first"}, headers=held_account.auth,
                           timeout=10), 201)
    held_user = held_account.id
    with patient(cluster, victim):
        locker = psycopg.connect(cluster.database_url)
        held_pool = ThreadPoolExecutor(1)
        load = Load(cluster.base, threads=12)
        try:
            locker.execute("SELECT used FROM post_quota WHERE user_id = %s FOR UPDATE", (held_user,))
            held = held_pool.submit(requests.post, f"{victim.base}/api/posts", timeout=120,
                                    json={"content": "held at the kill"}, headers=held_account.auth)
            wait_for(lambda: waiting_behind(sql, locker.info.backend_pid, "INSERT INTO post_quota") == 1, 15,
                     "the held creation to wait on the quota row lock")
            load.start()
            wait_for(lambda: load.acked >= 150, 60, "150 acknowledged writes before the kill")
            assert not held.done(), "the held creation answered before the kill"
            killed_at = time.monotonic()
            os.killpg(victim.process.pid, signal.SIGKILL)  # the master and its workers, as a crashed host
            wait_for(victim.gone, 15, "the killed instance's processes to be gone")
            dead_at = time.monotonic()
            acked_at_kill = load.acked
            with pytest.raises(requests.ConnectionError):
                held.result(timeout=30)  # its client got no answer
            locker.rollback()
            wait_for(lambda: waiting_behind(sql, locker.info.backend_pid) == 0, 15, "the held statement to finish")
            wait_for(lambda: load.acked >= acked_at_kill + 300, 60, "300 acknowledged writes after the kill")
        finally:
            load.finish()
            locker.close()
            held_pool.shutdown(wait=False, cancel_futures=True)
    # The app runs each statement in autocommit: PostgreSQL does not notice that the client went
    # away while the statement waits for a lock, so the held creation commits once the lock is free,
    # although nobody got its 201. Not a lost write, but a client's retry would duplicate it.
    held_committed = sql.execute("SELECT count(*) FROM posts WHERE user_id = %s AND content = 'held at the kill'",
                                 (held_user,)).fetchone()[0]
    assert held_committed in (0, 1)

    attempts = load.attempts
    acked = [a for a in attempts if a.status == 201]
    failed = [a for a in attempts if a.status is None or a.status >= 500]
    reads = [a for a in attempts if a.kind == "read"]
    assert not load.unresolved, f"requests that never succeeded in 5 attempts: {load.unresolved[:5]}"
    # A read is resent by nginx to another instance, so none fails; and each sees the new user.
    assert all(a.status == 200 for a in reads), [a for a in reads if a.status != 200]
    # Only creations already under way when the instance died failed, and nginx answered them in
    # the API's error shape; everything sent after the death went to the survivors.
    assert all(a.started < dead_at for a in failed), [a for a in failed if a.started >= dead_at]
    assert len(failed) <= load.threads, failed
    assert all(a.status == 502 and a.problem for a in failed), failed
    victim_addr = f"127.0.0.1:{victim.port}"
    assert not [a for a in acked if a.started > dead_at and a.upstream == victim_addr]
    assert sum(1 for a in acked if a.started > dead_at) >= 300

    # Every acknowledged write is in PostgreSQL, as acknowledged.
    assert not (missing := not_stored(sql, acked)), f"acknowledged but missing: {missing[:5]}"
    # And nothing appeared that the clients did not ask for.
    users = dict(sql.execute("SELECT username, id FROM users WHERE username LIKE 'k%'").fetchall())
    posts = {pid: content for pid, content in sql.execute("SELECT id, content FROM posts WHERE content LIKE 'load k%'")}
    asked = {a.key for a in attempts if a.kind == "user"}
    assert set(users) <= asked
    # A failed attempt may or may not have committed before the instance died: the client's retry
    # answers 409 for a user (no duplicate); a post has no natural key, so its retry may duplicate it.
    committed_unacked_users = sum(1 for a in attempts if a.kind == "user" and a.status == 409)
    duplicated_posts = sum(n - 1 for n in Counter(posts.values()).values() if n > 1)
    RESULTS.append(
        f"instance killed under load: {len(attempts)} requests ({len(attempts) - len(reads)} POSTs, {len(reads)} GETs) "
        f"from {load.threads} clients through nginx; instance {victim.port} SIGKILLed after {acked_at_kill} "
        f"acknowledged writes (gone within {(dead_at - killed_at) * 1000:.0f} ms); {len(failed)} errors (POSTs in "
        f"flight at the kill: 502 problem+json, retried by the client), 0 failed GETs, 0 errors after the kill; "
        f"{len(acked)} acknowledged writes checked in PostgreSQL, 0 missing; "
        f"{committed_unacked_users} failed user creations had committed (retry got 409), "
        f"{duplicated_posts} posts duplicated by a retry; a creation held in flight on the killed instance: "
        f"connection lost, {'committed anyway (unacknowledged)' if held_committed else 'rolled back'}")


PATIENT = {"POSTERR_STATEMENT_TIMEOUT_MS": "600000", "POSTERR_REQUEST_TIMEOUT": "600"}


@contextmanager
def patient(cluster: Cluster, instance: Instance) -> Iterator[Instance]:
    """The instance restarted with a statement timeout and a request watchdog (10 min) longer than
    any lock a test holds, so that a statement the test keeps waiting is never cancelled by the
    default 5 s (nor its worker replaced after 30 s), whatever the timing; restarted with the
    cluster's settings afterwards, whatever the test did to it."""
    original = dict(instance.env)
    instance.env.update(PATIENT)
    try:
        cluster.restart(instance)
        yield instance
    finally:
        instance.env.clear()
        instance.env.update(original)
        cluster.restart(instance)


def _not_serving(base: str) -> bool:
    """True when nothing answers on the port: refused, or queued by the kernel but never accepted."""
    try:
        requests.get(f"{base}/healthz", timeout=0.5)
    except requests.RequestException:
        return True
    return False


def test_sigterm_drains_in_flight_requests_before_the_instance_exits(cluster, sql):
    victim = cluster.instances[1]
    with requests.Session() as session:
        account = new_account(cluster.base, "drain", session)
        _json(session.post(f"{cluster.base}/api/posts", json={"content": "before"}, headers=account.auth, timeout=10),
              201)
    user = account.id
    in_flight = 3
    with patient(cluster, victim):
        log_start = victim.log_path.stat().st_size
        # Hold the author's quota row: each creation waits for it inside its INSERT, in flight.
        with psycopg.connect(cluster.database_url) as locker, ThreadPoolExecutor(in_flight) as pool:
            locker.execute("SELECT used FROM post_quota WHERE user_id = %s FOR UPDATE", (user,))
            futures = [pool.submit(requests.post, f"{victim.base}/api/posts", timeout=120, headers=account.auth,
                                   json={"content": f"in flight {n}"}) for n in range(in_flight)]
            wait_for(lambda: waiting_behind(sql, locker.info.backend_pid, "INSERT INTO post_quota") == in_flight, 15,
                     f"{in_flight} creations to wait on the quota row lock")
            victim.process.send_signal(signal.SIGTERM)  # the master, as `docker stop` or systemd would
            wait_for(lambda: "Handling signal: term" in victim.log_path.read_text()[log_start:], 10,
                     "the master to handle SIGTERM")
            wait_for(lambda: _not_serving(victim.base), 10, "the instance to stop accepting requests")
            assert not any(f.done() for f in futures), "a request finished while the lock was held"
            assert victim.process.poll() is None, "the master exited with requests in flight"
            # The rest of the cluster serves meanwhile.
            for other in (i for i in cluster.instances if i is not victim):
                assert healthy(other.base)
            locker.rollback()  # release the row: the in-flight creations complete
            responses = [f.result(timeout=30) for f in futures]
        drained_at = time.monotonic()
        assert [r.status_code for r in responses] == [201] * in_flight, [r.text for r in responses]
        wait_for(victim.gone, 30, "the drained instance to exit")
        exit_after = time.monotonic() - drained_at
        assert victim.process.returncode == 0
        contents = {c for (c,) in sql.execute("SELECT content FROM posts WHERE user_id = %s", (user,)).fetchall()}
        assert contents == {"before"} | {f"in flight {n}" for n in range(in_flight)}
        log = victim.log_path.read_text()[log_start:]
        assert log.index("Handling signal: term") < log.index("Shutting down: Master")
    RESULTS.append(f"SIGTERM drain: {in_flight} POSTs held in flight by a row lock on instance {victim.port}, SIGTERM "
                   f"to its master, lock released: {in_flight} x 201, rows in PostgreSQL, master exited 0 "
                   f"{exit_after:.1f} s after the last answer")


def test_a_rolling_restart_behind_nginx_fails_no_request(cluster, sql):
    """The way to stop an instance without failing a request: out of nginx's rotation first
    (reload, old nginx workers finish), then SIGTERM (it drains), start, and back in. A SIGTERM
    alone is not enough behind nginx: until the draining instance exits, the kernel still queues
    connections on its listening socket, which nobody accepts; nginx's requests there wait and are
    then reset, and a POST among them cannot be resent (see docs/deployment.md)."""
    load = Load(cluster.base, threads=8, keepalive=False)
    load.start()
    restarted = []
    try:
        for instance in cluster.instances:
            wait_for(lambda mark=load.acked: load.acked >= mark + 50, 30, "50 writes before each restart")
            cluster.reload_nginx(down=(instance.port,))
            instance.process.send_signal(signal.SIGTERM)
            wait_for(instance.gone, 30, f"the instance on port {instance.port} to drain and exit")
            assert instance.process.returncode == 0
            cluster.restart(instance)
            cluster.reload_nginx()
            restarted.append(instance.port)
        wait_for(lambda mark=load.acked: load.acked >= mark + 50, 30, "50 writes after the last restart")
    finally:
        load.finish()
        for instance in cluster.instances:
            if not healthy(instance.base):
                cluster.restart(instance)
        cluster.reload_nginx()
    attempts = load.attempts
    failed = [a for a in attempts if a.status is None or a.status >= 500]
    assert not failed, failed[:5]
    assert not load.unresolved
    acked = [a for a in attempts if a.status == 201]
    assert not (missing := not_stored(sql, acked)), f"acknowledged but missing: {missing[:5]}"
    RESULTS.append(f"rolling restart: each of the 3 instances taken out of nginx, SIGTERMed (drained, exit 0), "
                   f"restarted and put back, under {load.threads} clients: {len(attempts)} requests, 0 errors, "
                   f"{len(acked)} acknowledged writes checked in PostgreSQL, 0 missing")


def test_cluster_script_serves_and_stops(servers):
    """`make cluster`'s script: up (detached) on free ports, requests through its nginx (in required
    mode unless told otherwise: a post needs a token), a rolling restart of one instance, down;
    nothing is left running."""
    folder = CLUSTER_DIR.parent / "cluster-script"
    ports = [_free_port() for _ in range(4)]
    assert len(set(ports)) == 4
    inherited = {name: value for name, value in os.environ.items() if name != "POSTERR_AUTH"}
    env = {**inherited, "POSTERR_CLUSTER_DIR": str(folder), "POSTERR_CLUSTER_PORT": str(ports[0]),
           "POSTERR_CLUSTER_APP_PORTS": " ".join(map(str, ports[1:])), "DATABASE_URL": servers.database_url,
           "REDIS_URL": servers.redis_url, "POSTERR_SECRET_KEY": "posterr-script-test-secret-0123456789"}
    script = str(ROOT / "scripts" / "cluster.sh")
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "script.log", "a") as log:
        try:
            subprocess.run([script, "up"], env=env, stdout=log, stderr=log, check=True, timeout=90)
            base = f"http://127.0.0.1:{ports[0]}"
            with requests.Session() as session:
                assert session.get(f"{base}/healthz", timeout=5).status_code == 200
                account = new_account(base, "viascript", session)
                for port in ports[1:]:
                    got = session.get(f"http://127.0.0.1:{port}/api/users/{account.id}", timeout=5)
                    assert _json(got, 200)["username"] == "viascript"
                _json(session.post(f"{base}/api/posts", json={"user_id": account.id, "content": "anyone"}, timeout=10),
                      401)
                _json(session.post(f"{base}/api/posts", json={"content": "mine"}, headers=account.auth, timeout=10), 201)
            before = int((folder / f"app-{ports[1]}.pid").read_text())
            subprocess.run([script, "restart", str(ports[1])], env=env, stdout=log, stderr=log, check=True, timeout=90)
            assert int((folder / f"app-{ports[1]}.pid").read_text()) != before
            assert not _running(before)
            assert requests.get(f"http://127.0.0.1:{ports[1]}/api/users/{account.id}", timeout=5).status_code == 200
            pids = [int((folder / f"app-{port}.pid").read_text()) for port in ports[1:]]
            pids.append(int((folder / "nginx.pid").read_text()))
        finally:
            subprocess.run([script, "down"], env=env, stdout=log, stderr=log, timeout=120, check=False)
    for pid in pids:
        assert not _running(pid), f"process {pid} survived `cluster.sh down`"
    for port in ports:
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")
