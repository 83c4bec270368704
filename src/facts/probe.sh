# gt probe, format 1: one round trip per host, POSIX sh, read-only.
# Every path is under ${GT_HOST_ROOT} (empty on real hosts; the lab's host root).
# Output: sections opened by "@@gt NAME" lines; key=value lines in "host".
k="${GT_HOST_ROOT}/etc/kubernetes"
r="${GT_HOST_ROOT}"
# The kube packages, read once where apt manages packages (a dpkg database
# under the host's root): a packaged kubeadm's or kubelet's version is its
# package's, so neither binary (a slow start on a Pi) has to run.
pkgs=
if [ -f "$r/var/lib/dpkg/status" ] && command -v dpkg-query >/dev/null 2>&1; then
  dpkg=yes
  pkgs=$(dpkg-query -W -f='package=${Package} ${Version} ${db:Status-Abbrev}\n' \
    kubeadm kubelet kubectl cri-tools containerd 2>/dev/null)
fi
kubeadm_pkg=; kubelet_pkg=; held=0
saved_ifs=$IFS; IFS='
'
for line in $pkgs; do
  IFS=$saved_ifs
  set -- $line
  v=${2#*:}; v=${v%%-*}
  case $3 in
    ?i*)
      case $1 in package=kubeadm) kubeadm_pkg=$v ;; package=kubelet) kubelet_pkg=$v ;; esac
      # Held at the file's release (gt_release, "1.32" or "1.32.4").
      case $1:$3:$v. in package=kube*:hi*:"$gt_release".*) held=$((held + 1)) ;; esac ;;
  esac
done
IFS=$saved_ifs
echo '@@gt host'
# The kernel's own names where it shows both (kernel.arch is recent): no
# process; else one uname for both (nodename comes before machine).
n=; m=
{ read -r n <"$r/proc/sys/kernel/hostname" && read -r m <"$r/proc/sys/kernel/arch"; } 2>/dev/null
if [ -n "$m" ]; then set -- "$n" "$m"; else set -- $(uname -nm); fi
echo "hostname=$1"
echo "machine=$2"
if [ -n "$kubeadm_pkg" ]; then
  echo "kubeadm=v$kubeadm_pkg"
elif command -v kubeadm >/dev/null 2>&1; then
  echo "kubeadm=$(kubeadm version -o short 2>/dev/null)"
fi
if [ -n "$kubelet_pkg" ]; then
  echo "kubelet=Kubernetes v$kubelet_pkg"
elif command -v kubelet >/dev/null 2>&1; then
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
# The release each control-plane component runs: its static pod's image.
for c in kube-apiserver kube-controller-manager kube-scheduler; do
  [ -f "$k/manifests/$c.yaml" ] || continue
  while IFS= read -r line; do
    line=${line#"${line%%[! -]*}"}
    case $line in image:*) echo "static_pod=$c ${line#image:}"; break ;; esac
  done <"$k/manifests/$c.yaml"
done
# Host software, only where apt manages packages; gt_sysctls, gt_modules,
# gt_cri and gt_release are set by gt before this script.
if [ -n "$dpkg" ]; then
  echo '@@gt software'
  if [ -f "$r/etc/os-release" ]; then
    while IFS= read -r line; do
      case $line in ID=*|VERSION_ID=*|VERSION_CODENAME=*|PRETTY_NAME=*) echo "os_$line" ;; esac
    done <"$r/etc/os-release"
  fi
  if [ -n "$pkgs" ]; then printf '%s\n' "$pkgs"; fi
  src="$r/etc/apt/sources.list.d/kubernetes.list"
  if [ -f "$src" ]; then
    while IFS= read -r line; do
      case $line in deb\ *) echo "apt_source=$line" ;; esac
    done <"$src"
  fi
  if [ -f "$r/etc/apt/keyrings/kubernetes-apt-keyring.gpg" ]; then echo 'apt_keyring=yes'; fi
  if [ -r "$r/proc/swaps" ]; then
    { read -r _; while read -r dev _; do echo "swap=$dev"; done; } <"$r/proc/swaps"
  fi
  if [ -f "$r/etc/fstab" ]; then
    while read -r dev _ type _; do
      case $dev in \#*) continue ;; esac
      if [ "$type" = swap ]; then echo "fstab_swap=$dev"; fi
    done <"$r/etc/fstab"
  fi
  # Raspberry Pi OS's swap file comes back at boot while its unit is enabled.
  w="$r/etc/systemd/system/multi-user.target.wants/dphys-swapfile.service"
  if [ -L "$w" ] || [ -e "$w" ]; then echo 'dphys_swapfile=yes'; fi
  if [ -r "$r/proc/modules" ]; then
    while read -r m _; do
      case " $gt_modules " in *" $m "*) echo "module=$m" ;; esac
    done <"$r/proc/modules"
  fi
  for f in "$r"/etc/modules-load.d/*.conf; do
    [ -f "$f" ] || continue
    while read -r m _; do
      case $m in ''|\#*|\;*) ;; *) echo "module_persisted=$m" ;; esac
    done <"$f"
  done
  for s in $gt_sysctls; do
    p=; rest=$s
    while :; do
      case $rest in *.*) p="$p${rest%%.*}/"; rest=${rest#*.} ;; *) p="$p$rest"; break ;; esac
    done
    if [ -r "$r/proc/sys/$p" ]; then read -r v <"$r/proc/sys/$p"; echo "sysctl=$s=$v"; fi
  done
  for f in "$r"/etc/sysctl.d/*.conf "$r/etc/sysctl.conf"; do
    [ -f "$f" ] || continue
    while IFS= read -r line; do
      case $line in ''|\#*|\;*) ;; *) echo "sysctl_persisted=$line" ;; esac
    done <"$f"
  done
  if [ -f "$r/sys/fs/cgroup/cgroup.controllers" ]; then
    read -r c <"$r/sys/fs/cgroup/cgroup.controllers"; echo "cgroup2=$c"
  fi
  if [ -S "$r$gt_cri" ]; then echo 'cri_socket=yes'; fi
  if command -v kubectl >/dev/null 2>&1; then echo 'kubectl=yes'; fi
  if [ -r "$r/proc/cmdline" ]; then read -r c <"$r/proc/cmdline"; echo "cmdline=$c"; fi
  for f in /boot/firmware/cmdline.txt /boot/cmdline.txt; do
    if [ -f "$r$f" ]; then
      read -r c <"$r$f"; echo "boot_cmdline_path=$f"; echo "boot_cmdline=$c"; break
    fi
  done
  echo '@@gt containerd.toml'
  if [ -f "$r/etc/containerd/config.toml" ]; then
    while IFS= read -r line; do
      case $line in *\[*|*SystemdCgroup*|*disabled_plugins*|version*) printf '%s\n' "$line" ;; esac
    done <"$r/etc/containerd/config.toml"
  fi
  # What the repository offers does not matter on a joined host whose kube
  # packages are all held at the file's release (the cluster's patch is the
  # target there, not the repository's newest), and reading apt's cache is
  # the slowest thing the probe does.
  if [ -f "$src" ] && { [ "$held" -lt 3 ] || [ ! -f "$k/kubelet.conf" ]; }; then
    echo '@@gt madison'
    apt-cache madison kubeadm kubelet kubectl 2>/dev/null
  fi
fi
echo '@@gt ca.crt'
if [ -f "$k/pki/ca.crt" ]; then
  while IFS= read -r line || [ -n "$line" ]; do printf '%s\n' "$line"; done <"$k/pki/ca.crt"
fi
echo '@@gt end'
