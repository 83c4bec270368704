#!/usr/bin/env bash
# gt's main job, end to end, on the lab: bring up a simulated goldentooth on
# loopback, plan, apply, show drift, tear it down.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
GT=./target/release/gt
echo "== gt validate"
$GT validate
echo "== gt graph (the DAG of a full bootstrap; contacts no host)"
$GT graph --format mermaid | head -12
echo "   ..."
echo "== gt plan --facts tests/fixtures/facts/empty.json (a recorded empty cluster)"
$GT plan --facts tests/fixtures/facts/empty.json | tail -20
