"""A Redis that refuses connections while it keeps every key (a proxy, a Kubernetes Service with no
ready endpoint, a firewall) is no new Redis: a write it refused is seen by every worker once it
answers again (posterr/redis_client.py, mechanism 3), on a standalone server and on one master of a Redis
Cluster."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import psutil
import pytest
import redis
import requests
from redis.cluster import RedisCluster

from loadtests.refusing_proxy import RefusingProxy
from posterr.keys import user_key
from tests.cluster.conftest import wait_for
from tests.conftest import _free_port, log_records, running_app
from tests.integration.conftest import Api, app_behind_refusing_proxy, on_every_worker

LOG = "gunicorn-refusals.log"


@pytest.fixture
def proxied(servers):
    """The app, reaching Redis through a proxy that the test makes refuse (on a Redis Cluster: the
    cluster test below)."""
    with app_behind_refusing_proxy(servers, LOG) as found:
        yield found


def test_a_write_that_redis_refused_is_read_by_every_worker_once_it_answers(proxied):
    api, proxy = proxied
    author = api.new_user("refused")["id"]
    for feed in ("/api/posts", f"/api/users/{author}"):  # cached by every worker
        on_every_worker(api.base, "cache", lambda get, path=feed: get(path).raise_for_status(), LOG)
    proxy.refuse()
    post = api.new_post(author, "while Redis refused")
    proxy.resume()

    def current(get):
        assert get(f"/api/users/{author}").json()["posts_count"] == 1
        assert [p["id"] for p in get("/api/posts").json()][:1] == [post["id"]]

    on_every_worker(api.base, "after", current, LOG)


def _announced_ports(client: RedisCluster) -> set[int]:
    """The master ports that every node tells clients (CLUSTER SLOTS)."""
    return {port for node in client.get_primaries()
            for port in (entry[2][1] for entry in redis.Redis(node.host, node.port).execute_command("CLUSTER SLOTS"))}


@pytest.fixture
def proxied_cluster(servers, redis_cluster):
    """The app against the Redis Cluster, each master behind a proxy of its own that it announces to
    clients (cluster-announce-port), so that the test can make one master refuse while it keeps its
    keys; the cluster bus goes direct."""
    url, client = redis_cluster
    masters = client.get_primaries()
    proxies = {node.port: RefusingProxy(_free_port(), (node.host, node.port)) for node in masters}

    def announce(proxied_: bool) -> None:
        for node in masters:
            redis.Redis(node.host, node.port).config_set(
                "cluster-announce-port", proxies[node.port].port if proxied_ else 0)
        wanted = {proxy.port for proxy in proxies.values()} if proxied_ else {node.port for node in masters}
        wait_for(lambda: _announced_ports(client) == wanted, 30, "every node to announce the masters' new ports")

    for proxy in proxies.values():
        proxy.resume()
    try:
        announce(True)
        first = urlsplit(url)
        proxied_url = first._replace(netloc=f"127.0.0.1:{proxies[first.port].port}").geturl()
        with running_app(servers, LOG, REDIS_URL=proxied_url, POSTERR_REDIS_RETRY_AFTER="0.05") as base:
            yield Api(base), client, proxies
    finally:
        for proxy in proxies.values():
            if proxy.refusing:
                proxy.resume()
        announce(False)
        for proxy in proxies.values():
            proxy.stop()


def test_a_write_that_one_cluster_master_refused_is_read_by_every_worker_once_it_answers(proxied_cluster):
    """The master holding the author's profile refuses (its proxy cuts every connection) while a post
    is written: the write's other changes land on the live masters, and once that master answers
    again no worker reads the profile it could not delete."""
    api, client, proxies = proxied_cluster
    author = api.new_user("refusedcluster")["id"]
    for page in (f"/api/users/{author}", f"/api/posts?author_id={author}"):  # cached by every worker
        on_every_worker(api.base, "cluster-cache", lambda get, path=page: get(path).raise_for_status(), LOG)
    refusing = proxies[client.get_node_from_key(user_key(author)).port]
    refusing.refuse()
    post = api.new_post(author, "while one master refused")
    refusing.resume()

    def current(get):
        assert get(f"/api/users/{author}").json()["posts_count"] == 1
        assert [p["id"] for p in get(f"/api/posts?author_id={author}").json()] == [post["id"]]

    on_every_worker(api.base, "cluster-after", current, LOG)


def _connections_by_worker(proxy: RefusingProxy) -> dict[int, set[int]]:
    """The app's workers holding connections open through the proxy: pid -> their ports."""
    found: dict[int, set[int]] = {}
    for connection in psutil.net_connections(kind="tcp"):
        if connection.raddr and connection.raddr.port == proxy.port and connection.pid:
            found.setdefault(connection.pid, set()).add(connection.laddr.port)
    return found


def test_a_refusal_of_new_connections_seen_by_one_worker_is_no_stale_read_on_another(proxied):
    """Redis refuses new connections while the established ones go on (a Service whose endpoint went
    away keeps its flows): a worker whose connections were cut writes, the other reads through its
    old ones. No worker may read a copy that the write could not delete, once it is answered."""
    api, proxy = proxied
    authors = [api.new_user(f"refusednew{n}")["id"] for n in range(12)]

    def read_all(get):
        for author in authors:
            get(f"/api/users/{author}").raise_for_status()

    on_every_worker(api.base, "refuse-new-cache", read_all, LOG)  # cached, and both workers connected
    holders = _connections_by_worker(proxy)
    assert len(holders) == 2, holders
    proxy.refuse_new()
    cut_worker = min(holders)
    assert proxy.cut(holders[cut_worker]) > 0
    written: dict[int, int] = {}  # author -> the pid that answered the creation

    def create(author: int) -> None:
        request_id = f"refuse-new-{author}-{os.urandom(4).hex()}"
        answer = requests.post(f"{api.base}/api/posts", json={"user_id": author, "content": "refused new"},
                               timeout=30, headers={"Connection": "close", "X-Request-ID": request_id})
        assert answer.status_code == 201, answer.text
        written[author] = wait_for(lambda: log_records(LOG, {request_id}), 10, "the access log line")[0]["pid"]

    with ThreadPoolExecutor(2) as pool:  # two at a time, so both workers take some
        for pair in (authors[n:n + 2] for n in range(0, len(authors), 2)):
            list(pool.map(create, pair))
            if cut_worker in written.values():
                break
    assert cut_worker in written.values(), f"the cut worker wrote none of {len(written)} posts"

    def current(get):
        for author in written:
            assert get(f"/api/users/{author}").json()["posts_count"] == 1, (author, written)

    on_every_worker(api.base, "refuse-new-after", current, LOG)
    proxy.resume()
    on_every_worker(api.base, "refuse-new-resumed", current, LOG)
