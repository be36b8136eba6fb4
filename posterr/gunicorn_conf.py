"""gunicorn settings for `make run` (and the Docker image): `gunicorn -c posterr/gunicorn_conf.py`.
Every value that can be set comes from posterr/config.py (the README's configuration table)."""

import os
import shutil
import sys
import tempfile

from gunicorn.glogging import Logger

from posterr import logs
from posterr.config import METRICS_DIR_VARIABLE, Settings, check_secret_key, metrics_dir
from posterr.errors import ConfigError

# The master checks every setting before it starts a worker: a mistake stops it with one line that
# names the variable, instead of each worker failing to boot with a traceback.
try:
    settings = Settings.from_env()
    check_secret_key(settings)
    _metrics_dir = metrics_dir()
except ConfigError as error:
    sys.exit(f"posterr: {error}")

bind = f"{settings.host}:{settings.port}"
workers = settings.workers
# gunicorn's gthread worker, with deadlines on reading a request's headers and body (see there).
worker_class = "posterr.gunicorn_worker.Worker"
threads = settings.threads
wsgi_app = "posterr.app:create_app()"
graceful_timeout = 20
timeout = 30
# Recycle a worker after about this many requests (bounds slow leaks); the jitter keeps the workers
# of an instance from restarting together. A recycled worker drains like on SIGTERM, and the master
# and its siblings keep the listening socket open meanwhile, so no connection is refused.
max_requests = settings.max_requests
max_requests_jitter = settings.max_requests_jitter
# Idle keep-alive connections are kept longer than a client's think time (and than a load
# balancer's idle timeout): with gunicorn's 2 s default, a client reusing a connection just as the
# server closes it sees "connection closed without response" (docs/performance.md says how often).
keepalive = settings.keepalive
# The worker heartbeat file in memory: on a container's overlay filesystem a slow write could get a
# healthy worker killed for "timeout".
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"
# gunicorn's control socket (for `gunicornc`): one per port unless named (see config.py).
if settings.control_socket == "off":
    control_socket_disable = True
else:
    control_socket = settings.control_socket
limit_request_line = 8190
limit_request_fields = 100
# A header line up to 16 KiB reaches the app, so that an oversized Authorization header gets the
# app's 401 problem (a bad token) instead of gunicorn's own plain-text 400.
limit_request_field_size = 16384
# The app writes one JSON access line per request itself (with the route template and request id);
# gunicorn's own lines go out in the same JSON shape.
accesslog = None
errorlog = "-"


class _Logger(Logger):
    """gunicorn's logger, minus the access line nobody reads: with a logging config given (below),
    gunicorn builds every request's access-log fields for its `gunicorn.access` logger even though
    that logger prints nothing. An --access-logfile given on the command line still works."""

    def access(self, resp, req, environ, request_time):
        if self.cfg.accesslog:
            super().access(resp, req, environ, request_time)


logger_class = _Logger

loglevel = settings.log_level.lower()
logconfig_dict = logs.gunicorn_config(loglevel)

# Prometheus multiprocess mode: every worker writes its samples here, /metrics adds them up. A
# fresh folder per start, so a restarted server does not count its predecessor's requests.
# prometheus_client learns the folder only from this variable, read when a worker imports it.
_own_metrics_dir = _metrics_dir is None
if _own_metrics_dir:
    _metrics_dir = os.environ[METRICS_DIR_VARIABLE] = tempfile.mkdtemp(prefix="posterr-metrics-")


def on_exit(server):
    if _own_metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):
    # The pool's sockets and threads must belong to the worker, so it opens after the fork.
    worker.wsgi.config["posterr.context"].start()
    # A request stuck past POSTERR_REQUEST_TIMEOUT: stop accepting, let the others finish, exit;
    # the master starts a fresh worker (exit code 1: gunicorn halts on 3 and 4, its boot errors).
    worker.wsgi.config["posterr.watchdog"].start(stop_accepting=lambda: setattr(worker, "alive", False),
                                                 exit_process=lambda: os._exit(1))


def worker_exit(server, worker):
    context = getattr(worker, "wsgi", None) and worker.wsgi.config.get("posterr.context")
    if context:
        context.stop()
