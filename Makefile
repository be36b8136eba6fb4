# Posterr — `make run` serves the app (settings: posterr/config.py, the README's configuration table),
# `make test` runs the whole suite.
# Both work on a fresh clone: they make .venv, install requirements and, unless DATABASE_URL /
# REDIS_URL are set, start project-local PostgreSQL and Redis under .data/ (logs there too).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum < requirements.txt | cut -d' ' -f1)
SERVICES := scripts/services.sh
WITH_SERVICES := service_env=$$($(SERVICES) up) && eval "$$service_env" &&
DBMATE := $(BIN)/dbmate --migrations-dir db/migrations --schema-file db/schema.sql
PYTEST_ARGS ?=

.PHONY: run test venv services-up services-down services-status migrate schema psql redis-cli lint clean \
        queries explain cache-stats cache-keys cache-flush seed bench loadtest cluster cluster-down test-cluster \
        test-variants ha ha-down test-ha

# A machine of your own: the development key is allowed unless POSTERR_ENV says otherwise.
run: venv migrate
	@$(WITH_SERVICES) echo "posterr: starting gunicorn (Ctrl-C stops; 'make services-down' stops the databases)" && \
	  POSTERR_ENV=$${POSTERR_ENV:-development} exec $(BIN)/gunicorn -c posterr/gunicorn_conf.py

test: venv
	@$(BIN)/python -m pytest $(PYTEST_ARGS)

venv: $(STAMP)

$(STAMP): requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11+ (Debian: apt-get install python3 python3-venv)" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { echo "error: could not create $(VENV); install python3-venv" >&2; exit 1; }
	@echo "posterr: installing requirements into $(VENV) (log: $(VENV)/pip.log)"
	@$(BIN)/python -m pip install --disable-pip-version-check -r requirements.txt > $(VENV)/pip.log 2>&1 || { tail -n 20 $(VENV)/pip.log >&2; exit 1; }
	@rm -f $(VENV)/.installed-* && touch $@

services-up:
	@$(SERVICES) up >/dev/null

services-down:
	@$(SERVICES) down

services-status:
	@$(SERVICES) status

migrate: venv
	@$(WITH_SERVICES) $(DBMATE) --wait --no-dump-schema up

# Rewrites db/schema.sql from a throw-away database migrated from scratch.
schema: venv
	@$(WITH_SERVICES) url="$${DATABASE_URL%%\?*}" && url="$${url%/*}/posterr_schema?$${DATABASE_URL#*\?}" && \
	  $(DBMATE) --url "$$url" drop >/dev/null 2>&1; $(DBMATE) --url "$$url" up && $(DBMATE) --url "$$url" drop

psql:
	@$(WITH_SERVICES) exec psql "$$DATABASE_URL"

redis-cli:
	@$(WITH_SERVICES) exec redis-cli -u "$$REDIS_URL"

lint: venv
	@$(BIN)/ruff check posterr tests loadtests

# Operator shortcuts (python -m posterr …) against the configured or local servers.
queries: venv
	@$(BIN)/python -m posterr queries

explain: venv  # make explain Q=page_latest ARGS="author_id=7 limit=11"
	@$(WITH_SERVICES) $(BIN)/python -m posterr explain $(Q) $(ARGS)

cache-stats: venv
	@$(WITH_SERVICES) $(BIN)/python -m posterr cache stats

cache-keys: venv  # make cache-keys PATTERN='posterr:user:*'
	@$(WITH_SERVICES) $(BIN)/python -m posterr cache keys '$(or $(PATTERN),posterr:*)'

cache-flush: venv
	@$(WITH_SERVICES) $(BIN)/python -m posterr cache flush

clean: services-down
	rm -rf .data $(VENV)

# Bulk seed data into the configured database (loadtests/seed.py; RESET=1 empties it first).
USERS ?= 1000
POSTS ?= 10000
FOLLOWS ?= 20
seed: venv migrate
	@$(WITH_SERVICES) $(BIN)/python -m loadtests.seed --users $(USERS) --posts $(POSTS) \
	  --follows-per-user $(FOLLOWS) $(if $(RESET),--reset)

# wrk against the app in its production configuration, over a database of its own (posterr_bench), in
# POSTERR_AUTH=legacy mode so that POST with user_id and POST with a token are measured side by side;
# results on stdout and in loadtests/results/. More options: make bench BENCH_ARGS=--help
BENCH_POSTS ?= 1000000
BENCH_USERS ?= 10000
BENCH_DURATION ?= 5s
BENCH_ROUNDS ?= 5
BENCH_CONNECTIONS ?= 16
BENCH_THREADS ?= 1
BENCH_ARGS ?=
PEER_URL ?=
BENCH_SYNC ?=
bench: venv
	@$(WITH_SERVICES) $(BIN)/python -m loadtests.bench --posts $(BENCH_POSTS) --users $(BENCH_USERS) \
	  --duration $(BENCH_DURATION) --connections $(BENCH_CONNECTIONS) --threads $(BENCH_THREADS) \
	  --rounds $(BENCH_ROUNDS) $(if $(PEER_URL),--peer-url '$(PEER_URL)') $(if $(BENCH_SYNC),--sync-standby) $(BENCH_ARGS)

# locust (loadtests/locustfile.py), headless, against the app as `make bench` runs it but in
# POSTERR_AUTH=required mode, every simulated user acting with a token of its own (LOADTEST_ARGS=--help);
# fails when over 1% of requests fail or p95 exceeds LOADTEST_P95_MS. Reports in loadtests/results/.
LOCUST_USERS ?= 200
LOCUST_SPAWN_RATE ?= 50
LOCUST_TIME ?= 60s
LOADTEST_P95_MS ?= 50
LOADTEST_ARGS ?=
LOADTEST_POSTS ?= 10000
LOADTEST_USERS ?= 1000
loadtest: venv
	@$(WITH_SERVICES) $(BIN)/python -m loadtests.loadtest --users $(LOCUST_USERS) --spawn-rate $(LOCUST_SPAWN_RATE) \
	  --run-time $(LOCUST_TIME) --p95-ms $(LOADTEST_P95_MS) --posts $(LOADTEST_POSTS) --seed-users $(LOADTEST_USERS) \
	  $(LOADTEST_ARGS)

# Three gunicorn instances (ports 5001-5003) behind nginx on 127.0.0.1:5000 (scripts/cluster.sh;
# logs in .data/cluster/logs), sharing the local PostgreSQL, reading from a streaming replica of it
# (port 54330), and a 3-master Redis Cluster (ports 7001-7003). A DATABASE_URL or REDIS_URL of your
# own is used as it is (give its replicas in DATABASE_REPLICA_URLS). Foreground: Ctrl-C stops it
# gracefully. `scripts/cluster.sh up` starts it detached; `make cluster-down` stops either; `make
# services-down` stops the databases, the replica and the Redis Cluster.
cluster: venv migrate
	@$(if $(DATABASE_URL),,replica_env=$$($(SERVICES) replica-up) && eval "$$replica_env" &&) \
	  $(if $(REDIS_URL),,redis_env=$$($(SERVICES) redis-cluster-up) && eval "$$redis_env" &&) \
	  $(WITH_SERVICES) exec scripts/cluster.sh run

cluster-down:
	@scripts/cluster.sh down

# The cluster, replica and Redis Cluster tests (they also run in `make test`), then `make
# test-variants`: the whole integration suite twice more, with every app reading from a streaming
# replica that applies commits 2 s late, and against a 3-master Redis Cluster. Their own servers,
# ports and nginx. CI runs test-variants after `make test` (not test-cluster: its first part would
# run the cluster tests a second time).
test-cluster: venv
	@$(BIN)/python -m pytest tests/cluster tests/integration/test_replicas.py tests/integration/test_redis_cluster.py \
	  $(PYTEST_ARGS)
	@$(MAKE) --no-print-directory test-variants

test-variants: venv
	@POSTERR_TEST_REPLICA_DELAY=2s $(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)
	@POSTERR_TEST_REDIS_CLUSTER=1 $(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

# PostgreSQL that fails over by itself (scripts/ha.sh): three PostgreSQL members under Patroni with etcd
# (ports 25431-25433, synchronous replication, logs in .data/ha/logs), then the app instances of
# `make cluster` against it (DATABASE_URL lists every member; the standbys serve reads) and a 3-master
# Redis Cluster. Foreground: Ctrl-C stops the app; `make ha-down` stops everything it started.
# `make test-ha` runs the fail-over tests (tests/ha) on their own ports and folders.
HA_CLUSTER_DIR := .data/ha/cluster
ha: venv
	@ha_env=$$(scripts/ha.sh up) && eval "$$ha_env" && \
	  $(if $(REDIS_URL),,redis_env=$$($(SERVICES) redis-cluster-up) && eval "$$redis_env" &&) \
	  POSTERR_CLUSTER_DIR=$(HA_CLUSTER_DIR) exec scripts/cluster.sh run

ha-down:
	@POSTERR_CLUSTER_DIR=$(HA_CLUSTER_DIR) scripts/cluster.sh down
	@scripts/ha.sh down
	@$(if $(REDIS_URL),,$(SERVICES) redis-cluster-down)

test-ha: venv
	@POSTERR_TEST_HA=1 $(BIN)/python -m pytest tests/ha $(PYTEST_ARGS)

# A randomized fault soak (loadtests/soak.py): its own PostgreSQL, Redis, three gunicorn instances and
# nginx on free ports, files and logs under .data/soak; MINUTES of mixed Locust load while Redis,
# PostgreSQL and app faults are injected from a schedule drawn from SEED (random unless given; printed
# at the start and the end, so `make soak SEED=…` replays it). Prints the tables, writes
# loadtests/results/soak-<timestamp>-seed<seed>.json, exits non-zero on any violation.
# TOPOLOGY=replicated: reads also from a streaming PostgreSQL replica, Redis is a 3-master Redis
# Cluster, and replica stops, replay pauses and Redis master kills join the schedule.
# TOPOLOGY=ha: PostgreSQL is a Patroni cluster of three (scripts/ha.sh, ports 25501-25503), and primary
# kills, switchovers and partitions replace the faults of the one PostgreSQL server.
MINUTES ?= 5
SEED ?=
TOPOLOGY ?= single
.PHONY: soak
soak: venv
	@$(BIN)/python -m loadtests.soak --minutes $(MINUTES) --topology $(TOPOLOGY) $(if $(SEED),--seed $(SEED))
