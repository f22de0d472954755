# Vane's entry points. `make run` starts a node, `make test` is what CI runs.
SHELL := /bin/bash
# One warm build directory outside the clone, shared by every checkout and by CI: a
# cold RocksDB build takes about 15 minutes on two cores.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/vane-target
CARGO ?= cargo

.PHONY: setup build test fmt lint run bench

setup:
	@scripts/setup-machine.sh

build: setup
	$(CARGO) build --workspace --all-targets

fmt:
	$(CARGO) fmt --all

lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

test: lint
	$(CARGO) test --workspace

run: setup
	$(CARGO) run --bin vaned --

bench: setup
	$(CARGO) bench -p vane-raft-store --bench apply_and_read
