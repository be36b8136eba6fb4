"""Settings: config.py alone reads the environment, each default is written once (in Settings), a bad
value stops the start with an error naming the variable, and gunicorn takes its values from there."""

from __future__ import annotations

import ast
import multiprocessing
import os
import re
import runpy
from dataclasses import MISSING, fields
from ipaddress import ip_network
from pathlib import Path

import pytest

from posterr.config import DEV_SECRET, METRICS_DIR_VARIABLE, MIN_SECRET_KEY, Settings, check_secret_key, metrics_dir
from posterr.errors import ConfigError

POSTERR = Path(__file__).resolve().parents[2] / "posterr"
REQUIRED = {"DATABASE_URL": "postgres://db/posterr", "REDIS_URL": "redis://cache/0"}
A_KEY = "k" * MIN_SECRET_KEY
SERVER = REQUIRED | {"POSTERR_SECRET_KEY": A_KEY}  # what a server outside development needs
VARIABLES = [setting.metadata["variable"] for setting in fields(Settings)]


def test_each_variable_is_one_setting():
    assert len(VARIABLES) == len(set(VARIABLES))


def test_unset_or_empty_variables_take_the_defaults_written_in_settings():
    """from_env has no defaults of its own: they are the dataclass fields'."""
    empty = dict.fromkeys(VARIABLES, "") | REQUIRED
    fields_only = Settings(database_url=REQUIRED["DATABASE_URL"], redis_url=REQUIRED["REDIS_URL"])
    assert Settings.from_env(REQUIRED) == Settings.from_env(empty) == fields_only


README = POSTERR.parent / "README.md"
SETTINGS = {setting.metadata["variable"]: setting for setting in fields(Settings)}
# Read by other code than Settings, or only as part of another setting's default.
NOT_SETTINGS = {METRICS_DIR_VARIABLE}
SHOWN_INSIDE_A_DEFAULT = {"XDG_RUNTIME_DIR"}  # POSTERR_CONTROL_SOCKET's


def readme_configuration() -> dict[str, str]:
    """The README's configuration table: each variable and its default as written there (a row
    `A` / `B` with `x` / `y` is two; `_JITTER` after `POSTERR_MAX_REQUESTS` is that name's)."""
    text = README.read_text()
    table = text[text.index("| variable | default | meaning |"):].split("\n\n", 1)[0].splitlines()[2:]
    found = {}
    for line in table:
        names_cell, default_cell = (cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip("|"))[:2])
        names = re.findall(r"`([A-Z_]+)`", names_cell)
        names = [names[0] + name if name.startswith("_") else name for name in names]
        defaults = default_cell.split(" / ") if len(names) > 1 else [default_cell]
        assert len(defaults) == len(names), line
        found.update(zip(names, defaults, strict=True))
    return found


def test_the_readme_table_names_every_setting_and_no_other_variable():
    assert set(readme_configuration()) == set(SETTINGS) - SHOWN_INSIDE_A_DEFAULT | NOT_SETTINGS


# Defaults the README writes in words, and the value each stands for.
IN_WORDS = {"none": (), "CPU count": multiprocessing.cpu_count(), "a development key (only with `POSTERR_ENV=development`)": DEV_SECRET,
            "`$XDG_RUNTIME_DIR/posterr-$PORT.ctl`, else `~/.gunicorn/posterr-$PORT.ctl`":
                os.path.expanduser("~/.gunicorn/posterr-5000.ctl")}  # XDG_RUNTIME_DIR unset here


@pytest.mark.parametrize("variable", sorted(set(SETTINGS) - SHOWN_INSIDE_A_DEFAULT))
def test_the_readme_gives_each_default_that_settings_has(variable):
    """A default written as a value (`5`, `600/minute`) is what the setting's own parser makes of it;
    one naming another variable is that one's; one in words is what IN_WORDS says it stands for."""
    written = readme_configuration()[variable]
    setting = SETTINGS[variable]
    defaults = Settings.from_env(REQUIRED)
    named = re.fullmatch(r"`([A-Z_]+)`", written)
    literal = re.fullmatch(r"`([^`$]*)`", written)
    if written == "local server (see above)":
        assert setting.default is MISSING and setting.default_factory is MISSING  # required: make sets it
    elif named and named[1] in SETTINGS:
        assert getattr(defaults, setting.name) == getattr(defaults, SETTINGS[named[1]].name)
    elif literal:
        assert getattr(defaults, setting.name) == setting.metadata["parse"](literal[1])
    else:
        assert getattr(defaults, setting.name) == IN_WORDS[written]



@pytest.mark.parametrize("env, attribute, value", [
    ({"POSTERR_CORS_ORIGINS": "a, b,"}, "cors_origins", ("a", "b")),
    ({"DATABASE_REPLICA_URLS": " postgres://a/x, ,postgres://b/x "}, "replica_urls", ("postgres://a/x", "postgres://b/x")),
    ({"POSTERR_RATE_LIMIT": "off"}, "rate_limit", None),
    ({"POSTERR_RATE_LIMIT": "5/Hour"}, "rate_limit", (5, 3600)),
    ({"POSTERR_TRUSTED_PROXIES": "10.0.0.0/8, ::1"}, "trusted_proxies", (ip_network("10.0.0.0/8"), ip_network("::1"))),
    ({"POSTERR_REDIS_TIMEOUT": "1.5"}, "redis_timeout", 1.5),
    ({"LOG_LEVEL": "warning"}, "log_level", "WARNING"),
    ({"POSTERR_THREADS": "8"}, "pool_max_size", 8),
    ({"POSTERR_THREADS": "8", "POSTERR_POOL_MAX_SIZE": "12"}, "pool_max_size", 12),
    ({"POSTERR_THREADS": "1", "POSTERR_POOL_MIN_SIZE": "1"}, "pool_max_size", 1),
    ({"PORT": "5001", "XDG_RUNTIME_DIR": "/run/user/7"}, "control_socket", "/run/user/7/posterr-5001.ctl"),
    ({"POSTERR_CONTROL_SOCKET": "/tmp/g.ctl", "PORT": "5001"}, "control_socket", "/tmp/g.ctl"),
    ({"POSTERR_CONTROL_SOCKET": "off"}, "control_socket", "off"),
    ({"POSTERR_SLOW_MS": "250"}, "slow_request_ms", 250),
    ({"POSTERR_SLOW_MS": " Off "}, "slow_request_ms", None),
    ({"POSTERR_SLOW_MS": "0"}, "slow_request_ms", None),
    ({}, "body_timeout", 5.0),
    ({}, "header_timeout", 5.0),
    ({"POSTERR_HEADER_TIMEOUT": "0.5"}, "header_timeout", 0.5),
    ({"POSTERR_BODY_TIMEOUT": "0.5", "POSTERR_REQUEST_TIMEOUT": "1"}, "body_timeout", 0.5),
    ({"POSTERR_REDIS_RECONNECT_INTERVAL": "0.2"}, "redis_reconnect_interval", 0.2),
])
def test_given_values(env, attribute, value):
    assert getattr(Settings.from_env(REQUIRED | env), attribute) == value


@pytest.mark.parametrize("env, message", [
    ({}, "DATABASE_URL and REDIS_URL not set"),
    ({"DATABASE_URL": "postgres://x"}, "REDIS_URL not set"),
    (REQUIRED | {"POSTERR_DAILY_POST_LIMIT": "five"}, "POSTERR_DAILY_POST_LIMIT='five': expected a whole number of at least 1"),
    (REQUIRED | {"POSTERR_DAILY_POST_LIMIT": "0"}, "POSTERR_DAILY_POST_LIMIT='0': expected a whole number of at least 1"),
    (REQUIRED | {"POSTERR_TIMELINE_SIZE": "0"}, "POSTERR_TIMELINE_SIZE='0': expected a whole number of at least 1"),
    (REQUIRED | {"POSTERR_FANOUT_MAX_FOLLOWERS": "-1"}, "at least 0"),
    (REQUIRED | {"POSTERR_REDIS_TIMEOUT": "-1"}, "POSTERR_REDIS_TIMEOUT='-1': expected a positive number of seconds"),
    (REQUIRED | {"POSTERR_REQUEST_TIMEOUT": "inf"}, "POSTERR_REQUEST_TIMEOUT='inf': expected a positive number"),
    (REQUIRED | {"POSTERR_POOL_TIMEOUT": "nan"}, "POSTERR_POOL_TIMEOUT='nan': expected a positive number"),
    (REQUIRED | {"PORT": "70000"}, "PORT='70000': expected a whole number from 1 to 65535"),
    (REQUIRED | {"WEB_CONCURRENCY": "auto"}, "WEB_CONCURRENCY='auto': expected a whole number of at least 1"),
    (REQUIRED | {"POSTERR_THREADS": "0"}, "POSTERR_THREADS='0': expected a whole number of at least 1"),
    (REQUIRED | {"POSTERR_MAX_REQUESTS": "-1"}, "POSTERR_MAX_REQUESTS='-1': expected a whole number of at least 0"),
    (REQUIRED | {"LOG_LEVEL": "verbose"}, "LOG_LEVEL='verbose': expected one of DEBUG, INFO, WARNING, ERROR"),
    (REQUIRED | {"POSTERR_SLOW_MS": "0.5"}, "POSTERR_SLOW_MS='0.5': expected a whole number of milliseconds, or off"),
    (REQUIRED | {"POSTERR_SLOW_MS": "-1"}, "POSTERR_SLOW_MS='-1': expected a whole number of milliseconds, or off"),
    (REQUIRED | {"POSTERR_RATE_LIMIT": "10/fortnight"}, "POSTERR_RATE_LIMIT='10/fortnight': expected N/second"),
    (REQUIRED | {"POSTERR_TRUSTED_PROXIES": "10.0.0.0/8,proxy"}, "PROXIES='10.0.0.0/8,proxy': expected comma-sep"),
    (REQUIRED | {"POSTERR_POOL_MAX_SIZE": "3"}, "POSTERR_POOL_MAX_SIZE=3 is less than POSTERR_THREADS=4"),
    (REQUIRED | {"POSTERR_THREADS": "1"}, "POSTERR_POOL_MIN_SIZE=2 is more than the pool's max size 1"),
    (REQUIRED | {"POSTERR_POOL_MIN_SIZE": "9", "POSTERR_POOL_MAX_SIZE": "8"}, "POSTERR_POOL_MIN_SIZE=9 is more"),
    (REQUIRED | {"POSTERR_BODY_TIMEOUT": "0"}, "POSTERR_BODY_TIMEOUT='0': expected a positive number of seconds"),
    (REQUIRED | {"POSTERR_HEADER_TIMEOUT": "soon"}, "POSTERR_HEADER_TIMEOUT='soon': expected a positive number"),
    (REQUIRED | {"POSTERR_BODY_TIMEOUT": "30"}, "POSTERR_BODY_TIMEOUT=30 is not less than POSTERR_REQUEST_TIMEOUT=30"),
    (REQUIRED | {"POSTERR_REQUEST_TIMEOUT": "2"}, "POSTERR_BODY_TIMEOUT=5 is not less than POSTERR_REQUEST_TIMEOUT=2"),
    (REQUIRED | {"POSTERR_REDIS_RECONNECT_INTERVAL": "10"},
     "POSTERR_REDIS_RECONNECT_INTERVAL=10 is not less than POSTERR_CACHE_INVALIDATION_DEADLINE=10"),
    (REQUIRED | {"POSTERR_CACHE_INVALIDATION_DEADLINE": "0.5"},
     "POSTERR_REDIS_RECONNECT_INTERVAL=1 is not less than POSTERR_CACHE_INVALIDATION_DEADLINE=0.5"),
])
def test_start_up_errors_name_the_variable_and_what_it_expects(env, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        Settings.from_env(env)


@pytest.mark.parametrize("given, found", [(None, None), ("", None), ("{tmp}", "{tmp}")])
def test_metrics_dir(tmp_path, given, found):
    env = {} if given is None else {METRICS_DIR_VARIABLE: given.format(tmp=tmp_path)}
    assert metrics_dir(env) == (found and found.format(tmp=tmp_path))


def test_a_missing_metrics_dir_is_a_start_up_error(tmp_path):
    with pytest.raises(ConfigError, match=f"{METRICS_DIR_VARIABLE}=.*: expected an existing folder"):
        metrics_dir({METRICS_DIR_VARIABLE: str(tmp_path / "gone")})


def _reads_environment(path: Path) -> list[int]:
    """Lines of a module that read os.environ or os.getenv (setting a variable is not reading it)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    written = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Subscript)
               and isinstance(node.ctx, ast.Store)}
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os"
            and node.attr in ("environ", "getenv") and id(node) not in written]


@pytest.mark.parametrize("module", sorted(path.relative_to(POSTERR).as_posix() for path in POSTERR.rglob("*.py")
                                          if path.name != "config.py"))
def test_only_config_reads_the_environment(module):
    assert _reads_environment(POSTERR / module) == []


def _gunicorn_conf(monkeypatch, tmp_path, env: dict[str, str]) -> dict:
    """posterr/gunicorn_conf.py's settings as gunicorn reads them, under exactly `env` (plus
    PROMETHEUS_MULTIPROC_DIR, so that it makes no folder of its own)."""
    for variable in VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    for variable, value in ({METRICS_DIR_VARIABLE: str(tmp_path)} | env).items():
        monkeypatch.setenv(variable, value)
    return runpy.run_path(str(POSTERR / "gunicorn_conf.py"))


@pytest.mark.parametrize("env, expected", [
    ({}, {"bind": "0.0.0.0:5000", "workers": multiprocessing.cpu_count(), "threads": 4, "max_requests": 100_000,
          "max_requests_jitter": 10_000, "keepalive": 10, "loglevel": "info",
          "control_socket": os.path.expanduser("~/.gunicorn/posterr-5000.ctl")}),
    ({"HOST": "127.0.0.1", "PORT": "5007", "WEB_CONCURRENCY": "3", "POSTERR_THREADS": "8",
      "POSTERR_MAX_REQUESTS": "0", "POSTERR_MAX_REQUESTS_JITTER": "0", "POSTERR_KEEPALIVE": "2",
      "LOG_LEVEL": "Warning", "XDG_RUNTIME_DIR": "/run/user/7"},
     {"bind": "127.0.0.1:5007", "workers": 3, "threads": 8, "max_requests": 0, "max_requests_jitter": 0,
      "keepalive": 2, "loglevel": "warning", "control_socket": "/run/user/7/posterr-5007.ctl",
      "worker_class": "posterr.gunicorn_worker.Worker"}),
    ({"POSTERR_CONTROL_SOCKET": "off"}, {"control_socket_disable": True}),
])
def test_gunicorn_takes_its_values_from_config(monkeypatch, tmp_path, env, expected):
    conf = _gunicorn_conf(monkeypatch, tmp_path, SERVER | env)
    assert {name: conf.get(name) for name in expected} == expected
    assert conf["logconfig_dict"]["root"]["level"] == conf["loglevel"].upper()
    assert ("control_socket" in conf) != conf.get("control_socket_disable", False)


@pytest.mark.parametrize("env, message", [
    ({}, "posterr: DATABASE_URL and REDIS_URL not set"),
    (REQUIRED | {"LOG_LEVEL": "verbose"}, "posterr: LOG_LEVEL='verbose': expected one of DEBUG, INFO, WARNING, ERROR"),
    (REQUIRED | {"PORT": "http"}, "posterr: PORT='http': expected a whole number from 1 to 65535"),
    (REQUIRED | {"POSTERR_THREADS": "8", "POSTERR_POOL_MAX_SIZE": "4"}, "posterr: POSTERR_POOL_MAX_SIZE=4 is less"),
    (SERVER | {METRICS_DIR_VARIABLE: "/nonexistent/posterr"}, "posterr: PROMETHEUS_MULTIPROC_DIR='/nonexistent/"),
    (REQUIRED, "posterr: POSTERR_SECRET_KEY is not set, so cursors would be signed with the development key"),
    (REQUIRED | {"POSTERR_ENV": "staging"}, "posterr: POSTERR_ENV='staging': expected production or development"),
    (REQUIRED | {"POSTERR_BODY_TIMEOUT": "45"}, "posterr: POSTERR_BODY_TIMEOUT=45 is not less than POSTERR_REQUEST_TIMEOUT=30"),
])
def test_gunicorn_stops_on_a_bad_setting_with_one_line(monkeypatch, tmp_path, env, message):
    with pytest.raises(SystemExit) as stopped:
        _gunicorn_conf(monkeypatch, tmp_path, env)
    assert str(stopped.value.code).startswith(message)


def test_gunicorn_makes_a_fresh_metrics_dir_and_removes_it_on_exit(monkeypatch, tmp_path):
    conf = _gunicorn_conf(monkeypatch, tmp_path, SERVER | {METRICS_DIR_VARIABLE: ""})
    made = os.environ[METRICS_DIR_VARIABLE]  # for prometheus_client in the workers; monkeypatch restores it
    assert made != str(tmp_path) and os.path.isdir(made)
    conf["on_exit"](None)
    assert not os.path.exists(made)


@pytest.mark.parametrize("env, refused", [
    ({}, "is not set"),
    ({"POSTERR_ENV": "production"}, "is not set"),
    ({"POSTERR_SECRET_KEY": DEV_SECRET}, "is not set"),
    ({"POSTERR_SECRET_KEY": "k" * (MIN_SECRET_KEY - 1)}, f"is shorter than {MIN_SECRET_KEY} characters"),
    ({"POSTERR_SECRET_KEY": A_KEY}, None),
    ({"POSTERR_ENV": "development"}, None),
    ({"POSTERR_ENV": "Development", "POSTERR_SECRET_KEY": "short"}, None),
])
def test_a_server_outside_development_starts_only_with_a_real_key(env, refused):
    settings = Settings.from_env(REQUIRED | env)
    if refused is None:
        check_secret_key(settings)
        return
    with pytest.raises(ConfigError) as stopped:
        check_secret_key(settings)
    assert str(stopped.value).startswith(f"POSTERR_SECRET_KEY {refused}")
    assert "openssl rand -hex 32" in str(stopped.value) and "POSTERR_ENV=development" in str(stopped.value)
