# rightswatch: `make demo` and `make test` are all a new machine needs (both run `setup` first).
SHELL := /bin/bash
PY := .venv/bin/python
VENV_STAMP := .venv/.setup-done
# Debian packages: libchromaprint (audio fingerprints), ffmpeg (benchmark transformations),
# chromium (--render-js, screenshots, review-page tests), nginx (benchmark site),
# exiftool (independent rights-metadata reader in tests), openssl (loopback TSA in tests).
APT_PACKAGES := libchromaprint1 libchromaprint-tools ffmpeg chromium nginx-light \
	libimage-exiftool-perl openssl sqlite3 postgresql-client
# The suite waits on crawls, servers and child processes more than it computes: 4 workers
# on 2 cores finish it sooner than 2.
PYTEST_WORKERS ?= 4

.PHONY: help setup demo test test-fast lint format bench golden fuzz clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

setup: $(VENV_STAMP) ## Install system libraries (apt-get, when missing) and the package into .venv/

$(VENV_STAMP): pyproject.toml
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing system packages: $$missing"; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

demo: setup ## Register sample works, crawl the bundled demo site on loopback, export and verify evidence
	.venv/bin/rightswatch demo

test: setup ## Run every test (SQLite and PostgreSQL), in parallel
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup -q

lint: setup ## ruff format --check, ruff check, mypy --strict
	.venv/bin/ruff format --check .
	.venv/bin/ruff check .
	.venv/bin/mypy

format: setup ## Apply ruff's formatting and safe fixes
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

bench: setup ## Benchmarks: matcher robustness, speed and scale; crawl vs bare Scrapy; 1 vs 2 workers
	@set -e; for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b; done

golden: setup ## Rewrite the golden fingerprint files (review the diff)
	$(PY) tests/data/golden/make_golden.py

fuzz: setup ## Longer fuzzing runs of the parsers and the pack verifier
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest -q -m fuzz tests

clean: ## Remove the venv, caches and local state
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache rightswatch-data
