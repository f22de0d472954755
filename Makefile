# Vane's entry points. `make run` starts a node, `make test` is what CI runs.
SHELL := /bin/bash
# One warm build directory outside the clone, shared by every checkout and by CI: a
# cold RocksDB build takes about 15 minutes on two cores.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/vane-target
CARGO ?= cargo

.PHONY: setup build test fmt lint run cluster cluster-down bench

setup:
	@scripts/setup-machine.sh

build: setup
	$(CARGO) build --workspace --all-targets

fmt:
	$(CARGO) fmt --all

lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p vane-node --features planted-bugs --all-targets -- -D warnings

# vaned-planted (vaned with a deliberate bug, for the jepsen-style suite's proof that its
# checkers catch violations) is built alone, so the normal vaned never has the feature.
test: lint
	$(CARGO) build -p vane-node --features planted-bugs --bin vaned-planted
	$(CARGO) test --workspace

run: setup
	$(CARGO) run --bin vaned --

# A three-node cluster of real vaned processes in ./vane-cluster (stop it with
# `make cluster-down`).
cluster: setup
	$(CARGO) build -p vane-node -p vane-cluster
	$(CARGO_TARGET_DIR)/debug/vane-cluster up --nodes 3 --dir ./vane-cluster

cluster-down:
	$(CARGO_TARGET_DIR)/debug/vane-cluster down --dir ./vane-cluster

bench: setup
	$(CARGO) bench -p vane-raft-store --bench apply_and_read

# Vane against etcd 3.4 on this machine (issue 9), release builds, one system at a time:
# the tables go to the terminal, every run's JSON under $(CARGO_TARGET_DIR)/bench-results.
# About 12 minutes on two cores. Scale or narrow it with BENCH_FLAGS, e.g.
# BENCH_FLAGS="--repetitions 3 --recovery-keys 100000" or BENCH_FLAGS="--only put-64,store".
.PHONY: bench-compare bench-watch
bench-compare: setup
	$(CARGO) build --release -p vane-node -p vane-bench
	$(CARGO_TARGET_DIR)/release/vane-bench compare --vaned $(CARGO_TARGET_DIR)/release/vaned \
		--results-dir $(CARGO_TARGET_DIR)/bench-results $(BENCH_FLAGS)

# What the put rows could reach with part of the store's work taken away: the same rows
# for vaned-planted with each benchmark floor (raft-store/src/planted.rs), each against
# etcd in its own run. About 8 minutes; BENCH_FLAGS as above.
.PHONY: bench-floors
bench-floors: setup
	scripts/bench-floors.sh $(BENCH_FLAGS)

# The 10,000-watcher benchmark alone (issue 4): the watch-scale section of bench-compare.
bench-watch: setup
	$(CARGO) build --release -p vane-node -p vane-bench
	$(CARGO_TARGET_DIR)/release/vane-bench watch-scale --vaned $(CARGO_TARGET_DIR)/release/vaned \
		--results-dir $(CARGO_TARGET_DIR)/bench-results $(BENCH_FLAGS)

# The long jepsen-style suite (issue 8): every workload under every nemesis, on three
# nodes, JEPSEN_TIME seconds each (default 60; about 50 minutes in all). Each run prints
# one line; run directories go to ./jepsen-runs. Needs root.
.PHONY: jepsen
JEPSEN_TIME ?= 60
jepsen: setup
	$(CARGO) build -p vane-node --bin vaned -p vane-jepsen
	$(CARGO) build -p vane-node --features planted-bugs --bin vaned-planted
	@status=0; seed=1; \
	for w in register set append watch lease; do \
	  for n in partition loss kill pause clock membership disk delay; do \
	    $(CARGO_TARGET_DIR)/debug/vane-jepsen run --workload $$w --nemesis $$n --nodes 3 \
	      --time $(JEPSEN_TIME) --seed $$seed --out jepsen-runs/$$w-$$n-$$seed || status=1; \
	    seed=$$((seed + 1)); \
	  done; \
	done; exit $$status
