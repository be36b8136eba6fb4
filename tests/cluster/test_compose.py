"""The Docker deployment's files, checked without a Docker engine: docker-compose.yml with whichever
compose tool is installed (skipped when none is), and deploy/nginx.compose.conf with `nginx -t`."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.cluster.conftest import _nginx_binary
from tests.conftest import ROOT


def _compose_tool() -> list[str] | None:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True,
                                                 check=False, timeout=30).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_compose_file_is_valid():
    tool = _compose_tool()
    if tool is None:
        pytest.skip("no compose tool installed (docker compose or docker-compose)")
    env = {**os.environ, "POSTERR_SECRET_KEY": "compose-check"}

    def compose(*args: str) -> str:
        done = subprocess.run([*tool, "-f", str(ROOT / "docker-compose.yml"), *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, check=False, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    compose("config", "-q")
    assert set(compose("config", "--services").split()) == {"postgres", "postgres-replica", "redis", "migrate", "app", "nginx"}
    rendered = compose("config")
    for expected in ("init.sql:/docker-entrypoint-initdb.d/init.sql", "appendonly", "service_completed_successfully",
                     "replicas: 3", "nginx.compose.conf:/etc/nginx/nginx.conf", "5000"):
        assert expected in rendered, expected


def test_compose_nginx_config_passes_nginx_t(tmp_path):
    """The local nginx may predate the `resolve` parameter (1.27.3) and cannot resolve the `app`
    service's name: those two are swapped for a loopback address; temp folders go under tmp_path."""
    text = (ROOT / "deploy" / "nginx.compose.conf").read_text()
    assert "server app:5000 resolve" in text
    text = text.replace("server app:5000 resolve", "server 127.0.0.1:5000")
    text = text.replace("pid /tmp/nginx.pid;", f"pid {tmp_path}/nginx.pid;")
    temp = "".join(f"    {kind}_temp_path {tmp_path}/{kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    text = text.replace("http {\n", "http {\n" + temp, 1)
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    checked = subprocess.run([_nginx_binary(), "-t", "-p", f"{tmp_path}/", "-c", str(conf), "-e", "stderr"],
                             capture_output=True, text=True, check=False, timeout=30)
    assert checked.returncode == 0, checked.stderr
