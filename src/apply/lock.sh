# gt apply lock, format 1. POSIX sh. gt prepends the variables:
#   OP (acquire | renew | read | remove), LEASE (seconds), STARTED (epoch seconds,
#   renew only), AHEAD (seconds added to this host's clock: 0, but for tests
#   that play a later apply without waiting out a lease), CHANGED (remove: 1
#   when the holder may have changed the cluster, 0 when it ran no step), and
#   JSON-encoded HOLDER HOST PID RUN CLUSTER VERSION (RUN may be empty for
#   remove: remove whatever is there).
# Every path is under ${GT_HOST_ROOT} (empty on real hosts; the lab's host root).
# Times come from this host's clock, never the operator's: two operators with
# skewed clocks still agree on when a lock expires.
# Output: one line `gt-lock STATUS NOW RELEASED PATH`, then the lock file as
# it was found (when there was one). RELEASED is how many milliseconds ago a
# lock that may have changed the cluster was last removed here (-1: never):
# gt observes while it takes the lock, and observes again if a release came
# after it started.
# Exit 0 whatever the lock's state; non-zero only when the host itself fails
# (e.g. /var/lib/gt cannot be written).
d="${GT_HOST_ROOT}/var/lib/gt"
f="$d/apply.lock"
t="$d/.apply.lock.new.$$"
s="$d/.apply.lock.old.$$"
r="$d/apply.released"

# The clocks below prefer bash's own (EPOCHSECONDS, EPOCHREALTIME: bash 5,
# the login shell sshd runs this in on Debian and Raspberry Pi OS) to a
# `date` process; under another shell, or an older bash, `date` it is.

# This host's clock in whole seconds, as $now.
clock_s() {
  case ${BASH_VERSION-}:${EPOCHSECONDS-} in
  ?*:[1-9]*) now=$EPOCHSECONDS ;;
  *) now=$(date +%s) ;;
  esac
  now=$((now + AHEAD))
}

# This host's clock in milliseconds, as $ms. Without GNU date's %N, whole
# seconds plus $1 milliseconds: 999 for a release stamp, 0 for now, so that a
# release never looks older than it is.
clock_ms() {
  case ${BASH_VERSION-}:${EPOCHREALTIME-} in
  # Seconds and microseconds (the separator is the locale's): the digits
  # joined are microseconds, less their last three milliseconds.
  ?*:[1-9]*[.,][0-9][0-9][0-9]*)
    ms=${EPOCHREALTIME%[.,]*}${EPOCHREALTIME#*[.,]}
    ms=${ms%???}
    ;;
  *)
    ms=$(date +%s%3N 2>/dev/null)
    case $ms in '' | *[!0-9]*) ms=$(($(date +%s) * 1000 + $1)) ;; esac
    ;;
  esac
  ms=$((ms + AHEAD * 1000))
}

# The whole of regular file $1 as $cur, as `cur=$(cat "$1")` would have it
# (trailing newlines dropped) without starting a process; fails when there is
# no such file or it cannot be read.
slurp() {
  [ -f "$1" ] || return 1
  cur= nl=
  { while IFS= read -r l || [ -n "$l" ]; do cur=$cur$nl$l nl='
'; done; } <"$1" || return 1
  while :; do
    case $cur in *'
') cur=${cur%?} ;; *) return 0 ;; esac
  done
}

say() {
  rel=-1
  if { read -r stamp <"$r"; } 2>/dev/null; then
    # A stamp that is not a number says a release happened, not when: just now.
    case $stamp in
    '' | *[!0-9]*) rel=0 ;;
    *) clock_ms 0; rel=$((ms - stamp)); if [ "$rel" -lt 0 ]; then rel=0; fi ;;
    esac
  fi
  echo "gt-lock $1 $now $rel $f"
  if [ $# -gt 1 ]; then printf '%s\n' "$2"; fi
}

# Epoch seconds to RFC 3339 UTC as $ts, without GNU date (days-from-civil
# inverted) and without a subshell: its names are its own.
rfc3339() {
  z=$(($1 / 86400 + 719468)); sod=$(($1 % 86400))
  era=$((z / 146097)); doe=$((z - era * 146097))
  yoe=$(((doe - doe / 1460 + doe / 36524 - doe / 146096) / 365))
  doy=$((doe - (365 * yoe + yoe / 4 - yoe / 100)))
  mp=$(((5 * doy + 2) / 153))
  dd=$((doy - (153 * mp + 2) / 5 + 1))
  mm=$((mp < 10 ? mp + 3 : mp - 9))
  yy=$((yoe + era * 400 + (mm <= 2)))
  hh=$((sod / 3600)); mi=$((sod % 3600 / 60)); ss=$((sod % 60))
  for two in mm dd hh mi ss; do eval "[ \"\$$two\" -ge 10 ] || $two=0\$$two"; done
  ts=$yy-$mm-${dd}T$hh:$mi:${ss}Z
}

# Writes our lock (started $1, expiring $2) to the temporary file.
write_lock() {
  rfc3339 "$1"; from=$ts
  rfc3339 "$2"
  printf '{"holder":%s,"host":%s,"pid":%s,"started":"%s","started_unix":%s,"expires":"%s","expires_unix":%s,"run_id":%s,"cluster":%s,"gt_version":%s}\n' \
    "$HOLDER" "$HOST" "$PID" "$from" "$1" "$ts" "$2" "$RUN" "$CLUSTER" "$VERSION" >"$t"
}

expires_of() { e=${1#*\"expires_unix\":}; e=${e%%[!0-9]*}; }

ours() { case $1 in *'"run_id":'"$RUN"[,}]*) return 0 ;; esac; return 1; }

clock_s
# A write that fails (a full disk) or a signal (the ssh connection dropped)
# must not leave this run's temporary file, aside copy or takeover
# directory behind: nothing else ever removes them.
took=
cleanup() {
  if [ -e "$t" ] || [ -e "$s" ]; then rm -f "$t" "$s"; fi
  if [ -n "$took" ]; then rmdir "$took" 2>/dev/null; fi
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
case $OP in
read)
  if slurp "$f" 2>/dev/null; then say found "$cur"; else say none; fi
  ;;
acquire)
  [ -d "$d" ] || mkdir -p "$d" || exit 3
  i=0
  while [ $i -lt 5 ]; do
    i=$((i + 1))
    clock_s
    write_lock "$now" $((now + LEASE)) || exit 3
    # ln creates the name only if it does not exist, with the whole content at once.
    if ln "$t" "$f" 2>/dev/null; then rm -f "$t"; say acquired; exit 0; fi
    slurp "$f" 2>/dev/null || continue
    expires_of "$cur"
    if [ -z "$e" ]; then rm -f "$t"; say corrupt "$cur"; exit 0; fi
    # Live through the second expires_unix: seconds are whole, so an N-second
    # lease lasts N to N+1 seconds.
    if [ "$now" -le "$e" ]; then rm -f "$t"; say held "$cur"; exit 0; fi
    # Expired. Takers of this expired lock exclude each other with mkdir; the
    # one inside replaces the file with mv, so the name never goes missing
    # (a newcomer's ln never slips in, and the winner is always the taker).
    k="$d/.apply.lock.takeover.$e"
    if mkdir "$k" 2>/dev/null; then
      took=$k
      seen=$cur
      if slurp "$f" 2>/dev/null && [ "$cur" = "$seen" ]; then
        mv "$t" "$f" || exit 3
        rmdir "$k"
        took=
        say took-over "$cur"
        exit 0
      fi
      rmdir "$k"
      took=
    else
      sleep 1
    fi
  done
  rm -f "$t"
  say contended
  ;;
renew)
  if ! slurp "$f" 2>/dev/null; then say gone; exit 0; fi
  if ! ours "$cur"; then say stolen "$cur"; exit 0; fi
  expires_of "$cur"
  # Takers act from second expires_unix + 1; renewing only until second
  # expires_unix - 1 leaves a whole second between the two, so a renewal can
  # never write over a takeover. Past that, the lock is not revived.
  if [ -z "$e" ] || [ "$now" -ge "$e" ]; then say expired "$cur"; exit 0; fi
  write_lock "$STARTED" $((now + LEASE)) || exit 3
  mv "$t" "$f" || exit 3
  say renewed
  ;;
remove)
  if ! slurp "$f" 2>/dev/null; then say none; exit 0; fi
  if [ -n "$RUN" ] && ! ours "$cur"; then say other "$cur"; exit 0; fi
  # Stamped before the file goes, so that no acquire can find the lock free
  # and the stamp old. A stamp whose removal then fails only costs a taker
  # one more observation.
  if [ "$CHANGED" != 0 ]; then
    clock_ms 999
    printf '%s\n' "$ms" >"$t" && mv "$t" "$r" || exit 3
  fi
  mv "$f" "$s" 2>/dev/null || { say none; exit 0; }
  seen=$cur
  slurp "$s"
  if [ "$cur" != "$seen" ]; then
    # It changed hands between the read and the mv: put the new one back.
    ln "$s" "$f" 2>/dev/null
    rm -f "$s"
    slurp "$f" 2>/dev/null || cur=
    say other "$cur"
    exit 0
  fi
  rm -f "$s"
  # A taker that died between its mkdir and rmdir would block every takeover.
  for k in "$d"/.apply.lock.takeover.*; do
    if [ -d "$k" ]; then rmdir "$k" 2>/dev/null; fi
  done
  say removed "$seen"
  ;;
*)
  echo "gt-lock: unknown operation $OP" >&2
  exit 2
  ;;
esac
