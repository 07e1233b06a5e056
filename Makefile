# AMAP Atlas — `make demo` and `make test` set everything up from nothing on Debian.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
MANAGE := $(PY) manage.py
STAMP := $(VENV)/.requirements-installed
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_AMAPS ?= 2000
DEMO_FARMS ?= 3000
DEMO_SEED ?= 1

# Development defaults; production sets DEBUG=0, SECRET_KEY and ALLOWED_HOSTS itself.
export DEBUG ?= 1

.PHONY: help demo test bench lint format setup system venv assets db db-stop migrate reference demo-data serve clean

help:
	@echo "make demo   – set up everything (system packages, venv, PostGIS, data) and serve on http://$(HOST):$(PORT)"
	@echo "make test   – the same set-up, then the whole test suite against real PostGIS"
	@echo "make bench  – benchmarks (prints 'name value unit' lines)"
	@echo "make lint   – ruff"
	@echo "make serve  – production server (collectstatic + gunicorn); a worker runs beside it: scripts/worker.sh"

system:
	@bash scripts/system-deps.sh

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $(STAMP)

venv: system $(STAMP)

assets: venv
	@bash scripts/assets.sh

db: system
	@if [ -z "$$DATABASE_URL" ]; then bash scripts/db.sh start; else echo "DATABASE_URL set: using it"; fi

db-stop:
	@bash scripts/worker.sh stop
	@bash scripts/db.sh stop

migrate: venv db
	$(MANAGE) migrate --noinput

reference: migrate
	$(MANAGE) load_territories --if-empty

setup: venv assets db migrate reference

demo-data: reference
	$(MANAGE) load_demo --if-empty --amaps $(DEMO_AMAPS) --farms $(DEMO_FARMS) --seed $(DEMO_SEED)
	$(MANAGE) load_demo_contracts --if-empty

demo: setup demo-data
	$(MANAGE) ensure_demo_admin
	@bash scripts/worker.sh start
	@echo "AMAP Atlas on http://$(HOST):$(PORT)/  (admin: http://$(HOST):$(PORT)/admin/, admin@example.org / demo)"
	@trap 'bash scripts/worker.sh stop' EXIT; $(MANAGE) runserver $(HOST):$(PORT)

test: venv assets db
	$(PY) -m pytest $(PYTEST_ARGS)

serve: venv assets
	bash scripts/serve.sh

bench: setup
	$(PY) benchmarks/run.py $(BENCH_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean: db-stop
	rm -rf .var $(VENV)
