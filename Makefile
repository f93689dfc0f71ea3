# Two commands on a fresh machine (Python 3.11 + make): `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
# make run is the development server: debug on, console email, SQLite under var/.
DEV_ENV := DJANGO_DEBUG=1

.PHONY: run test install chromium migrate seed clean bench

$(VENV)/.installed: requirements.txt build-constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade 'pip>=25.3'
	# XStatic-Bootstrap ships only an sdist whose setup.py still imports pkg_resources.
	$(PY) -m pip install -q --disable-pip-version-check --build-constraint build-constraints.txt -r requirements.txt
	@touch $@

install: $(VENV)/.installed

migrate: install
	$(DEV_ENV) $(PY) manage.py migrate --noinput

seed: migrate
	$(DEV_ENV) $(PY) manage.py seed_demo

run: seed
	@echo ""
	@echo "  Taskmanager: http://127.0.0.1:$(PORT)/   (admin: http://127.0.0.1:$(PORT)/admin/)"
	@echo "  Logins (password = username): admin (superuser), manager (audit), obiwan + yoda (jedi-council), mace (jedi-temple)"
	@echo "  Ctrl-C stops the web server and the worker."
	@echo ""
	@# One process group: Ctrl-C (or either process dying) stops the web server and the worker.
	@$(DEV_ENV) bash -c 'trap "trap - INT TERM EXIT; kill 0 2>/dev/null" INT TERM EXIT; \
		TASKMANAGER_BASE_URL=$${TASKMANAGER_BASE_URL:-http://127.0.0.1:$(PORT)} $(PY) manage.py run_worker --interval 1 & \
		$(PY) manage.py runserver 127.0.0.1:$(PORT) & \
		wait -n'

# Browser tests drive Debian's Chromium; install it when absent (never `playwright install`).
chromium:
	@test -x /usr/bin/chromium || { echo "Installing Debian chromium for the browser tests"; \
		(apt-get install -y -q chromium >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null)); }
	@test -x /usr/bin/chromium || { echo "ERROR: /usr/bin/chromium is missing and could not be installed" >&2; exit 1; }

test: install chromium
	$(PY) -m pytest $(PYTEST_ARGS)

# Benchmarks against DESIGN §10 on the local PostgreSQL (bench/README.md): generates the
# tm_bench_<size> databases when missing, measures, writes var/bench/report.md. Not part of test.
BENCH_SIZES ?= 10k 100k 1m
bench: install
	@command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null
	@for s in $(BENCH_SIZES); do $(PY) bench/generate.py $$s --if-missing || exit 1; done
	$(PY) bench/search.py $(BENCH_SIZES)
	$(PY) bench/pages.py $(BENCH_SIZES)
	$(PY) bench/http_search.py $(BENCH_SIZES)
	$(PY) bench/throughput.py $(lastword $(BENCH_SIZES))
	$(PY) bench/report.py

clean:
	rm -rf $(VENV) var staticfiles
