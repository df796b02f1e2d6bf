# Makefile: the two commands a new user needs (make run, make test) and the ones we work with.
# Works on a fresh machine with only Node/npm and an installed PostgreSQL: installs Bun when it is
# missing, installs dependencies, and starts PostgreSQL when it is installed but down.
SHELL := /bin/bash
BUN_VERSION := 1.4.4
BUN := $(shell command -v bun 2>/dev/null || echo bun)
PG_URL ?= postgres://postgres@127.0.0.1:5432/jobqueue
CONFIG ?= examples/jobqueue.toml

.PHONY: help run run-pg test test-faults soak bench bench-deps build release release-smoke check bun deps pg clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

bun: ## install Bun $(BUN_VERSION) from npm when it is missing
	@command -v bun >/dev/null 2>&1 || { echo "installing bun@$(BUN_VERSION)"; npm install -g --allow-scripts=bun bun@$(BUN_VERSION) >/dev/null 2>&1 || npm install -g bun@$(BUN_VERSION); }
	@bun --version >/dev/null

node_modules/.installed: package.json bun.lock $(wildcard patches/*.patch) | bun
	bun install --frozen-lockfile
	@touch $@

deps: node_modules/.installed ## install dependencies

pg: ## start the local PostgreSQL when it is installed but not running
	@bash scripts/ensure-postgres.sh

run: deps ## run the server on the embedded store (./data/jobqueue.db) with the example job types
	bun src/main.ts serve --config $(CONFIG)

run-pg: deps pg ## run the server on PostgreSQL ($(PG_URL)) with the example job types
	@psql "$(PG_URL:/jobqueue=/postgres)" -tAc "SELECT 1 FROM pg_database WHERE datname = 'jobqueue'" | grep -q 1 \
	  || psql "$(PG_URL:/jobqueue=/postgres)" -c "CREATE DATABASE jobqueue" >/dev/null
	DATABASE_URL="$${DATABASE_URL:-$(PG_URL)}" bun src/main.ts serve --config $(CONFIG)

test: deps pg build ## run every quick test (unit, store, HTTP, end to end on the binary)
	bun test --timeout 60000

build: deps ## compile the single executable dist/jobqueue (for this machine)
	scripts/build-binary.sh native dist/jobqueue

release: deps ## cross-compile dist/release/jobqueue-<version>-<target> and SHA256SUMS; TARGETS="linux-arm64 …" for some
	scripts/release.sh $(TARGETS)

release-smoke: release ## start the release binaries (linux-arm64 under qemu) and run a job on each; verify the systemd unit
	scripts/release-smoke.sh $(TARGETS)

check: deps ## typecheck
	node_modules/.bin/tsc --noEmit

clean: ## remove build output
	rm -rf dist

test-faults: deps pg build ## slow suites: kill -9 loops, PostgreSQL restarts, SIGTERM under load, races, disk faults, fuzz, store model
	bun test --timeout 600000 ./tests/faults/*.fault.ts

soak: deps build ## endurance: 10 minutes of steady load, prints RSS, latency and throughput per window
	bun bench/soak.ts --minutes $${MINUTES:-10} --rate $${RATE:-500} --store $${STORE:-postgres}

bench-deps: deps ## install the benchmark tools: wrk (Debian) and bench/'s own packages (peers, flatqueue)
	@command -v wrk >/dev/null 2>&1 || apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
	cd bench && bun install --frozen-lockfile

bench: build bench-deps pg ## run every benchmark one after another and print one markdown table (~5 min); BENCH="heap e2e" for some rows
	bun bench/run.ts $(BENCH)
