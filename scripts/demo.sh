#!/usr/bin/env bash
# gt's main job, end to end, on the lab: a simulated goldentooth on loopback
# (127.4.x.x; the real 10.4.x.x is never contacted), observed, planned,
# bootstrapped, checked for drift, then torn down.
#
# `gt apply` is not built yet: the bootstrap below runs, through `gt exec`,
# the kubeadm/kubectl commands the plan's steps stand for (init, CNI,
# upload-certs, one token, control-plane joins in series, worker joins,
# labels and taints). When apply lands, that block becomes `gt apply`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "MISSING: cargo, the Rust toolchain (1.89 or newer). Install it with rustup: https://rustup.rs" >&2
  echo "(Debian's own cargo package is too old for gt's dependencies.)" >&2
  exit 1
fi

if ! command -v haproxy >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing haproxy (the lab's real load balancer)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null
  else
    echo "note: haproxy is not installed; the lab's own daemon will stand on the endpoint instead"
  fi
fi

cargo build --release --locked
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
echo "== a simulated goldentooth on loopback"
gt lab up --dir "$LAB" --speed "${GT_LAB_SPEED:-0.02}"
echo
echo "== plan against the empty lab (observed live, one probe per host)"
gt -c "$CFG" plan | tail -22
echo

echo "== bootstrap by hand, step by step as the plan's DAG orders it"
KC='--kubeconfig "$GT_HOST_ROOT/etc/kubernetes/admin.conf"'
ENDPOINT=$(sed -n 's/^endpoint = "\([^"]*\)".*/\1/p' "$CFG" | head -1)
gt -c "$CFG" exec bettley --group-output -- "kubeadm init --control-plane-endpoint=$ENDPOINT --kubernetes-version=stable-1.32 --service-cidr=172.16.0.0/20 --pod-network-cidr=192.168.0.0/16 --upload-certs --skip-token-print" | tail -3
gt -c "$CFG" exec bettley -- "kubectl $KC apply -f https://raw.githubusercontent.com/projectcalico/calico/v3.29.1/manifests/calico.yaml" | tail -1
# The readiness gate (a step of the plan's DAG): every joined control plane's
# own API server ready, /readyz through the load balancer ok, no control-plane
# Node NotReady. Before each control-plane join and before the workers.
gate() {
  local cp check="kubectl $KC get --raw /readyz >/dev/null && ! kubectl $KC get nodes | grep control-plane | grep -q NotReady"
  for cp in "$@"; do
    check="$check && kubectl $KC get --raw /readyz --server https://$(addr "$cp"):6443 >/dev/null"
  done
  for _ in $(seq 1 100); do
    if "$GT" -c "$CFG" exec bettley -- "$check" >/dev/null 2>&1; then
      echo "gate: control plane ready ($*)"; return 0
    fi
    sleep 0.2
  done
  echo "gate: the control plane did not become ready in 20 s; last answer:" >&2
  "$GT" -c "$CFG" exec bettley -- "kubectl $KC get --raw /readyz; kubectl $KC get nodes" >&2 || true
  return 1
}
addr() { awk -v n="[nodes.$1]" '$0==n{f=1;next} /^\[/{f=0} f&&/^address/' "$CFG" | sed 's/.*"\(.*\)".*/\1/'; }
# The certificate key and the token stay in this shell: never printed.
KEY=$("$GT" -c "$CFG" exec bettley --group-output -- 'kubeadm init phase upload-certs --upload-certs' 2>/dev/null | tail -1 | awk '{print $NF}')
JOIN=$("$GT" -c "$CFG" exec bettley --group-output -- 'kubeadm token create --ttl 15m --print-join-command' 2>/dev/null | grep 'kubeadm join' | sed 's/^[^|]*| //')
joined=(bettley)
for cp in cargyll dalt; do
  gate "${joined[@]}"
  echo "\$ gt exec $cp -- kubeadm join ... --control-plane --certificate-key <withheld>" >&2
  "$GT" -c "$CFG" exec "$cp" -- "$JOIN --control-plane --certificate-key $KEY" | tail -1
  joined+=("$cp")
done
gate "${joined[@]}"
echo "\$ gt exec k8s_worker -- kubeadm join ... (in parallel)" >&2
"$GT" -c "$CFG" exec k8s_worker -- "$JOIN" | grep -c "This node has joined the cluster" | sed 's/$/ workers joined/'
for node in $(sed -n 's/^\[nodes\.\([a-z0-9.-]*\)\]$/\1/p' "$CFG"); do
  labels=$(awk -v n="[nodes.$node]" '$0==n{f=1;next} /^\[/{f=0} f&&/^labels/' "$CFG" | sed 's/^labels = { //; s/ }$//; s/"//g; s/ = /=/g; s/,//g')
  "$GT" -c "$CFG" exec bettley -- "kubectl $KC label node $node $labels --overwrite" >/dev/null 2>&1
done
"$GT" -c "$CFG" exec bettley -- "kubectl $KC taint node velaryon goldentooth.io/gpu=true:NoSchedule" >/dev/null 2>&1
sleep 1
echo
echo "== plan again: nothing left to do"
gt -c "$CFG" plan --detailed-exitcode && echo "(exit 0: no changes)"
echo
gt -c "$CFG" status
echo
echo "== drift: someone relabels fenn and stops dalt's kubelet"
"$GT" -c "$CFG" exec bettley -- "kubectl $KC label node fenn goldentooth.io/storage=zfs --overwrite" >/dev/null 2>&1
gt lab fault --dir "$LAB" dalt kubelet-stopped
sleep 1
set +e
gt -c "$CFG" plan --detailed-exitcode
echo "(exit $?: changes)"
set -e
gt -c "$CFG" exec k8s_worker -- uname -m | sort | uniq -c | sed 's/^ */  /'
echo
gt lab down --dir "$LAB"
trap - EXIT
