# Raiox AI: `make run` to use it, `make test` to check it. Everything installs into .venv and var/.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed
# Development and tests run the real open_clip architecture; without internet the real weights
# cannot be had, so they are explicitly allowed to fall back to untrained weights (pages say so).
export RAIOX_ALLOW_UNTRAINED_MODEL ?= 1
export PYTHONUNBUFFERED := 1

.PHONY: run test lint bench bench-intake setup venv db migrate seed admin browser ops-tools db-stop db-upgrade clean

venv: $(STAMP)

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip wheel
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

migrate: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py createcachetable

seed: migrate
	$(PY) manage.py seed_catalog

admin: migrate
	$(PY) manage.py create_roles
	$(PY) manage.py ensure_dev_admin

setup: seed admin

run: setup
	DEBUG=$${DEBUG:-1} bin/dev

# Another apt run (unattended upgrades, a second checkout's make) may hold dpkg's lock: wait for it.
APT = DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300

# Chromium for the browser tests: Debian's package (Playwright's own download cannot work here).
browser:
	@command -v chromium >/dev/null 2>&1 || ($(APT) update -qq && $(APT) install -y -qq chromium >/dev/null)

# nginx and systemd-analyze for the deploy-kit tests (tests/ops): Debian's packages.
ops-tools:
	@command -v nginx >/dev/null 2>&1 && command -v systemd-analyze >/dev/null 2>&1 || ($(APT) update -qq && $(APT) install -y -qq nginx-light systemd openssl >/dev/null)

test: venv browser ops-tools
	$(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/pytest

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: setup
	$(PY) -m bench.all

# Intake under load (issue 8): gunicorn as deployed, Jotform-shaped webhooks, exactly-once counts.
bench-intake: venv
	$(PY) -m bench.intake

db-stop: venv
	$(PY) -c "from pathlib import Path; from raiox.embedded_db import stop_embedded_server; stop_embedded_server(Path('var/pgdata'))"

# A var/pgdata made by the old embedded PostgreSQL 16 (pgserver): dump it, keep it as
# var/pgdata-pg16, restore the dump into PostgreSQL 18 on var/pgdata.
# The old PostgreSQL 16 binaries come from the pgserver package, needed only for this move.
db-upgrade: venv
	$(PY) -m pip install --quiet pgserver==0.1.4
	$(PY) -c "from pathlib import Path; from raiox.embedded_db import upgrade_embedded_data as f; print('old data kept in', f(Path('var/pgdata')))"

clean: db-stop
	rm -rf var/media var/pgdata var/screenshots
