#!/usr/bin/env bash
# Installs what a fresh machine lacks to build and test Vane: libclang (RocksDB's
# bindings are generated at build time), etcd's client and server (the test suite and
# the benchmarks compare against the real thing), the fault injectors, and the Rust lint
# components.
# Idempotent: apt runs only when a package is missing.
set -euo pipefail

# iproute2, iptables, nftables, strace and faketime are the jepsen-style suite's fault injectors.
packages=(libclang-dev clang etcd-client etcd-server iproute2 iptables nftables strace faketime)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    sudo_cmd=()
    [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

for component in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^${component}" || rustup component add "$component"
done
