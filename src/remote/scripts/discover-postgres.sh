# shellcheck shell=sh
# discover-postgres.sh [DATADIR [SQL]]: the host's PostgreSQL postmasters, for src/facts/postgres.ts.
# Output: "systemd=0|1", "pg_ctlcluster=0|1", then one tab-separated "pm" row per candidate:
#   pm PID PPID STATE NET PARENT_COMM EXE CWD USER GROUP PIDFILE_L1 PORT SOCKETDIR UNIT HASFILE CMDLINE
# and, with SQL (read-only, one statement), after the row of each postmaster its postmaster.pid names:
#   sql PID RC ANSWER   (ANSWER: psql's output on one line, as the server's OS user over its socket)
# so the server's settings come in discovery's round trip when the OS user logs in without a password
# (peer, the usual case). It runs as that user, never as root: psql is the binary next to the
# server's own, which its owner may have put there. Any failure (a password needed, no runuser) only
# means the controller asks as before.
# The truth is the data directory's postmaster.pid (its first line must be the process's own pid:
# src/facts/discovery.ts decides); the process table is only how a data directory is found.
#  - DATADIR given (pg_data_directory, or the server found earlier in this run): its postmaster.pid
#    names the pid and only that process is looked at; the process table is walked only when that
#    does not give a live postgres.
#  - The walk costs no process per /proc entry (shell builtins only: `read` of comm, stat and the
#    parent's comm), so a server with hundreds of backends costs what an idle one does; only the few
#    candidates (a postgres whose parent is not one) get the commands that describe them.
# postmaster.pid is read through /proc/PID/cwd: the server's own file even when its mount namespace
# differs from the login session's.
self_net=$(readlink /proc/self/ns/net 2>/dev/null)
# our uid without a process (as root, ask() needs no name: every process counts on a busy fleet)
uid=''
while IFS='	 ' read -r k _ e _; do
  if [ "$k" = Uid: ]; then uid=$e; break; fi
done 2>/dev/null </proc/self/status
case $uid in '' | *[!0-9]*) uid=$(id -u) ;; esac
init=''
{ IFS= read -r init </proc/1/comm; } 2>/dev/null
if [ "$init" = systemd ]; then echo "systemd=1"; else echo "systemd=0"; fi
if command -v pg_ctlcluster >/dev/null 2>&1; then echo "pg_ctlcluster=1"; else echo "pg_ctlcluster=0"; fi

# describe PID: one "pm" row when /proc/PID is a postgres whose parent is not one; status 1 otherwise
describe() {
  me=$1 d=/proc/$1 comm='' stat='' pcomm=''
  { IFS= read -r comm <"$d/comm"; } 2>/dev/null || return 1
  case $comm in postgres | postmaster) ;; *) return 1 ;; esac
  { IFS= read -r stat <"$d/stat"; } 2>/dev/null
  # fields after "(comm) ": state ppid ...; comm may hold spaces or ")", so cut at the last ") "
  # shellcheck disable=SC2086
  set -- ${stat##*) } x x
  state=$1 ppid=$2
  { IFS= read -r pcomm <"/proc/$ppid/comm"; } 2>/dev/null
  case $pcomm in postgres | postmaster) return 1 ;; esac
  net=$(readlink "$d/ns/net" 2>/dev/null)
  if [ -z "$self_net" ] || [ -z "$net" ]; then netrel=unknown; elif [ "$net" = "$self_net" ]; then netrel=same; else netrel=other; fi
  # (files are read by redirecting a loop, never with `exec N<`: a failed redirection of exec, a
  # special builtin, ends the whole script, and a process may end while it is being described)
  l1='' l4='' l5='' hasfile=0 n=0
  if [ -r "$d/cwd/postmaster.pid" ]; then
    hasfile=1
    while [ "$n" -lt 5 ] && IFS= read -r line; do
      n=$((n + 1))
      case $n in 1) l1=$line ;; 4) l4=$line ;; 5) l5=$line ;; esac
    done 2>/dev/null <"$d/cwd/postmaster.pid"
  fi
  unit=''
  while IFS= read -r line; do
    case $line in */*.service) unit=${line##*/}; break ;; esac
  done 2>/dev/null <"$d/cgroup"
  exe=$(readlink "$d/exe") owner=$(stat -c %U "$d")
  printf 'pm\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$me" "$ppid" "$state" "$netrel" "$pcomm" \
    "$exe" "$(readlink "$d/cwd")" "$owner" "$(stat -c %G "$d/cwd/" 2>/dev/null)" \
    "$l1" "$l4" "$l5" "$unit" "$hasfile" "$(head -c 200 "$d/cmdline" 2>/dev/null | tr '\0\t\n' '   ')"
  if [ -n "$sql" ] && [ "$l1" = "$me" ] && [ -n "$l4" ] && [ -n "$l5" ]; then ask "$me" "$owner" "$exe" "$l4" "$l5"; fi
  return 0
}

# ask PID USER EXE PORT SOCKETDIR: the "sql" row of that postmaster (nothing when it cannot be asked as USER)
ask() {
  if [ "$uid" = 0 ] && [ "$2" = root ]; then as=''
  elif [ "$uid" = 0 ] && command -v runuser >/dev/null 2>&1; then as="runuser -u $2 --"
  elif [ "$uid" != 0 ] && [ "$(id -un)" = "$2" ]; then as=''
  else return 0; fi
  if command -v timeout >/dev/null 2>&1; then t="timeout 30"; else t=''; fi
  rc=0
  # shellcheck disable=SC2086
  answer=$(cd / && PGCONNECT_TIMEOUT=10 $t $as "${3%/*}/psql" -X -A -t -q -w -v ON_ERROR_STOP=1 -h "$5" -p "$4" -d postgres -c "$sql" </dev/null 2>/dev/null) || rc=$?
  printf 'sql\t%s\t%s\t%s\n' "$1" "$rc" "$(printf '%s' "$answer" | tr '\t\n' '  ')"
}

sql=${2:-}
found=0
if [ -n "${1:-}" ]; then
  pid=''
  { IFS= read -r pid <"$1/postmaster.pid"; } 2>/dev/null
  case $pid in '' | *[!0-9]*) ;; *) describe "$pid" && found=1 ;; esac
fi
if [ "$found" = 0 ]; then
  for d in /proc/[0-9]*; do
    describe "${d#/proc/}" || :
  done
fi
