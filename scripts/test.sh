#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this).
# Installs what the tests need on Debian when run as root: openssh-server
# (real sshd for the SSH transport and lab tests), haproxy (the lab's
# load balancer), groff-base (the man page test renders gt(1)), zsh and fish
# (the completion tests load gt's scripts into them). Without root, says what
# is missing and goes on.
# Builds everything first (fetching crates), then runs the tests in a network
# namespace with only loopback up (scripts/loopback-only.sh), so that no test
# can reach a real host. A test that needs sshd or haproxy fails here when it
# is missing (GT_TEST_REQUIRE; outside this script it shows as ignored).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "MISSING: cargo, the Rust toolchain (1.89 or newer). Install it with rustup: https://rustup.rs" >&2
  echo "(Debian's own cargo package is too old for gt's dependencies.)" >&2
  exit 1
fi

need=()
command -v /usr/sbin/sshd >/dev/null 2>&1 || need+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v groff >/dev/null 2>&1 || need+=(groff-base)
command -v zsh >/dev/null 2>&1 || need+=(zsh)
command -v fish >/dev/null 2>&1 || need+=(fish)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
if ((${#need[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "MISSING: ${need[*]} (install them with apt-get as root); tests that need them will say so and fail" >&2
  fi
fi

export GT_TEST_REQUIRE=1
cargo test --locked --all-features --no-run 2>&1
exec scripts/loopback-only.sh cargo test --frozen --all-features --no-fail-fast 2>&1
