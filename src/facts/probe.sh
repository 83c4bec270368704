# gt probe, format 1: one round trip per host, POSIX sh, read-only.
# Every path is under ${GT_HOST_ROOT} (empty on real hosts; the lab's host root).
# Output: sections opened by "@@gt NAME" lines; key=value lines in "host".
k="${GT_HOST_ROOT}/etc/kubernetes"
echo '@@gt host'
echo "hostname=$(uname -n)"
echo "machine=$(uname -m)"
if command -v kubeadm >/dev/null 2>&1; then
  echo "kubeadm=$(kubeadm version -o short 2>/dev/null)"
fi
if command -v kubelet >/dev/null 2>&1; then
  echo "kubelet=$(kubelet --version 2>/dev/null)"
fi
if command -v systemctl >/dev/null 2>&1; then
  echo "kubelet_active=$(systemctl is-active kubelet 2>/dev/null)"
fi
if [ -f "$k/admin.conf" ]; then echo 'admin_conf=yes'; fi
if [ -f "$k/kubelet.conf" ]; then
  echo 'kubelet_conf=yes'
  echo "kubelet_server=$(sed -n 's/^[[:space:]]*server:[[:space:]]*//p' "$k/kubelet.conf" | head -n 1)"
fi
for f in "$k"/manifests/*.yaml "$k"/manifests/*.yml "$k"/manifests/*.json; do
  if [ -f "$f" ]; then echo "manifest=${f##*/}"; fi
done
echo '@@gt ca.crt'
if [ -f "$k/pki/ca.crt" ]; then cat "$k/pki/ca.crt"; fi
echo '@@gt end'
