#!/usr/bin/env bash
# Times the gt binary (release) observing a lab over real sshd on loopback:
# `gt plan` (which observes live) at 13, 100 and 300 hosts (3 control planes
# + workers), and counts SSH logins per host per run (sshd's "Accepted
# publickey" lines joined to the address connected to): it should be 1.
#
#   benches/observe.sh                 # sizes 13 100 300, 5 runs each
#   SIZES="13" RUNS=10 benches/observe.sh
#   COMMAND=observe benches/observe.sh # time `gt observe` instead of `gt plan`
#
# Goal: a converged 13-host plan <= 0.5 s wall; time growing no
# worse than hosts / parallelism. The lab is bootstrapped by hand first, with
# the simulated kubeadm over ssh (CONVERGE=0 skips that: fresh hosts).
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES=${SIZES:-"13 100 300"}
RUNS=${RUNS:-5}
SPEED=${SPEED:-0.001}
PARALLELISM=${PARALLELISM:-10}
COMMAND=${COMMAND:-plan}
CONVERGE=${CONVERGE:-1}

# Built outside, then run again inside a network namespace with only loopback
# up (scripts/loopback-only.sh): the labs are on 127.4.x.x, nothing else is.
if [ -z "${GT_BENCH_BUILT:-}" ]; then
    cargo build --release --quiet
    GT_BENCH_BUILT=1 exec scripts/loopback-only.sh "$PWD/benches/observe.sh" "$@"
fi
GT=$PWD/target/release/gt
# Labs bind fixed loopback addresses: take the lab tests' lock (tests/support/lab.rs).
exec 9>"${TMPDIR:-/tmp}/gt-lab-tests.lock"
flock 9
WORK=$(mktemp -d /tmp/gt-bench-XXXXXX)
LABS=()
cleanup() {
    for d in "${LABS[@]}"; do "$GT" lab down --dir "$d" >/dev/null 2>&1 || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# 3 control planes + (N-3) workers on 10.4.X.Y (the lab maps them to 127.4.X.Y).
topology() {
    local n=$1
    cat <<EOF
[cluster]
name = "bench$n"
kubernetes_version = "1.32"
endpoint = "10.4.0.10:6443"
pod_cidr = "192.168.0.0/16"
service_cidr = "172.16.0.0/20"

[cluster.cni]
name = "calico"
manifest = "https://raw.githubusercontent.com/projectcalico/calico/v3.29.1/manifests/calico.yaml"

[load_balancer]
name = "allyrion"
address = "10.4.0.10"

[defaults]
arch = "arm64"
EOF
    for ((i = 1; i <= n; i++)); do
        local role=worker
        ((i <= 3)) && role=control-plane
        # Skip .0 and .255, and .10 (the load balancer).
        local k=$((i + 10))
        printf '\n[nodes.n%03d]\nrole = "%s"\naddress = "10.4.%d.%d"\n' \
            "$i" "$role" $((k / 250)) $((k % 250 + 1))
    done
}

now() { date +%s.%N; }

# ssh to a lab host as a user would (the lab's key and known_hosts).
lab_ssh() {
    local dir=$1 addr=$2
    shift 2
    ssh -F /dev/null -i "$dir/ssh/id_ed25519" -p "$(jq -r .ssh.port "$dir/lab-state.json")" \
        -o UserKnownHostsFile="$dir/ssh/known_hosts" -o StrictHostKeyChecking=yes \
        -o BatchMode=yes -o LogLevel=ERROR "$(id -un)@$addr" "$@"
}

# Bootstraps a lab by hand with the simulated kubeadm (until `gt apply`
# exists): init on the first control plane, the others join one at a time,
# workers join in parallel, then the CNI.
converge_by_hand() {
    local dir=$1
    local endpoint cps workers first admin key cpjoin join
    endpoint=$(jq -r .endpoint "$dir/lab.json")
    cps=$(jq -r '.nodes[] | select(.role == "control-plane") | .address' "$dir/lab.json")
    workers=$(jq -r '.nodes[] | select(.role == "worker") | .address' "$dir/lab.json")
    first=$(echo "$cps" | head -n 1)
    admin='--kubeconfig ${GT_HOST_ROOT}/etc/kubernetes/admin.conf'
    lab_ssh "$dir" "$first" "kubeadm init --control-plane-endpoint=$endpoint --kubernetes-version=stable-1.32 \
        --service-cidr=172.16.0.0/20 --pod-network-cidr=192.168.0.0/16 --upload-certs" >/dev/null
    for _ in $(seq 1 100); do
        lab_ssh "$dir" "$first" "kubectl $admin get --raw /readyz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    key=$(lab_ssh "$dir" "$first" "kubeadm init phase upload-certs --upload-certs" | sed -n 3p)
    cpjoin=$(lab_ssh "$dir" "$first" "kubeadm token create --print-join-command --certificate-key $key")
    for cp in $(echo "$cps" | tail -n +2); do lab_ssh "$dir" "$cp" "$cpjoin" >/dev/null; done
    join=$(lab_ssh "$dir" "$first" "kubeadm token create --ttl 15m --print-join-command")
    export -f lab_ssh
    echo "$workers" | xargs -P 10 -I{} bash -c 'lab_ssh "$0" {} "$1" >/dev/null || lab_ssh "$0" {} "$1" >/dev/null' "$dir" "$join"
    lab_ssh "$dir" "$first" "kubectl $admin apply -f https://raw.githubusercontent.com/projectcalico/calico/v3.29.1/manifests/calico.yaml" >/dev/null
    # Let the simulated kubelets turn Ready.
    for _ in $(seq 1 100); do
        [[ $(lab_ssh "$dir" "$first" "kubectl $admin get nodes -o json" | jq '[.items[] | .status.conditions[] | select(.type == "Ready" and .status != "True")] | length') == 0 ]] && break
        sleep 0.2
    done
}

# Logins per connected-to address over a lab's sshd logs (client ports pair
# `Connection from C port P on ADDR` with `Accepted publickey ... port P`,
# per log file): "min max addresses".
logins_per_address() {
    awk '
        FNR == 1                 { delete a }
        /Connection from .* on / { for (i = 1; i <= NF; i++) if ($i == "port") { p = $(i+1); break }
                                   for (i = 1; i <= NF; i++) if ($i == "on") { a[p] = $(i+1); break } }
        /Accepted publickey/     { for (i = 1; i <= NF; i++) if ($i == "port") { n[a[$(i+1)]]++; break } }
        END { min = -1; max = 0; for (k in n) { if (min < 0 || n[k] < min) min = n[k]; if (n[k] > max) max = n[k] }
              print min, max, length(n) }' "$1"/logs/sshd*.log
}

printf '%-6s %-10s %-10s %-12s %-14s %s\n' hosts median_s min_s "x vs first" "hosts ratio" "logins/host/run"
first=""
for n in $SIZES; do
    dir=$WORK/lab$n
    topology "$n" >"$WORK/t$n.toml"
    "$GT" lab up --dir "$dir" --from "$WORK/t$n.toml" --transport ssh --speed "$SPEED" >/dev/null
    LABS+=("$dir")
    cfg=$dir/cluster.toml
    if [[ $CONVERGE == 1 ]]; then
        converge_by_hand "$dir"
        changes=$("$GT" --config "$cfg" plan 2>&1 | grep -E "^(Plan:|No changes)" || "$GT" --config "$cfg" plan 2>&1 | tail -n 20)
        echo "# $n hosts converged by hand; gt plan says: $changes" >&2
    fi
    # Count only the timed runs' logins.
    for f in "$dir"/logs/sshd*.log; do : >"$f"; done
    times=()
    for ((r = 0; r < RUNS; r++)); do
        t0=$(now)
        "$GT" --config "$cfg" "$COMMAND" --parallelism "$PARALLELISM" >/dev/null 2>&1 || true
        t1=$(now)
        times+=("$(echo "$t1 - $t0" | bc -l)")
    done
    sorted=$(printf '%s\n' "${times[@]}" | sort -g)
    median=$(echo "$sorted" | sed -n "$(((RUNS + 1) / 2))p")
    min=$(echo "$sorted" | head -n 1)
    read -r lmin lmax naddr < <(logins_per_address "$dir")
    first=${first:-$median}
    first_n=${first_n:-$n}
    printf '%-6s %-10.3f %-10.3f %-12.2f %-14.2f %s\n' "$n" "$median" "$min" \
        "$(echo "$median / $first" | bc -l)" "$(echo "$n / $first_n" | bc -l)" \
        "$(echo "$lmin / $RUNS" | bc -l | xargs printf '%.2f')..$(echo "$lmax / $RUNS" | bc -l | xargs printf '%.2f') over $naddr addresses"
    "$GT" lab down --dir "$dir" >/dev/null
    LABS=("${LABS[@]/$dir/}")
done
