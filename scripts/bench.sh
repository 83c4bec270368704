#!/usr/bin/env bash
# Every benchmark in one run, each figure with its goal and its ratio to it:
# built first, then run in a network namespace with only loopback up
# (scripts/loopback-only.sh: the labs are on 127.4.x.x, nothing else is).
#
#   scripts/bench.sh                         # every bench
#   scripts/bench.sh --bench plan            # one (cargo bench's own flags)
#   scripts/bench.sh --baseline main         # also measure gt as built from
#                                            # git ref `main`, runs alternating,
#                                            # printed side by side (after/before)
#
# benches/apply.rs reads GT_BENCH_SECTIONS, GT_BENCH_CASES, GT_BENCH_HOSTS,
# GT_BENCH_SPEED and GT_BENCH_RUNS (see its header).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = --baseline ]; then
    ref=${2:?--baseline needs a git ref}
    shift 2
    # Built from a clean export of the ref, in a target dir of its own, so
    # that neither build invalidates the other's.
    src=target/bench-baseline/src
    rm -rf "$src"
    mkdir -p "$src"
    git archive "$ref" | tar -x -C "$src"
    cargo build --release --locked --manifest-path "$src/Cargo.toml" \
        --target-dir target/bench-baseline/target --bin gt
    GT_BENCH_BASELINE="$PWD/target/bench-baseline/target/release/gt"
    export GT_BENCH_BASELINE
    # The ref's own plan bench, which benches/plan.rs runs between its rounds
    # (none when the ref has no benches/plan.rs).
    GT_BENCH_PLAN_BASELINE=$(cargo bench --locked --no-run --bench plan \
        --manifest-path "$src/Cargo.toml" --target-dir target/bench-baseline/target \
        --message-format=json 2>/dev/null |
        sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1) || GT_BENCH_PLAN_BASELINE=
    export GT_BENCH_PLAN_BASELINE
    echo "bench: baseline is gt built from $ref ($(git rev-parse --short "$ref"))" >&2
fi

cargo bench --locked --no-run "$@"
exec scripts/loopback-only.sh cargo bench --frozen "$@"
