#!/usr/bin/env bash
# `cargo bench` as benches/observe.sh runs: built first, then run in a
# network namespace with only loopback up (scripts/loopback-only.sh).
#
#   scripts/bench.sh                 # every bench
#   scripts/bench.sh --bench plan    # one
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --locked --no-run "$@"
exec scripts/loopback-only.sh cargo bench --frozen "$@"
