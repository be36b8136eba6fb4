# Posterr — `make run` serves on PORT (5000), `make test` runs the whole suite.
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

.PHONY: run test venv services-up services-down services-status migrate schema psql redis-cli lint clean

run: venv migrate
	@$(WITH_SERVICES) echo "posterr: serving on port $${PORT:-5000} (Ctrl-C stops; 'make services-down' stops the databases)" && \
	  exec $(BIN)/gunicorn -c posterr/gunicorn_conf.py

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

clean: services-down
	rm -rf .data $(VENV)
