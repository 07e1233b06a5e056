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

# The self-hosted address server (README « Adresses »), opt-in: `ADDOK=1 make demo` starts it beside
# the demo and points the site at it instead of the national API; DEPTS="33 24" loads those
# départements' address files (downloaded from the BAN, or FILES="…" already on disk).
export ADDOK_PORT ?= 7878
ifeq ($(ADDOK),1)
export GEOCODER_BAN_URL ?= http://127.0.0.1:$(ADDOK_PORT)
endif

.PHONY: help demo test check lint bench format setup system venv assets db db-stop migrate reference demo-data serve clean backup restore addok addok-stop addresses

help:
	@echo "make demo   – set up everything (system packages, venv, PostGIS, data) and serve on http://$(HOST):$(PORT)"
	@echo "make test   – make check, then the whole test suite against real PostGIS"
	@echo "make check  – make lint + no missing migration"
	@echo "make lint   – ruff check, ruff format --check, lint-imports (import contracts)"
	@echo "make bench  – benchmarks (prints 'name value unit' lines; BENCH_SOAK_SECONDS=60 shortens the 10-minute soak)"
	@echo "make backup – archive the database and MEDIA_ROOT into .var/backups/atlas-YYYYmmdd-HHMMSS.tar"
	@echo "make restore FILE=… [INTO=base] – restore an archive (a new database, or --replace via RESTORE_ARGS)"
	@echo "make serve  – production server (collectstatic + gunicorn); a worker runs beside it: scripts/worker.sh"
	@echo "make addok  – the self-hosted address server (Addok on a project-local Redis) on http://127.0.0.1:$(ADDOK_PORT)"
	@echo "make addresses DEPTS=\"33 24\" [FILES=…] – load those départements' BAN addresses into it"
	@echo "ADDOK=1 [DEPTS=…] make demo – the demo with its own address server"

system:
	@bash scripts/system-deps.sh

# One venv for every verb: the runtime set plus tests and tools (requirements-dev.txt includes
# requirements.txt and requirements-addok.txt, the self-hosted address server). The Docker image
# installs requirements.txt alone.
$(STAMP): requirements.txt requirements-dev.txt requirements-addok.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $(STAMP)

# Development settings (DEBUG=1, a random SECRET_KEY) so that `.venv/bin/python manage.py ...`
# runs as the README shows; written once, never overwritten.
.env:
	@bash scripts/dev-env.sh .env

venv: system $(STAMP) .env

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

demo: setup demo-data $(if $(filter 1,$(ADDOK)),addok $(if $(DEPTS)$(FILES),addresses))
	$(MANAGE) ensure_demo_admin
	@bash scripts/worker.sh start
	@echo "AMAP Atlas on http://$(HOST):$(PORT)/  (admin: http://$(HOST):$(PORT)/admin/, admin@example.org / demo)"
	@trap 'bash scripts/worker.sh stop' EXIT; $(MANAGE) runserver $(HOST):$(PORT)

# The checks and the tests see only the environment, never the developer's .env
# (the same settings on every machine and in CI).
test check lint: export ATLAS_ENV_FILE :=

test: check assets db
	$(PY) -m pytest $(PYTEST_ARGS)

addok: venv
	@bash scripts/addok.sh start
	@echo "The site asks it when GEOCODER_BAN_URL=http://127.0.0.1:$(ADDOK_PORT) (ADDOK=1 make demo sets it)."

addok-stop:
	@bash scripts/addok.sh stop

addresses: addok reference
	$(MANAGE) load_addresses $(if $(DEPTS),--departement $(DEPTS)) $(if $(FILES),--file $(FILES)) $(ADDRESSES_ARGS)

serve: venv assets
	bash scripts/serve.sh

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

check: lint db
	$(MANAGE) makemigrations --check --dry-run

bench: setup
	$(PY) benchmarks/run.py $(BENCH_ARGS)

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

backup: venv db
	$(MANAGE) backup $(BACKUP_ARGS)

restore: venv db
	@test -n "$(FILE)" || { echo "usage: make restore FILE=.var/backups/atlas-AAAAMMJJ-HHMMSS.tar [INTO=base] [RESTORE_ARGS=--replace]"; exit 2; }
	$(MANAGE) restore "$(FILE)" $(if $(INTO),--into "$(INTO)") $(RESTORE_ARGS)

clean: db-stop addok-stop
	rm -rf .var $(VENV)
