"""gunicorn settings for `make run` (and the Docker image): `gunicorn -c posterr/gunicorn_conf.py`."""

import multiprocessing
import os

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
worker_class = "gthread"
threads = int(os.environ.get("POSTERR_THREADS", "4"))
wsgi_app = "posterr.app:create_app()"
graceful_timeout = 20
timeout = 30
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
accesslog = os.environ.get("POSTERR_ACCESS_LOG", "-")
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()


def post_worker_init(worker):
    # The pool's sockets and threads must belong to the worker, so it opens after the fork.
    worker.wsgi.config["posterr.context"].start()


def worker_exit(server, worker):
    context = getattr(worker, "wsgi", None) and worker.wsgi.config.get("posterr.context")
    if context:
        context.stop()
