#!/usr/bin/env bash
# Runs a command in a network namespace of its own with only loopback up, so
# that nothing it starts can reach a real host: cluster.toml names
# goldentooth's real 10.4.x.x addresses, and any attempt to reach them fails
# at once with "Network is unreachable". The lab's 127.4.x.x addresses, its
# sshd and haproxy work there as anywhere.
#
#   scripts/loopback-only.sh cargo test --frozen
#
# Needs root (unshare -n) and ip(8). Where no namespace can be made it says
# so and runs the command as it is. Build and fetch crates before: there is
# no network inside.
set -euo pipefail

if [ "${GT_LOOPBACK_ONLY:-}" = 1 ]; then
  exec "$@"
fi
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null 2>&1 && command -v ip >/dev/null 2>&1 \
  && unshare -n true 2>/dev/null; then
  echo "loopback-only: running in a network namespace with only loopback up: $*" >&2
  GT_LOOPBACK_ONLY=1 exec unshare -n sh -c 'ip link set lo up && exec "$@"' sh "$@"
fi
echo "loopback-only: cannot make a network namespace (needs root, unshare -n and ip); running with this machine's network: $*" >&2
exec "$@"
