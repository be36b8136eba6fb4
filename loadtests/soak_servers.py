"""The soak's own servers: PostgreSQL and Redis from scripts/services.sh, three gunicorn instances
behind nginx from scripts/cluster.sh, all on free ports of 127.0.0.1 and with every file and log
under one data folder (.data/soak by default), so a soak runs beside `make run`, `make test` and
`make cluster`. It never uses DATABASE_URL / REDIS_URL: it stops and kills these servers, so they
must be its own.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from psycopg import sql

from loadtests import harness
from loadtests.processes import group_alive, live_children

INSTANCES = 3
CLUSTER_MASTERS = 3
DAILY_POST_LIMIT = 5
DATABASE = "posterr"
# TOPOLOGY=ha: PostgreSQL under Patroni (scripts/ha.sh), on ports below the kernel's ephemeral range
# (the members are restarted while the load holds ports from it).
HA_PG_PORTS, HA_API_PORTS, HA_ETCD_PORT = (25501, 25502, 25503), (25511, 25512, 25513), 25520


def free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = harness.free_port()
        if port not in ports:
            ports.append(port)
    return ports


def cluster_ports() -> list[int]:
    """Ports for the Redis Cluster's masters whose cluster bus ports (+100) are free too."""
    ports: list[int] = []
    while len(ports) < CLUSTER_MASTERS:
        port = harness.free_port()
        if port not in ports and port + 100 < 65536 and _free(port + 100):
            ports.append(port)
    return ports


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0



class SoakServers:
    def __init__(self, data: Path, topology: str = "single") -> None:
        """topology: `single` (one PostgreSQL, one Redis), `replicated` (reads also from a streaming
        replica of PostgreSQL, and a 3-master Redis Cluster instead of the one Redis) or `ha` (three
        PostgreSQL members under Patroni, the standbys serving reads; one Redis)."""
        self.data = data
        self.replicated = topology == "replicated"
        self.ha = topology == "ha"
        (self.pg_port, self.redis_port, self.nginx_port, self.replica_port,
         *ports) = free_ports(4 + CLUSTER_MASTERS + INSTANCES)
        self.app_ports = ports[CLUSTER_MASTERS:]
        self.redis_cluster_ports = cluster_ports() if self.replicated else []
        # The app reaches Redis through proxies that `redis-refuse` makes refuse: one in front of the
        # standalone server, or one per cluster master, which tells clients its proxy's port
        # (cluster-announce-port) while the cluster bus goes direct. Proxied server -> proxy port.
        self.proxied = dict(zip(self.redis_cluster_ports if self.replicated else [self.redis_port], ports))
        self.cluster_dir = data / "cluster"
        self.database_url = f"postgres://posterr@127.0.0.1:{self.pg_port}/{DATABASE}?sslmode=disable"
        self.replica_url = f"postgres://posterr@127.0.0.1:{self.replica_port}/{DATABASE}?sslmode=disable"
        port = self.redis_cluster_ports[0] if self.replicated else self.redis_port
        self.redis_url = f"redis://127.0.0.1:{port}/0"
        self.app_redis_url = f"redis://127.0.0.1:{self.proxied[port]}/0"
        self._proxies: dict[int, subprocess.Popen] = {}
        inherited = {name: value for name, value in os.environ.items()
                     if name not in ("DATABASE_URL", "REDIS_URL", "PROMETHEUS_MULTIPROC_DIR", "POSTERR_SECRET_KEY",
                                     "POSTERR_CLUSTER_DOWN_PORTS", "DATABASE_REPLICA_URLS")}
        self.ha_env = {**inherited, "POSTERR_HA_DIR": str(data / "ha"),
                       "POSTERR_HA_PG_PORTS": " ".join(map(str, HA_PG_PORTS)),
                       "POSTERR_HA_API_PORTS": " ".join(map(str, HA_API_PORTS)), "POSTERR_HA_ETCD_PORT": str(HA_ETCD_PORT)}
        self.services_env = {**inherited, "POSTERR_DATA_DIR": str(data), "POSTERR_PG_PORT": str(self.pg_port),
                             # with `ha`, services.sh starts only Redis: PostgreSQL is the cluster's
                             **({"DATABASE_URL": "the Patroni cluster"} if self.ha else {}),
                             "POSTERR_REDIS_PORT": str(self.redis_port),
                             "POSTERR_REPLICA_PG_PORT": str(self.replica_port),
                             **({"POSTERR_REDIS_TOPOLOGY": "cluster",
                                 "POSTERR_REDIS_CLUSTER_PORTS": " ".join(map(str, self.redis_cluster_ports)),
                                 "POSTERR_REDIS_CLUSTER_ANNOUNCED_PORTS": " ".join(map(str, self.proxied.values()))}
                                if self.replicated else {})}
        # The app in its production configuration (tokens required), but no per-client rate limit
        # and no gunicorn control socket (nothing uses it).
        self.cluster_env = {**inherited, "DATABASE_URL": self.database_url, "REDIS_URL": self.app_redis_url,
                            **({"DATABASE_REPLICA_URLS": self.replica_url} if self.replicated else {}),
                            "POSTERR_CLUSTER_DIR": str(self.cluster_dir),
                            "POSTERR_CLUSTER_PORT": str(self.nginx_port),
                            "POSTERR_CLUSTER_APP_PORTS": " ".join(map(str, self.app_ports)),
                            "WEB_CONCURRENCY": "2", "POSTERR_RATE_LIMIT": "off", "POSTERR_CONTROL_SOCKET": "off",
                            "POSTERR_DAILY_POST_LIMIT": str(DAILY_POST_LIMIT), "POSTERR_AUTH": "required"}

    @property
    def nginx_base(self) -> str:
        return f"http://127.0.0.1:{self.nginx_port}"

    @property
    def bases(self) -> list[str]:
        """nginx first, then every instance directly."""
        return [self.nginx_base] + [f"http://127.0.0.1:{port}" for port in self.app_ports]

    def describe(self) -> str:
        proxies = ", ".join(f":{proxy} → :{port}" for port, proxy in self.proxied.items())
        if self.replicated:
            postgres = f"PostgreSQL :{self.pg_port} and its replica :{self.replica_port}, Redis Cluster " + \
                       ", ".join(f":{port}" for port in self.redis_cluster_ports)
        elif self.ha:
            postgres = (f"PostgreSQL under Patroni :{', :'.join(map(str, HA_PG_PORTS))} (etcd :{HA_ETCD_PORT}), "
                        f"Redis :{self.redis_port}")
        else:
            postgres = f"PostgreSQL :{self.pg_port}, Redis :{self.redis_port}"
        data_tier = f"{postgres} (the app's through proxies {proxies})"
        return (f"{data_tier}, nginx :{self.nginx_port} → gunicorn "
                f"{', '.join(f':{port}' for port in self.app_ports)} (2 workers each); logs under {self.data}")

    # --- the scripts ------------------------------------------------------------------------------

    def services(self, *args: str, timeout: float = 120) -> None:
        """scripts/services.sh for the soak's pair; its messages go to services.log."""
        self._script("services.sh", args, self.services_env, self.data / "services.log", timeout)

    def cluster(self, *args: str, timeout: float = 180) -> None:
        """scripts/cluster.sh for the soak's cluster; its messages go to cluster.log."""
        self._script("cluster.sh", args, self.cluster_env, self.data / "cluster.log", timeout)

    def ha_script(self, *args: str, timeout: float = 180) -> str:
        """scripts/ha.sh for the soak's Patroni cluster: what it prints; its messages go to ha.log."""
        return self._script("ha.sh", args, self.ha_env, self.data / "ha.log", timeout, keep_output=True)

    def _script(self, name: str, args: tuple[str, ...], env: dict[str, str], log_path: Path, timeout: float,
                keep_output: bool = False) -> str:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "a") as log:
            done = subprocess.run([str(harness.ROOT / "scripts" / name), *args], env=env, cwd=harness.ROOT,
                                  stdout=subprocess.PIPE if keep_output else log, stderr=log if keep_output else
                                  subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=timeout, check=False, text=True)
        if done.returncode:
            raise RuntimeError(f"scripts/{name} {' '.join(args)} failed ({done.returncode}); see {log_path}")
        return done.stdout or ""

    # --- start and stop ---------------------------------------------------------------------------

    def up(self) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        # What an interrupted earlier soak may have left running from this folder (PostgreSQL is
        # found by its data folder whatever its port, the cluster by its pid files).
        self.cluster("down")
        self.services("down")
        self.services("up")
        if self.ha:
            self.ha_script("reset")  # every run starts from a new cluster, its database freshly migrated
            self.use_ha_cluster(self.ha_script("up", timeout=300))
        else:
            self.fresh_database()
        self.start_proxies()
        if self.replicated:
            self.services("replica-up")
            self.services("redis-cluster-up")
        self.services("flush-redis")
        self.cluster("up")

    def use_ha_cluster(self, exported: str) -> None:
        """The app and the checks use the URLs `scripts/ha.sh up` printed."""
        urls = dict(re.findall(r"^export (\w+)='([^']*)'$", exported, re.MULTILINE))
        self.database_url = urls["DATABASE_URL"]
        self.cluster_env.update(DATABASE_URL=urls["DATABASE_URL"], DATABASE_REPLICA_URLS=urls["DATABASE_REPLICA_URLS"])

    def first_write_after(self, since: float, seconds: float = 90) -> float:
        """Seconds from `since` (time.monotonic()) to a sign-up (a write that needs no token) acknowledged
        through nginx, asking every 0.1 s for a user of its own, outside the load's ledger."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            status, _, _ = harness.http_post(f"{self.nginx_base}/api/users", {
                "username": f"probe{secrets.token_hex(4)}", "password": secrets.token_urlsafe(18)})
            if status == 201:
                return time.monotonic() - since
            time.sleep(0.1)  # polling until writes are taken again
        raise RuntimeError(f"no write was acknowledged within {seconds:g} s")

    def fresh_database(self) -> None:
        """Every run starts from an empty, freshly migrated database."""
        admin = harness.sibling_database(self.database_url, "postgres")
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE)))
        harness.migrate(self.database_url, self.data / "migrate.log")

    def down(self) -> None:
        """Stop everything, each step whatever the previous one did (a frozen Redis is thawed first:
        its shutdown would wait for an answer forever)."""
        steps = [lambda: self.services("thaw-redis"), lambda: self.cluster("down"), self.stop_proxies,
                 lambda: self.services("down")]
        if self.ha:  # a member frozen by primary-partition is thawed first, or it would never stop
            steps += [lambda: [self.ha_script("thaw-member", str(port)) for port in HA_PG_PORTS],
                      lambda: self.ha_script("down")]
        for step in steps:
            try:
                step()
            except Exception as error:  # noqa: BLE001 — said, and the next step runs all the same
                harness.say(f"warning: {type(error).__name__}: {error}")

    # --- the proxies in front of Redis ----------------------------------------------------------

    def start_proxies(self) -> None:
        self.stop_proxies()
        with open(self.data / "proxy.log", "a") as log:
            for port, proxy in self.proxied.items():
                self._proxies[port] = subprocess.Popen(
                    [sys.executable, "-m", "loadtests.refusing_proxy", str(proxy), f"127.0.0.1:{port}"],
                    cwd=harness.ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        for port, proxy in self.proxied.items():
            while not _listening(proxy):
                if self._proxies[port].poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the Redis proxy did not listen on :{proxy}; see {self.data / 'proxy.log'}")
                time.sleep(0.05)  # polling the port until the proxy listens

    def refuse_redis(self, port: int, kind: str | None) -> str:
        """The proxy in front of the Redis server on `port` refuses connections and cuts the open ones
        (`redis-refuse`), or refuses new ones and cuts every other open one (`redis-refuse-new`), or
        (None) accepts them again."""
        signals = {"redis-refuse": signal.SIGUSR1, "redis-refuse-new": signal.SIGHUP, None: signal.SIGUSR2}
        self._proxies[port].send_signal(signals[kind])
        if kind is None:
            return f"the proxy :{self.proxied[port]} accepts connections again"
        cut = "the open ones" if kind == "redis-refuse" else "every other open one, keeping the rest,"
        return f"the proxy :{self.proxied[port]} in front of Redis :{port} refuses connections and cuts {cut} " \
               "while Redis keeps every key"

    def stop_proxies(self) -> None:
        for proxy in self._proxies.values():
            proxy.terminate()
            proxy.wait(timeout=10)
        self._proxies.clear()

    # --- the app's processes ----------------------------------------------------------------------

    def reads_by_target(self) -> dict[str, int]:
        """posterr_db_reads_total summed over the instances (since each last started)."""
        totals: dict[str, int] = {}
        for base in self.bases[1:]:
            _, _, body = harness.http_get(f"{base}/metrics")
            for target, value in re.findall(r'^posterr_db_reads_total\{target="(\w+)"\} (\S+)$', body.decode(),
                                            re.MULTILINE):
                totals[target] = totals.get(target, 0) + int(float(value))
        return totals

    def master_pid(self, port: int) -> int:
        return int((self.cluster_dir / f"app-{port}.pid").read_text())

    def worker_pids(self, port: int) -> list[int]:
        master = self.master_pid(port)
        return sorted(live_children(master))

    def kill_instance(self, port: int) -> int:
        """SIGKILL the master and workers of one instance (its own process group); returns the
        master's pid once none of them is left."""
        master = self.master_pid(port)
        os.killpg(master, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while group_alive(master):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the instance on :{port} (pid {master}) survived SIGKILL for 10 s")
            time.sleep(0.05)  # polling /proc until the kernel has taken the processes down
        return master
