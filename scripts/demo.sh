#!/usr/bin/env bash
# gt's main job, end to end, on the lab: a simulated goldentooth on loopback
# (127.4.x.x; the real 10.4.x.x is never contacted), observed, planned,
# bootstrapped, checked for drift (as cron would), repaired, then torn down.
#
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "MISSING: cargo, the Rust toolchain (1.89 or newer). Install it with rustup: https://rustup.rs" >&2
  echo "(Debian's own cargo package is too old for gt's dependencies.)" >&2
  exit 1
fi

# Outside the namespace: install and build (they need the package
# registries); then run the demo itself again where only loopback is up
# (scripts/loopback-only.sh), so nothing it starts can reach a real host.
if [ "${GT_LOOPBACK_ONLY:-}" != 1 ]; then
  if ! command -v haproxy >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "== installing haproxy (the lab's real load balancer)"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null
    else
      echo "note: haproxy is not installed; the lab's own daemon will stand on the endpoint instead"
    fi
  fi

  if ! command -v ip >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing iproute2 (ip, to run the demo where only loopback is up)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 >/dev/null
  fi
  echo "== real etcd 3.5 for the lab's control planes"
  if etcd_dir="$(scripts/install-etcd.sh)"; then
    export GT_LAB_ETCD_DIR="$etcd_dir"
  else
    echo "note: no etcd 3.5; the lab keeps etcd as a model instead"
  fi
  cargo build --release --locked
  exec scripts/loopback-only.sh bash "$0" "$@"
fi

GT="$PWD/target/release/gt"
LAB="$PWD/.gt-lab"
CFG="$LAB/cluster.toml"
gt() { echo "\$ gt $*" >&2; "$GT" "$@"; }

"$GT" lab down --dir "$LAB" >/dev/null 2>&1 || true
trap '"$GT" lab down --dir "$LAB" >/dev/null 2>&1 || true' EXIT

echo "== the desired state"
gt validate
echo
echo "== the DAG of a full bootstrap (contacts no host)"
gt graph --format mermaid | head -14
echo "  ..."
echo
echo "== a simulated goldentooth on loopback, its hosts fresh OS installs"
# goldentooth's file, plus the one opt-in a bare Pi needs: gt may edit its
# kernel command line (memory cgroup) and reboot it.
TOPO="$PWD/target/demo-goldentooth.toml"
{ cat cluster.toml; printf '\n[defaults.host]\nallow_reboot = true\n'; } >"$TOPO"
gt lab up --dir "$LAB" --from "$TOPO" --speed "${GT_LAB_SPEED:-0.02}" --hosts "${GT_LAB_HOSTS:-bare}"
echo
echo "== plan against the empty lab (observed live, one probe per host)"
gt -c "$CFG" plan | tail -22
echo

echo "== apply: hosts prepared (packages, containerd, swap, kernel; the Pis rebooted), init, CNI, control planes one at a time behind readiness gates, workers in parallel"
gt -c "$CFG" apply --auto-approve
echo
echo "== plan again: nothing left to do"
gt -c "$CFG" plan --detailed-exitcode && echo "(exit 0: no changes)"
echo
gt -c "$CFG" status
echo
echo "== drift, as cron runs it: in sync (exit 0), metrics for Prometheus"
PROM="$LAB/gt.prom"
gt -c "$CFG" drift --quiet --prometheus "$PROM" && echo "(exit 0: in sync)"
grep -E '^gt_(check_success|in_sync)' "$PROM" | sed 's/^/  /'
echo
echo "== behind gt's back: someone removes fenn's storage label and stops dalt's kubelet"
"$GT" -c "$CFG" exec bettley -- 'kubectl --kubeconfig "$GT_HOST_ROOT/etc/kubernetes/admin.conf" label node fenn goldentooth.io/storage-' >/dev/null 2>&1
"$GT" -c "$CFG" exec dalt -- 'systemctl stop kubelet' >/dev/null 2>&1
set +e
gt -c "$CFG" drift
echo "(exit $?: drift)"
gt -c "$CFG" drift --quiet --prometheus "$PROM"
echo "(exit $?; the textfile now says:)"
set -e
grep -E '^gt_(in_sync|drift_items\{.*kind="(label|kubelet)")' "$PROM" | sed 's/^/  /'
echo
gt -c "$CFG" exec k8s_worker -- uname -m | awk -F' [|] ' 'NF == 2 {print $2}' | sort | uniq -c | sed 's/^ */  /'
echo
echo "== apply repairs both: relabels fenn, starts dalt's kubelet and waits for its Node"
gt -c "$CFG" apply --auto-approve | tail -4
echo
gt -c "$CFG" drift && echo "(exit 0: in sync again)"
echo
gt lab down --dir "$LAB"
trap - EXIT
