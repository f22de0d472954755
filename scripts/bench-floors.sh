#!/usr/bin/env bash
# Floors under the put rows of `make bench-compare` (issue 9): the same rows for vaned as
# built and for vaned-planted with part of the store's work taken away (see
# raft-store/src/planted.rs), each side by side with etcd in its own run. A floor loses
# data by design; it measures what that work costs, and how far a put could get with
# the work made free.
#
# Usage: scripts/bench-floors.sh [extra `vane-bench compare` flags, e.g. --repetitions 3]
set -euo pipefail
: "${CARGO_TARGET_DIR:?set CARGO_TARGET_DIR (the Makefile does)}"
cargo=${CARGO:-cargo}
"$cargo" build --release -p vane-node -p vane-bench
"$cargo" build --release -p vane-node --features planted-bugs --bin vaned-planted
release=$CARGO_TARGET_DIR/release
results=$CARGO_TARGET_DIR/bench-results/floors-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$results"

# label, then the planted bugs (none: vaned as built).
floors=(
  "as-built:"
  "value-once-layout:value-once-layout"
  "mvcc-unpersisted:mvcc-unpersisted"
  "no-fsync:ack-before-fsync"
  "no-fsync+mvcc-unpersisted:ack-before-fsync,mvcc-unpersisted"
)
for floor in "${floors[@]}"; do
  label=${floor%%:*}
  bugs=${floor#*:}
  vaned=$release/vaned-planted
  [[ -z $bugs ]] && vaned=$release/vaned
  echo "== $label ${bugs:+(vaned-planted --planted-bug $bugs)}"
  VANED_PLANTED_BUG=$bugs "$release/vane-bench" compare --vaned "$vaned" \
    --only put-1,put-64,put-256 --results-dir "$results/$label" "$@" | tee "$results/$label.txt"
done

echo
echo "floors (x = vane/etcd, each row from its own side-by-side run; results in $results)"
printf '%-26s %s\n' floor "$(grep -m1 '^workload ' "$results/as-built.txt")"
for floor in "${floors[@]}"; do
  label=${floor%%:*}
  grep '^put-' "$results/$label.txt" | while IFS= read -r row; do
    printf '%-26s %s\n' "$label" "$row"
  done
done
