"""A cluster on loopback: three gunicorn instances behind nginx, sharing the suite's PostgreSQL and
Redis (the `servers` fixture), each on a free port, so it runs beside `make run` and `make cluster`.
They run as deployed, with POSTERR_AUTH=required: the tests make their users through the API with a
password and log them in for the tokens they act with (`new_account`).

nginx's config is the repository's template (deploy/nginx.conf.template) rendered by
scripts/cluster.sh, the same as `make cluster` uses; nginx, its temp files and every log live in
<test data dir>/cluster. Every process is started in a session of its own and killed in the
fixture's finalizer, whatever the tests did to it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest
import requests

from loadtests.processes import group_alive, live_children
from tests.conftest import DATA, ROOT, TABLES, _free_port
from tests.integration.conftest import PASSWORD, Account

CLUSTER_DIR = DATA / "cluster"
INSTANCES = 3
SECRET = "posterr-cluster-test-secret-0123456789"  # one key on every instance: a cursor made by one is read by another


def new_account(base: str, username: str, session: requests.Session | None = None) -> Account:
    """A user made through `base` with a password, and a token from logging in there."""
    post = (session or requests).post
    user = post(f"{base}/api/users", json={"username": username, "password": PASSWORD}, timeout=10)
    assert user.status_code == 201, user.text
    login = post(f"{base}/api/tokens", json={"username": username, "password": PASSWORD}, timeout=10)
    assert login.status_code == 201, login.text
    return Account(user.json()["id"], username, PASSWORD, login.json()["token"])


def wait_for(condition, seconds: float, what: str, pause: float = 0.02):
    """Poll `condition` until it returns something truthy; fail naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(pause)  # polling interval, not a guess at how long something takes


def kill_group(process: subprocess.Popen, seconds: float = 30) -> None:
    """SIGTERM the process group, then SIGKILL it if it has not gone in time; reap the leader."""
    for sig, wait in ((signal.SIGTERM, seconds), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            process.poll()
            if process.returncode is not None and not group_alive(process.pid):
                return
            time.sleep(0.05)


def healthy(base: str) -> bool:
    try:
        return requests.get(f"{base}/healthz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


@dataclass
class Instance:
    """One gunicorn master (2 workers) on its own port, the leader of its own process group."""

    index: int
    port: int
    env: dict[str, str]
    process: subprocess.Popen | None = None
    log: IO | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return CLUSTER_DIR / "logs" / f"app-{self.port}.log"

    def start(self) -> None:
        self.log = open(self.log_path, "a")  # noqa: SIM115 (closed in stop())
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "posterr" / "gunicorn_conf.py")],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)

    def wait_serving(self) -> None:
        def ready():
            assert self.process.poll() is None, f"gunicorn on port {self.port} exited; see {self.log_path}"
            return healthy(self.base)
        wait_for(ready, 30, f"gunicorn on port {self.port} to answer /healthz")

    def gone(self) -> bool:
        """The master has exited (and is reaped) and no worker of its group is left."""
        return self.process.poll() is not None and not group_alive(self.process.pid)

    def stop(self) -> None:
        if self.process is not None:
            kill_group(self.process)
        if self.log is not None:
            self.log.close()
            self.log = None


@dataclass
class Cluster:
    instances: list[Instance]
    nginx_port: int
    database_url: str
    nginx: subprocess.Popen | None = None
    nginx_log: IO | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.nginx_port}"

    def render_nginx(self, down: tuple[int, ...] = ()) -> str:
        """Write nginx.conf from the repository's template (through scripts/cluster.sh), with the
        instances on the `down` ports out of rotation."""
        rendered = subprocess.run(
            [str(ROOT / "scripts" / "cluster.sh"), "render"], capture_output=True, text=True, check=True,
            env={**os.environ, "POSTERR_CLUSTER_DIR": str(CLUSTER_DIR), "POSTERR_CLUSTER_PORT": str(self.nginx_port),
                 "POSTERR_CLUSTER_APP_PORTS": " ".join(str(i.port) for i in self.instances),
                 "POSTERR_CLUSTER_DOWN_PORTS": " ".join(map(str, down))})
        return rendered.stdout.strip()

    def reload_nginx(self, down: tuple[int, ...] = ()) -> None:
        """Load a new config (SIGHUP) and wait until every old worker has finished its requests and
        exited: from then on, every request follows the new config."""
        self.render_nginx(down)
        old = live_children(self.nginx.pid)
        self.nginx.send_signal(signal.SIGHUP)
        wait_for(lambda: (now := live_children(self.nginx.pid)) and not now & old, 40, "nginx's old workers to exit")

    def restart(self, instance: Instance) -> None:
        """Start an instance again after a test killed or stopped it."""
        instance.stop()
        instance.start()
        instance.wait_serving()


def cluster_script(command: str, needed_for: str) -> list[str]:
    """What `scripts/cluster.sh COMMAND` prints (a tool it finds, or installs), one item per line."""
    found = subprocess.run([str(ROOT / "scripts" / "cluster.sh"), command], check=False, capture_output=True,
                           text=True, env={**os.environ, "POSTERR_CLUSTER_DIR": str(CLUSTER_DIR)}, timeout=600)
    if found.returncode != 0:
        pytest.fail(f"{command} is needed for {needed_for}: {found.stderr.strip()}")
    return found.stdout.split()


def nginx_binary() -> str:
    return cluster_script("nginx", "the cluster tests")[0]


@pytest.fixture(scope="module")
def cluster(servers):
    CLUSTER_DIR.mkdir(parents=True, exist_ok=True)
    (CLUSTER_DIR / "logs").mkdir(exist_ok=True)
    nginx_bin = nginx_binary()
    ports = []
    while len(ports) < INSTANCES + 1:
        port = _free_port()
        if port not in ports:
            ports.append(port)
    nginx_port, app_ports = ports[0], ports[1:]
    common = {**os.environ, "DATABASE_URL": servers.database_url, "REDIS_URL": servers.redis_url,
              "HOST": "127.0.0.1", "WEB_CONCURRENCY": "2", "POSTERR_THREADS": "8",
              "POSTERR_DAILY_POST_LIMIT": "5", "POSTERR_SECRET_KEY": SECRET, "POSTERR_POOL_TIMEOUT": "3",
              "POSTERR_REDIS_RETRY_AFTER": "0.5", "POSTERR_RATE_LIMIT": "off", "POSTERR_AUTH": "required"}
    instances = [Instance(n, port, {**common, "PORT": str(port)}) for n, port in enumerate(app_ports)]
    found = Cluster(instances, nginx_port, servers.database_url)
    conf = found.render_nginx()
    try:
        for instance in instances:
            instance.start()
        for instance in instances:
            instance.wait_serving()
        found.nginx_log = open(CLUSTER_DIR / "logs" / "nginx-start.log", "a")  # noqa: SIM115 (closed below)
        found.nginx = subprocess.Popen(
            [nginx_bin, "-p", f"{CLUSTER_DIR}/", "-c", conf, "-e", str(CLUSTER_DIR / "logs" / "nginx-error.log"),
             "-g", "daemon off;"],
            stdout=found.nginx_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

        def nginx_ready():
            assert found.nginx.poll() is None, f"nginx exited; see {CLUSTER_DIR / 'logs'}"
            return healthy(found.base)
        wait_for(nginx_ready, 30, "nginx to answer /healthz")
        yield found
    finally:
        if found.nginx is not None:
            kill_group(found.nginx, seconds=10)
        if found.nginx_log is not None:
            found.nginx_log.close()
        for instance in instances:
            instance.stop()


@pytest.fixture
def clean_state(sql, redis_client):
    """Empty tables and an empty Redis (like the integration tests)."""
    sql.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
    redis_client.flushdb()
