# gt probe, format 1: one round trip per host, POSIX sh, read-only.
# Every path is under ${GT_HOST_ROOT} (empty on real hosts; the lab's host root).
# Output: sections opened by "@@gt NAME" lines; key=value lines in "host".
k="${GT_HOST_ROOT}/etc/kubernetes"
echo '@@gt host'
# One uname for both (nodename comes before machine in every uname's output).
set -- $(uname -nm)
echo "hostname=$1"
echo "machine=$2"
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
# Builtins rather than sed/cat: every process counts when hundreds of hosts answer.
if [ -f "$k/kubelet.conf" ]; then
  echo 'kubelet_conf=yes'
  while IFS= read -r line; do
    line=${line#"${line%%[! ]*}"}
    case $line in server:*) echo "kubelet_server=${line#server:}"; break ;; esac
  done <"$k/kubelet.conf"
fi
for f in "$k"/manifests/*.yaml "$k"/manifests/*.yml "$k"/manifests/*.json; do
  if [ -f "$f" ]; then echo "manifest=${f##*/}"; fi
done
echo '@@gt ca.crt'
if [ -f "$k/pki/ca.crt" ]; then
  while IFS= read -r line || [ -n "$line" ]; do printf '%s\n' "$line"; done <"$k/pki/ca.crt"
fi
echo '@@gt end'
