"""The Docker deployments' files, checked without a Docker engine: docker-compose.yml and
docker-compose.ha.yml with the compose tool (`scripts/cluster.sh compose` installs Debian's
docker-compose when there is none), deploy/nginx.compose.conf with `nginx -t`, and
deploy/patroni.yml beside the Patroni image that reads it."""

from __future__ import annotations

import os
import subprocess

import pytest
import yaml

from tests.cluster.conftest import cluster_script, nginx_binary
from tests.conftest import ROOT

SINGLE_PRIMARY = ("docker-compose.yml", {"postgres", "postgres-replica", "redis", "migrate", "app", "nginx"},
                  ("init.sql:/docker-entrypoint-initdb.d/init.sql", "postgres-replica:5432"))
FAILING_OVER = ("docker-compose.ha.yml", {"etcd", "pg1", "pg2", "pg3", "redis", "migrate", "app", "nginx"},
                ("pg1:5432,pg2:5432,pg3:5432/posterr?sslmode=disable&target_session_attrs=read-write",
                 "pg3:5432/posterr?sslmode=disable&target_session_attrs=standby", "--enable-v2",
                 "dockerfile: deploy/patroni.Dockerfile", "PATRONI_POSTGRESQL_CONNECT_ADDRESS: pg2:5432"))


@pytest.mark.parametrize(("name", "services", "expected"), [SINGLE_PRIMARY, FAILING_OVER],
                         ids=["single-primary", "failing-over"])
def test_compose_file_is_valid(name, services, expected):
    tool = cluster_script("compose", "checking the compose files")
    # Without POSTERR_AUTH in the environment: the files' own default is what is checked.
    env = {**{key: value for key, value in os.environ.items() if key != "POSTERR_AUTH"},
           "POSTERR_SECRET_KEY": "posterr-compose-check-secret-0123456789",
           "POSTERR_CORS_ORIGINS": "https://posterr.example"}

    def compose(*args: str) -> str:
        done = subprocess.run([*tool, "-f", str(ROOT / name), *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, check=False, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    compose("config", "-q")
    assert set(compose("config", "--services").split()) == services
    rendered = compose("config")
    for found in (*expected, "appendonly", "service_completed_successfully", "replicas: 3",
                  "nginx.compose.conf:/etc/nginx/nginx.conf", "5000"):
        assert found in rendered, found
    services_rendered = yaml.safe_load(rendered)["services"]
    app = services_rendered["app"]["environment"]
    assert app["POSTERR_AUTH"] == "required"
    # The one trusted proxy is nginx's own fixed address, and the origins are the operator's.
    assert app["POSTERR_TRUSTED_PROXIES"] == services_rendered["nginx"]["networks"]["default"]["ipv4_address"]
    assert app["POSTERR_CORS_ORIGINS"] == "https://posterr.example"
    for required in ("POSTERR_SECRET_KEY", "POSTERR_CORS_ORIGINS"):
        refused = subprocess.run([*tool, "-f", str(ROOT / name), "config", "-q"], cwd=ROOT, capture_output=True,
                                 env={key: value for key, value in env.items() if key != required},
                                 text=True, check=False, timeout=60)
        assert refused.returncode != 0 and f"set {required}" in refused.stderr, refused.stderr


def test_the_patroni_image_runs_the_shared_configuration():
    """deploy/patroni.yml is what the image copies and what scripts/ha.sh lays its members over: the
    cluster-wide settings that make a write wait for a standby are in it, and no password is."""
    dockerfile = (ROOT / "deploy" / "patroni.Dockerfile").read_text()
    assert "COPY deploy/patroni.yml /etc/patroni/patroni.yml" in dockerfile
    assert 'CMD ["patroni", "/etc/patroni/patroni.yml"]' in dockerfile
    assert "deploy/patroni.yml" in (ROOT / "scripts" / "ha.sh").read_text()
    config = yaml.safe_load((ROOT / "deploy" / "patroni.yml").read_text())
    dcs = config["bootstrap"]["dcs"]
    assert (dcs["synchronous_mode"], dcs["synchronous_mode_strict"]) == (True, True)
    assert dcs["postgresql"]["use_pg_rewind"] is True
    assert "etcd" in config and "etcd3" not in config
    assert "password" not in keys_of(config)


def keys_of(tree) -> set[str]:
    if isinstance(tree, dict):
        return set(tree) | {key for value in tree.values() for key in keys_of(value)}
    if isinstance(tree, list):
        return {key for item in tree for key in keys_of(item)}
    return set()


def test_compose_nginx_config_passes_nginx_t(tmp_path):
    """The local nginx may predate the `resolve` parameter (1.27.3) and cannot resolve the `app`
    service's name: those two are swapped for a loopback address; temp folders go under tmp_path."""
    text = (ROOT / "deploy" / "nginx.compose.conf").read_text()
    assert "server app:5000 resolve" in text
    assert "location = /metrics {" in text  # kept from the public edge, as in the loopback cluster's
    text = text.replace("server app:5000 resolve", "server 127.0.0.1:5000")
    text = text.replace("pid /tmp/nginx.pid;", f"pid {tmp_path}/nginx.pid;")
    temp = "".join(f"    {kind}_temp_path {tmp_path}/{kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    text = text.replace("http {\n", "http {\n" + temp, 1)
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    checked = subprocess.run([nginx_binary(), "-t", "-p", f"{tmp_path}/", "-c", str(conf), "-e", "stderr"],
                             capture_output=True, text=True, check=False, timeout=30)
    assert checked.returncode == 0, checked.stderr
