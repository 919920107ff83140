# lock.sh DIROP STATE RUNID WHO: one pgtls run at a time on this host. The lock is a directory
# (mkdir is atomic) holding who took it and the process that stands for the run on this host: the
# sshd process of its connection, which ends when the connection does. A lock whose process is gone
# (a killed controller, a cut connection) is stale: it is taken over, and the dead run's leftovers
# (rollback copies, temp files, listed in its journal) are removed, never restored.
set -eu
DIROP=$1 state=$2 runid=$3 who=$4
pgtls_state_ready
# the process that lives exactly as long as this run's connection: the first ancestor that is not a
# shell or a privilege wrapper (over SSH: sshd's process for the connection)
# (read by the shell itself from /proc: no process per ancestor)
holder_of() {
  h=$1 p=$1
  while [ "$p" -gt 1 ] 2>/dev/null; do
    comm=''
    { IFS= read -r comm <"/proc/$p/comm"; } 2>/dev/null || comm=''
    case "$comm" in sh | dash | bash | sudo | runuser | su | setpriv | '') ;; *) h=$p; break ;; esac
    l=''
    { IFS= read -r l <"/proc/$p/stat"; } 2>/dev/null || break
    # shellcheck disable=SC2086
    set -- ${l##*) }
    p=${2:-}
    [ -n "$p" ] || break
  done
  holder=$h
}
holder_of "$PPID"
info="run=$runid pid=$holder start=$(pgtls_started "$holder") by=$who since=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
lock="$state/lock"
tries=0
while ! mkdir -m 0700 -- "$lock" 2>/dev/null; do
  tries=$((tries + 1))
  [ "$tries" -le 5 ] || pgtls_die "cannot take the lock $lock"
  other=$(cat -- "$lock/owner" 2>/dev/null || true)
  if [ -z "$other" ]; then
    # just created by another run that has not written its name yet
    sleep 1
    other=$(cat -- "$lock/owner" 2>/dev/null || true)
    [ -n "$other" ] || other="run=unknown pid=0 start=0"
  fi
  opid=$(printf '%s\n' "$other" | sed -n 's/.* pid=\([0-9]*\).*/\1/p')
  ostart=$(printf '%s\n' "$other" | sed -n 's/.* start=\([0-9]*\).*/\1/p')
  orun=$(printf '%s\n' "$other" | sed -n 's/^run=\([^ ]*\).*/\1/p')
  if [ "$orun" = "$runid" ]; then exit 0; fi
  if [ -n "$opid" ] && [ "$opid" != 0 ] && [ -n "$ostart" ]; then
    # a connection that was just cut takes sshd a moment to notice: give it a few seconds
    w=0
    while [ "$(pgtls_started "$opid")" = "$ostart" ] && [ "$w" -lt 10 ]; do sleep 0.5; w=$((w + 1)); done
    if [ "$(pgtls_started "$opid")" = "$ostart" ]; then
      pgtls_die "another pgtls run is in progress on this host ($other); try again when it has finished"
    fi
  fi
  # stale: the run is gone. Take it over (one taker wins the rename).
  if mv -- "$lock" "$state/.lock.stale.$$" 2>/dev/null; then
    rm -rf -- "$state/.lock.stale.$$"
    echo "stale-lock $other"
  fi
done
printf '%s\n' "$info" > "$lock/owner.tmp"
mv -f -- "$lock/owner.tmp" "$lock/owner"
# A dead run's commit may still be making its changes (it needs nothing from its controller once the
# content has arrived): wait for it to end before anything of that run is touched.
for c in "$state"/runs/*.commit; do
  [ -e "$c" ] || continue
  case "$c" in "$state/runs/$runid."*) continue ;; esac
  read -r cpid cstart < "$c" || true
  w=0
  while [ -n "${cpid:-}" ] && [ "$(pgtls_started "$cpid")" = "${cstart:-}" ]; do
    [ "$w" -lt 120 ] || pgtls_die "a commit of a run that is gone (pid $cpid) has been running for a minute; try again when it has ended"
    sleep 0.5
    w=$((w + 1))
  done
  rm -f -- "$c"
done
# leftovers of dead runs: no other run can be alive now
for j in "$state"/runs/*.journal; do
  [ -e "$j" ] || continue
  case "$j" in "$state/runs/$runid.journal") continue ;; esac
  while IFS= read -r f; do
    pgtls_split "$f"
    d=$pparent b=$pbase
    if pgtls_resolve_dir "$d"; then pgtls_in "$d" clean "$b" "$runid" || true; fi
  done < "$j"
  echo "cleaned $(basename -- "$j" .journal)"
  rm -f -- "$j"
done
for f in "$state"/.in.*; do
  case "$f" in "$state/.in.$runid."*) continue ;; esac
  if [ -e "$f" ]; then rm -f -- "$f"; fi
done
# records a killed run left unsigned (it died between recording and the controller's signature):
# printed for this run's controller to sign (only root can have written them: pgtls_state_ready)
for f in "$state"/*.path; do
  [ -e "$f" ] || continue
  n=${f%.path}
  if { [ -e "$n.orig" ] || [ -e "$n.absent" ]; } && [ ! -e "$n.orig.mac" ]; then
    printf 'pgtls-path %s %s\n' "$n" "$(cat -- "$f")"
    pgtls_print_original "$n"
  fi
  if [ -e "$n.installed.sha256" ] && [ ! -e "$n.installed.mac" ]; then
    printf 'pgtls-path %s %s\n' "$n" "$(cat -- "$f")"
    printf 'pgtls-installed %s %s\n' "$n" "$(cat -- "$n.installed.sha256")"
  fi
done
