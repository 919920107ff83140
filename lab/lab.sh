#!/usr/bin/env bash
# lab/lab.sh: a lab of real Debian "hosts" on this one machine, for pgtls end-to-end tests.
#
#   lab/lab.sh up     [--dir DIR] [--hosts N] [--postgres LIST] [--standby HOST:PRIMARY]...
#                     [--repl-slot STANDBY]... [--pgpool HOST:BACKEND1,BACKEND2]... [--user NAME] [--layout debian|rhel]
#                     [--slot K] [--owner-pid PID]
#   lab/lab.sh down   [--dir DIR] | --all
#   lab/lab.sh exec   [--dir DIR] HOST [-- CMD...]   run CMD (default: a login shell) inside HOST, as root
#   lab/lab.sh sshd   [--dir DIR] HOST start|stop    start/stop the sshd of HOST (e.g. to simulate an unreachable host)
#   lab/lab.sh status [--dir DIR]
#   lab/lab.sh gc                                    tear down labs whose --owner-pid process is gone
#
# DIR defaults to $LAB_DIR, else to <repo>/.lab (gitignored). A DIR holds one lab; `up` on a DIR
# first tears down the lab that DIR had.
#
# Slots: several labs can be up at once (e.g. two test runs), each in its own slot K = 0..99 with its
# own names and subnet. Slot 0 (the first free one, so the usual case) is exactly:
#   namespaces pgtls-pg1..pgtls-pgN, bridge pgtlsbr0 = 10.231.0.1/24, host pgI = 10.231.0.(10+I);
# slot K: namespaces pgtlsK-pgI, bridge pgtlsbrK = 10.231.K.1/24, host pgI = 10.231.K.(10+I).
# So do not hard-code addresses in tests: use the inventory / lab.ip(). `up` picks the DIR's previous
# slot, else --slot K, else the lowest free one; it first reclaims slots whose --owner-pid process is
# dead and lab leftovers nobody registered. `down --all` removes every lab. The registry of slots is
# /run/pgtls-lab/slot.K (line 1: DIR, line 2: owner "PID:STARTTIME" or empty).
#
# What a lab host is
# ------------------
# Host pgI (I = 1..N) is a set of Linux namespaces, built with iproute2 + util-linux only:
#   * network namespace "pgtls-pgI": eth0 = 10.231.0.(10+I)/24 on the private bridge pgtlsbr0
#     (10.231.0.1/24 in the root namespace). No default route: traffic cannot leave the lab.
#   * UTS namespace (hostname pgI, `hostname -f` = pgI.lab.internal via the host's own /etc/hosts),
#   * PID namespace (ps/pgrep/pidof inside a host see only that host's processes; a small bash loop is
#     its PID 1 and reaps orphans), IPC namespace and a private /dev/shm (PostgreSQL shared memory),
#   * mount namespace with private, tmpfs-backed copies of
#       /etc (a copy of this machine's /etc: own passwd/shadow, sudoers.d, ssh, hosts, hostname,
#             machine-id, an empty /etc/postgresql, the pristine Debian /etc/pgpool2),
#       /root (Debian's default dot.bashrc/dot.profile), /home, /tmp,
#       /var/lib/postgresql (empty), /var/lib/jelastic and /var/lib/pgtls (empty: pgtls's default
#       keys and state dirs), /var/log (fresh, with postgresql/ and pgpool/),
#     and a fresh tmpfs on /run (so /var/run/postgresql, /run/sshd, /run/sshd.pid are per host).
#     tmpfs because this machine's disk is slow at creating files (cp -a /etc: 1 s on disk, 0.04 s
#     on tmpfs; initdb likewise). While a host is up, DIR/pgI/fs is a symlink to its root
#     (/proc/PID/root), e.g. DIR/pg1/fs/var/log/postgresql/postgresql-15-main.log; `down` saves
#     each host's /var/log to DIR/pgI/log for post-mortems.
#   * its own /usr/sbin/sshd on port 22 (own ed25519 host key in its /etc/ssh; UsePAM no, key only),
#     logging to the host's /var/log/auth.log.
#   * /usr/bin/logger is replaced (inside the hosts only) by a stand-in that appends to the host's
#     /var/log/syslog: there is no syslog daemon here, and Debian's /etc/init.d/pgpool2 pipes all
#     pgpool output into logger. So pgpool's log is DIR/pgI/fs/var/log/syslog, like on a real server.
# Everything else (/usr, /var/lib/dpkg, ...) is this machine's and shared.
#
# PostgreSQL (--postgres): Debian cluster "15 main" made with pg_createcluster, started with
# pg_ctlcluster, in a typical pre-TLS state (ssl off, md5, password_encryption = md5). Roles:
# webadmin (superuser), appuser, legacy, replicator, and pgpool when --pgpool is given.
# Passwords come from LAB_WEBADMIN_PASSWORD, LAB_APP_PASSWORD, LAB_REPL_PASSWORD, LAB_PGPOOL_PASSWORD
# (defaults below) and only ever travel through stdin or files, never through argv.
# Standbys (--standby pg2:pg1) are made with pg_basebackup -R and stream with sslmode=prefer. The
# upstream may itself be a standby (--standby pg3:pg2: a cascade, basebackup taken from pg2).
# --repl-slot pg2: pg2 streams through a physical replication slot "pg2" on its upstream
# (pg_basebackup -C -S, so postgresql.auto.conf also gets primary_slot_name).
# Pgpool-II (--pgpool pg3:pg1,pg2): Debian's pgpool2 at /etc/pgpool2 (package pgpool.conf + port 9999,
# listen '*', backends, sockets/pid in /var/run/postgresql, logdir /var/log/pgpool, ssl off,
# enable_pool_hba off, allow_clear_text_frontend_auth on, sr_check_user pgpool with its password taken
# from pool_passwd, health checks off), pool_hba.conf + "host all all 0.0.0.0/0 md5", a random key in
# ~postgres/.pgpoolkey and pool_passwd holding only the pgpool user's AES entry (what a cluster installer
# leaves). Started with /etc/init.d/pgpool2 start. Before TLS, any role logs in through it with
# sslmode=disable (clear text to pgpool, md5 to the backends); pg_hba allows user pgpool from each pgpool host.
#
# RHEL-style hosts (--layout rhel, every host of the lab): what the original add-on's servers look
# like. PostgreSQL: ~postgres is /var/lib/pgsql, the data directory /var/lib/pgsql/data holds
# postgresql.conf and pg_hba.conf (made by Debian's initdb, /usr/lib/postgresql/15/bin), started with
# pg_ctl (no pg_ctlcluster cluster, no /etc/postgresql), logging_collector on (data/log/), and
# "local all all md5" (so SQL on the host needs webadmin's password). Pgpool-II: /etc/pgpool-II with
# its own init script /etc/init.d/pgpool-II (pgpool -f/-a/-F, as postgres, output to
# /var/log/pgpool/pgpool.log), pid file /var/run/pgpool/pgpool.pid, key ~postgres/.pgpoolkey; Debian's
# /etc/pgpool2 and /etc/init.d/pgpool2 stay in place unused, as leftovers on a real host would.
# Combine with --user NAME for SSH as a sudo user.
#
# Outputs in DIR: id_ed25519(.pub) (client key), known_hosts, ssh_config, inventory.yaml, and per host
# DIR/pgI/{fs,init.pid,*.log} (*.log: what lab.sh did there), DIR/lab.slot. `up` first tears down the
# DIR's previous lab and reclaims dead ones (see Slots), then wipes the per-host state and DIR/ca (the
# client key is kept). `down` leaves no process, namespace, mount, veth or bridge behind.
#
# Needs root, iproute2, util-linux, openssh-server; postgresql-15 for --postgres, pgpool2 for --pgpool,
# sudo for --user. up/down/gc take a short lock (/run/pgtls-lab.lock) while they choose or free slots.
set -euo pipefail

SELF=$(readlink -f "${BASH_SOURCE[0]}")
REPO=$(cd "$(dirname "$SELF")/.." && pwd)
PREFIX=pgtls
DOMAIN=lab.internal
PGVER=15
REGISTRY=/run/pgtls-lab            # slot.K files (root namespace's /run)
LOCK=/run/pgtls-lab.lock           # held while slots are chosen or torn down
MAX_SLOT=99

# set_slot K: the names and subnet of slot K (see the header)
set_slot() {
  SLOT=$1
  NET=10.231.$SLOT                 # bridge $NET.1, host i = $NET.(10+i)
  BR=${PREFIX}br$SLOT              # the lab's bridge in the root namespace
  if [ "$SLOT" = 0 ]; then NSP=$PREFIX; VP=${PREFIX}v; else NSP=$PREFIX$SLOT; VP=$PREFIX${SLOT}v; fi
}                                  # namespaces $NSP-pgI, root-side veths ${VP}I
HOST_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

WEBADMIN_PW=${LAB_WEBADMIN_PASSWORD-"Web Admin's \"pw\" 1"}
APP_PW=${LAB_APP_PASSWORD-"app:pa ss'w0rd"}
REPL_PW=${LAB_REPL_PASSWORD-repl-pw}
PGPOOL_PW=${LAB_PGPOOL_PASSWORD-pgpool-pw}
LEGACY_PW=legacy-pw

die() { echo "lab: $*" >&2; exit 1; }
log() { echo "lab: $*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# ---------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------
ip_of() { echo "$NET.$((10 + ${1#pg}))"; }          # pg3 -> 10.231.0.13

# resolve_dir [DIR]: explicit --dir, else $LAB_DIR, else <repo>/.lab; made absolute
resolve_dir() {
  local d=${1:-${LAB_DIR:-$REPO/.lab}}
  if [ -d "$d" ]; then (cd "$d" && pwd); else readlink -m "$d"; fi
}
# use_dir_slot: set_slot from DIR/lab.slot (slot 0 if the DIR never had a lab)
use_dir_slot() {
  local k=0
  [ -s "$DIR/lab.slot" ] && k=$(cat "$DIR/lab.slot")
  set_slot "$k"
}

# holder_pid HOST: global pid of the host's PID 1 (holds all of its namespaces)
holder_pid() {
  local f=$DIR/$1/init.pid pid
  [ -s "$f" ] || die "host $1 is not up (no $f)"
  pid=$(cat "$f")
  kill -0 "$pid" 2>/dev/null || die "host $1 is not up (pid $pid is gone)"
  echo "$pid"
}

# hostfs HOST: the host's / as seen from here (its mount namespace, through /proc)
hostfs() { echo "/proc/$(holder_pid "$1")/root"; }

# hx HOST CMD...: run CMD inside HOST as root with a clean, login-like environment (cwd /).
hx() {
  local h=$1; shift
  local pid; pid=$(holder_pid "$h")
  # 9>&-: daemons started here must not inherit the lock
  nsenter -t "$pid" -n -m -u -i -p -- \
    env -i -C / PATH="$HOST_PATH" HOME=/root USER=root LOGNAME=root SHELL=/bin/bash LANG=C.UTF-8 "$@" 9>&-
}
hx_pg() { local h=$1; shift; hx "$h" runuser -u postgres -- "$@"; }   # as OS user postgres

# set_conf FILE KEY VALUE: postgresql.conf/pgpool.conf style "key = value". Replaces the first
# active setting, else uncomments the first commented-out one (keeping its trailing comment), else
# appends. Rewrites in place (same inode, owner and mode).
set_conf() {
  local f=$1 k=$2 v=$3 tmp
  tmp=$(mktemp)
  awk -v k="$k" -v v="$v" '
    function is_key(line, commented,   re) {
      re = "^[ \t]*" (commented ? "#[ \t]*" : "") k "[ \t]*="
      return line ~ re
    }
    { lines[NR] = $0 }
    END {
      at = 0
      for (i = 1; i <= NR && !at; i++) if (is_key(lines[i], 0)) at = i
      for (i = 1; i <= NR && !at; i++) if (is_key(lines[i], 1)) at = i
      for (i = 1; i <= NR; i++) {
        if (i == at) {
          rest = lines[i]; c = ""
          if (match(rest, /[ \t]+#[ \t].*$/) && index(substr(rest, 1, RSTART), "=") > 0) c = substr(rest, RSTART)
          print k " = " v c
        } else print lines[i]
      }
      if (!at) print k " = " v
    }' "$f" > "$tmp"
  cat "$tmp" > "$f"; rm -f "$tmp"
}

sql_lit() { local s=${1//\'/\'\'}; printf "'%s'" "$s"; }            # SQL string literal (std strings)
yaml_str() {                                                        # YAML double-quoted scalar
  local s=$1
  s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/\\n}; s=${s//$'\t'/\\t}; s=${s//$'\r'/\\r}
  printf '"%s"' "$s"
}
pgpass_field() { local s=${1//\\/\\\\}; s=${s//:/\\:}; printf '%s' "$s"; }

# wait_until TIMEOUT_S DESC CMD...: poll CMD every 0.1 s
wait_until() {
  local t=$1 desc=$2 i; shift 2
  for ((i = 0; i < t * 10; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "lab: timed out after ${t}s waiting for $desc" >&2; return 1
}
tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# wait_marker HOST WHAT TIMEOUT: wait until job WHAT of HOST has finished (DIR/HOST/WHAT.ok) or failed
wait_marker() {
  local f=$DIR/$1/$2 i
  for ((i = 0; i < $3 * 10; i++)); do
    [ -e "$f.ok" ] && return 0
    [ -e "$f.failed" ] && { echo "lab: $2 on $1 failed, see $DIR/$1/$2.log" >&2; return 1; }
    sleep 0.1
  done
  echo "lab: timed out waiting for $2 on $1" >&2; return 1
}

# Background jobs: run_job HOST WHAT FUNC ARGS... runs FUNC in a subshell, logging to DIR/HOST/WHAT.log,
# and leaves DIR/HOST/WHAT.ok or .failed. wait_jobs waits for all and prints the logs of failures.
JOB_PIDS=(); JOB_LOGS=()
run_job() {
  local h=$1 what=$2; shift 2
  local base=$DIR/$h/$what
  rm -f "$base.ok" "$base.failed"
  (
    set -euo pipefail
    JOB_T0=$(now)
    trap 'rc=$?; if [ $rc = 0 ]; then touch "$base.ok"; else touch "$base.failed"; fi' EXIT
    "$@"
  ) >>"$base.log" 2>&1 &
  JOB_PIDS+=("$!"); JOB_LOGS+=("$base.log")
}
step() { echo "[+$(since "${JOB_T0:-$(now)}")s] $*"; }   # progress line in a job's log

wait_jobs() {
  local i fail=0
  for i in "${!JOB_PIDS[@]}"; do
    if ! wait "${JOB_PIDS[$i]}"; then
      fail=1
      echo "lab: FAILED: ${JOB_LOGS[$i]} (last lines follow)" >&2
      tail -n 25 "${JOB_LOGS[$i]}" | sed 's/^/  | /' >&2
    fi
  done
  JOB_PIDS=(); JOB_LOGS=()
  return $fail
}

# ---------------------------------------------------------------------------------------------
# teardown (used by down, and by up before it builds anything)
# ---------------------------------------------------------------------------------------------
# teardown NAMESPACES...: stop every process in these lab network namespaces and delete them.
# All hosts are handled at once.
teardown() {
  local nss="$*" ns p comm pcomm pids="" polite="" alive i
  [ -n "$nss" ] || return 0
  # Be polite first: fast shutdown (SIGINT) for PostgreSQL postmasters and pgpool main processes
  # (their children are left to them), so clusters stop cleanly; wait up to 5 s.
  # (builtins only: a busy lab host has hundreds of processes, and a fork per process made this take minutes)
  local stat ppid pcomm
  for ns in $nss; do
    for p in $(ip netns pids "$ns" 2>/dev/null || true); do
      read -r comm 2>/dev/null < "/proc/$p/comm" || continue
      case $comm in
        postgres|pgpool)
          read -r stat 2>/dev/null < "/proc/$p/stat" || continue
          stat=${stat##*) }; stat=${stat#* }; ppid=${stat%% *}
          pcomm=; read -r pcomm 2>/dev/null < "/proc/$ppid/comm" || true
          if [ "$pcomm" != "$comm" ]; then kill -INT "$p" 2>/dev/null && polite="$polite $p"; fi ;;
      esac
    done
  done
  for ((i = 0; i < 50 && ${#polite} > 0; i++)); do
    alive=""
    for p in $polite; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
    polite=$alive
    [ -z "$alive" ] || sleep 0.1
  done
  # Keep each host's /var/log for post-mortems (in DIR/pgI/log; DIR and name are in PID 1's argv).
  for ns in $nss; do
    for p in $(ip netns pids "$ns" 2>/dev/null || true); do
      local argv=()
      mapfile -d '' -t argv < "/proc/$p/cmdline" 2>/dev/null || continue
      if [ "${argv[2]:-}" = __init ] && [ -d "${argv[3]:-/nonexistent}/${argv[4]:-}" ]; then
        local hd=${argv[3]}/${argv[4]}
        rm -rf "$hd/log"; cp -a "/proc/$p/root/var/log" "$hd/log" 2>/dev/null || true
        rm -f "$hd/fs"
      fi
    done
  done
  # Then everything that is left. Killing a host's PID 1 takes its whole PID namespace with it.
  for ((i = 0; i < 50; i++)); do
    pids=""
    for ns in $nss; do pids="$pids $(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')"; done
    [ -z "${pids// /}" ] && break
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    sleep 0.05
  done
  [ -z "${pids// /}" ] || log "warning: processes still in lab namespaces: $pids"
  for ns in $nss; do ip netns del "$ns" 2>/dev/null || log "warning: cannot delete namespace $ns"; done
}

del_links() {   # del_links REGEX: delete the root-namespace links whose name matches
  local dev
  for dev in $(ip -o link show 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | grep -E "$1" || true); do
    ip link del "$dev" 2>/dev/null || true
  done
}

# teardown_slot K: remove slot K's lab (hosts, veths, bridge) and its registry entry
teardown_slot() {
  set_slot "$1"
  # shellcheck disable=SC2046
  teardown $(ip netns list 2>/dev/null | awk '{ print $1 }' | grep -E "^$NSP-pg[0-9]+\$" || true)
  del_links "^$VP[0-9]+\$"
  ip link del "$BR" 2>/dev/null || true
  rm -f "$REGISTRY/slot.$1"
}

# teardown_everything: every lab of every slot, registered or not
teardown_everything() {
  # shellcheck disable=SC2046
  teardown $(ip netns list 2>/dev/null | awk '{ print $1 }' | grep -E "^$PREFIX[0-9]*-pg[0-9]+\$" || true)
  del_links "^$PREFIX[0-9]*v[0-9]+\$"
  del_links "^${PREFIX}br[0-9]+\$"
  rm -f "$REGISTRY"/slot.*
}

# used_slots: slots with a registry entry, a bridge or a namespace
used_slots() {
  {
    ls "$REGISTRY" 2>/dev/null | sed -n 's/^slot\.\([0-9][0-9]*\)$/\1/p'
    ip -o link show 2>/dev/null | awk -F': ' '{ print $2 }' | sed -n "s/^${PREFIX}br\([0-9][0-9]*\)\$/\1/p"
    ip netns list 2>/dev/null | awk '{ print $1 }' | sed -n "s/^$PREFIX\([0-9]*\)-pg[0-9][0-9]*\$/\1/p" | sed 's/^$/0/'
  } | sort -nu
}

# proc_id PID: "PID:STARTTIME" (stable identity of a process; pids get reused)
proc_id() {
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $20 }') || return 1
  [ -n "$st" ] && echo "$1:$st"
}
owner_alive() { local o=$1; [ "$(proc_id "${o%%:*}" || true)" = "$o" ]; }

# gc_slots: reclaim slots whose owner process is gone, whose DIR is gone, or that nobody registered
gc_slots() {
  local k f d o
  for k in $(used_slots); do
    f=$REGISTRY/slot.$k
    if [ -f "$f" ]; then
      d=$(sed -n 1p "$f"); o=$(sed -n 2p "$f")
      if [ -n "$o" ] && ! owner_alive "$o"; then
        log "reclaiming slot $k ($d): its owner process ${o%%:*} is gone"; teardown_slot "$k"
      elif [ ! -d "$d" ]; then
        log "reclaiming slot $k: its dir $d is gone"; teardown_slot "$k"
      fi
    else
      log "removing unregistered lab leftovers in slot $k"; teardown_slot "$k"
    fi
  done
}

take_lock() { exec 9>"$LOCK"; flock -w 120 9 || die "another lab.sh up/down is running ($LOCK)"; }

# ---------------------------------------------------------------------------------------------
# __init: PID 1 of a lab host (runs inside the new network/mount/UTS/IPC/PID namespaces)
# ---------------------------------------------------------------------------------------------
# Args: DIR NAME NHOSTS SLOT AUTHORIZED_KEY. DIR may be anywhere, even under /tmp or /root, which the
# binds hide: so DIR is only used before them, and readiness is reported on stdout (DIR/NAME/init.log).
host_init() {
  DIR=$1; NHOSTS=$3; set_slot "$4"
  local name=$2 authkey=$5 p S=""
  mount --bind "$DIR/bin/logger" /usr/bin/logger
  # Build the host's private directories on a tmpfs mounted on a neutral directory, bind them into
  # place, then unmount the staging point (the binds keep the tmpfs alive while the host lives).
  for p in /mnt /media /srv /opt; do [ -d "$p" ] && { S=$p; break; }; done
  [ -n "$S" ] || { echo "no /mnt, /media, /srv or /opt to stage on" >&2; exit 1; }
  mount -t tmpfs -o mode=0755 pgtls-lab "$S"
  seed_host "$name" "$S" "$authkey"
  # /var/lib/jelastic and /var/lib/pgtls: pgtls's default keys and state dirs, per host like on real servers
  for p in /etc /root /home /tmp /var/lib/postgresql /var/lib/pgsql /var/lib/jelastic /var/lib/pgtls /var/log; do
    mkdir -p "$S$p" "$p"
    mount --bind "$S$p" "$p"
  done
  umount "$S"
  mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run       # what a boot gives a real server
  install -d -m 0755 /run/sshd
  install -d -m 1777 /run/lock
  install -d -m 2775 -o postgres -g postgres /run/postgresql
  : > /run/utmp
  mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
  hostname "$name"
  echo READY
  # Stay PID 1: bash reaps every orphan that is re-parented to it while it waits.
  trap 'exit 0' TERM
  while :; do sleep 3600 & wait $! || true; done
}

# ---------------------------------------------------------------------------------------------
# up
# ---------------------------------------------------------------------------------------------
# seed_host NAME F AUTHORIZED_KEY: build the host's private directories under F (run by its PID 1,
# before the bind mounts, so / is still this machine's), including its sshd setup.
seed_host() {
  local h=$1 F=$2 authkey=$3 j
  mkdir -p "$F/var/lib" "$F/var/log"
  # /etc: a copy of this machine's /etc, then made this host's
  cp -a /etc "$F/etc"
  echo "$h" > "$F/etc/hostname"
  {
    echo "127.0.0.1	localhost"
    echo "127.0.1.1	$h.$DOMAIN $h"
    echo "::1	localhost ip6-localhost ip6-loopback"
    echo "ff02::1	ip6-allnodes"
    echo "ff02::2	ip6-allrouters"
    echo
    echo "# lab hosts"
    for ((j = 1; j <= NHOSTS; j++)); do echo "$(ip_of "pg$j")	pg$j.$DOMAIN pg$j"; done
  } > "$F/etc/hosts"
  head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$F/etc/machine-id"; echo >> "$F/etc/machine-id"
  find "$F/etc/postgresql" -mindepth 1 -delete 2>/dev/null || true      # no cluster yet
  chown postgres:postgres "$F/etc/postgresql" 2>/dev/null || true
  if [ -f /usr/share/pgpool2/pgpool.conf ] && [ -f "$F/etc/pgpool2/pgpool.conf" ]; then
    cat /usr/share/pgpool2/pgpool.conf > "$F/etc/pgpool2/pgpool.conf"  # pristine package default
  fi
  rm -f "$F"/etc/sudoers.d/pgtls-lab-*
  # sshd: own host key and config (Debian paths, PidFile on the host's private /run)
  rm -f "$F"/etc/ssh/ssh_host_*
  ssh-keygen -q -t ed25519 -N '' -C "root@$h" -f "$F/etc/ssh/ssh_host_ed25519_key"
  cat > "$F/etc/ssh/sshd_config" <<EOF
# sshd_config of lab host $h (written by lab/lab.sh)
Port 22
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile /run/sshd.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys .ssh/authorized_keys2
PasswordAuthentication no
KbdInteractiveAuthentication no
# no PAM stack needed (and no systemd/logind here); accounts must not be locked (usermod -p '*')
UsePAM no
StrictModes no
UseDNS no
X11Forwarding no
PrintMotd no
AcceptEnv LANG LC_*
# parallel runs open many sessions at once
MaxStartups 100:30:200
MaxSessions 30
Subsystem sftp internal-sftp
EOF
  # /root: Debian's defaults (not this machine's slow .bashrc) and the lab key
  install -d -m 0700 "$F/root" "$F/root/.ssh"
  cp /usr/share/base-files/dot.bashrc "$F/root/.bashrc"
  cp /usr/share/base-files/dot.profile "$F/root/.profile"
  ( umask 077; echo "$authkey" > "$F/root/.ssh/authorized_keys" )
  install -d -m 0755 "$F/home"
  install -d -m 1777 "$F/tmp"
  install -d -m 0755 -o postgres -g postgres "$F/var/lib/postgresql"
  install -d -m 0700 -o postgres -g postgres "$F/var/lib/pgsql"
  # /var/log: fresh, with what Debian's packages would have made
  install -d -m 1775 -o root -g postgres "$F/var/log/postgresql"
  install -d -m 0755 -o postgres -g postgres "$F/var/log/pgpool"
  install -m 0664 -g utmp /dev/null "$F/var/log/wtmp"
  install -m 0664 -g utmp /dev/null "$F/var/log/lastlog"
  install -m 0660 -g utmp /dev/null "$F/var/log/btmp"
  install -m 0640 -g adm /dev/null "$F/var/log/auth.log"
  install -m 0666 -g adm /dev/null "$F/var/log/syslog"   # written by the logger stand-in as any user
}

# start_host NAME: create the network namespace and the host's PID 1 (in the background)
start_host() {
  local h=$1 i=${1#pg} ip; ip=$(ip_of "$h")
  local ns=$NSP-$h H=$DIR/$h
  ip netns add "$ns"
  ip link add "$VP$i" type veth peer name eth0 netns "$ns"
  ip link set "$VP$i" master "$BR" up
  ip -n "$ns" addr add "$ip/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  # setsid: not in our process group (a caller's timeout must not kill the lab). ip netns exec execs
  # unshare, which forks the host's PID 1; so $! is unshare and PID 1 is its only child.
  setsid ip netns exec "$ns" unshare --fork --pid --mount-proc --uts --ipc --mount --propagation private \
    -- bash "$SELF" __init "$DIR" "$h" "$NHOSTS" "$SLOT" "$(cat "$DIR/id_ed25519.pub")" </dev/null >>"$H/init.log" 2>&1 9>&- &
  echo "$!" > "$H/unshare.pid"
}

# finish_host NAME: record PID 1's global pid, start sshd, create the login user
finish_host() {
  local h=$1 H=$DIR/$1 upid child="" n
  upid=$(cat "$H/unshare.pid")
  for ((n = 0; n < 200; n++)); do
    grep -qx READY "$H/init.log" 2>/dev/null && break
    case $(awk '{ print $3 }' "/proc/$upid/stat" 2>/dev/null || echo X) in
      X|Z) cat "$H/init.log" >&2; die "$h failed to start" ;;   # unshare exited: PID 1 died
    esac
    sleep 0.05
  done
  grep -qx READY "$H/init.log" || { cat "$H/init.log" >&2; die "$h did not start in 10 s"; }
  child=$(pgrep -P "$upid" || true)
  [ -n "$child" ] || die "cannot find PID 1 of $h"
  echo "$child" > "$H/init.pid"
  ln -sfn "/proc/$child/root" "$H/fs"
  echo "$(ip_of "$h") $(cut -d' ' -f1,2 "$H/fs/etc/ssh/ssh_host_ed25519_key.pub")" > "$H/known_hosts"
  hx "$h" /usr/sbin/sshd -E /var/log/auth.log
  if [ "$LAYOUT" = rhel ]; then
    hx "$h" usermod -d /var/lib/pgsql postgres      # RHEL: ~postgres is /var/lib/pgsql
  fi
  if [ -n "$LOGIN_USER" ]; then
    hx "$h" bash -c '
      set -e; u=$1
      id "$u" >/dev/null 2>&1 || useradd -m -s /bin/bash -U "$u"
      usermod -p "*" "$u"                       # not "locked": sshd without PAM accepts it
      echo "$u ALL=(ALL:ALL) NOPASSWD: ALL" > "/etc/sudoers.d/pgtls-lab-$u"
      chmod 0440 "/etc/sudoers.d/pgtls-lab-$u"
      home=$(getent passwd "$u" | cut -d: -f6)
      install -d -m 0700 -o "$u" -g "$u" "$home/.ssh"
      ( umask 077; cat > "$home/.ssh/authorized_keys" ); chown "$u:" "$home/.ssh/authorized_keys"
    ' - "$LOGIN_USER" < "$DIR/id_ed25519.pub"
  fi
}

# configure_pg NAME: typical pre-TLS Debian server: md5 everywhere, ssl off
configure_pg() {
  local h=$1 F p
  F=$(hostfs "$h")
  local conf=$F/etc/postgresql/$PGVER/main/postgresql.conf hba=$F/etc/postgresql/$PGVER/main/pg_hba.conf
  set_conf "$conf" listen_addresses "'*'"
  set_conf "$conf" port 5432
  set_conf "$conf" ssl off
  set_conf "$conf" password_encryption md5
  set_conf "$conf" fsync off                    # lab speed; data is thrown away
  local tmp; tmp=$(mktemp)
  {
    # Debian's generated rules, with md5 where it says scram-sha-256 (as on servers set up before PG14)
    awk '/^[ \t]*(#|$)/ { print; next } { gsub(/scram-sha-256/, "md5"); print }' "$hba"
    remote_rules
  } > "$tmp"
  cat "$tmp" > "$hba"; rm -f "$tmp"
}

# remote_rules: the pg_hba rules every lab server has for the other hosts (md5, pre-TLS)
remote_rules() {
  local p
  echo
  echo "# Remote access"
  printf '%-7s %-15s %-15s %-23s %s\n' host replication replicator "$NET.0/24" md5
  for p in "${PGPOOL_HOSTS[@]}"; do
    printf '%-7s %-15s %-15s %-23s %s\n' host all pgpool "$(ip_of "$p")/32" md5
  done
  printf '%-7s %-15s %-15s %-23s %s\n' host all all 0.0.0.0/0 md5
  printf '%-7s %-15s %-15s %-23s %s\n' host all all ::/0 md5
}

# RHEL-style PostgreSQL (--layout rhel): config inside the data directory, pg_ctl, md5 local rules
RHEL_DATA=/var/lib/pgsql/data
RHEL_BIN=/usr/lib/postgresql/$PGVER/bin
rhel_pg_ctl() { local h=$1; shift; hx_pg "$h" "$RHEL_BIN/pg_ctl" -D "$RHEL_DATA" "$@"; }

# configure_pg_rhel NAME: postgresql.conf as on a RHEL server before TLS; pg_hba.conf with passwords
# for local connections too (the stock rule of many RHEL and platform images)
configure_pg_rhel() {
  local h=$1 F; F=$(hostfs "$h")
  local conf=$F$RHEL_DATA/postgresql.conf hba=$F$RHEL_DATA/pg_hba.conf
  set_conf "$conf" listen_addresses "'*'"
  set_conf "$conf" port 5432
  set_conf "$conf" ssl off
  set_conf "$conf" password_encryption md5
  set_conf "$conf" fsync off
  set_conf "$conf" logging_collector on
  set_conf "$conf" log_directory "'log'"
  {
    echo "# pg_hba.conf of a RHEL-style lab host (lab/lab.sh --layout rhel)"
    printf '%-7s %-15s %-15s %-23s %s\n' '# TYPE' DATABASE USER ADDRESS METHOD
    printf '%-7s %-15s %-15s %-23s %s\n' local all all '' md5
    printf '%-7s %-15s %-15s %-23s %s\n' host all all 127.0.0.1/32 md5
    printf '%-7s %-15s %-15s %-23s %s\n' host all all ::1/128 md5
    printf '%-7s %-15s %-15s %-23s %s\n' local replication all '' md5
    printf '%-7s %-15s %-15s %-23s %s\n' host replication all 127.0.0.1/32 md5
    remote_rules
  } > "$DIR/$h/pg_hba.rhel"
  cat "$DIR/$h/pg_hba.rhel" > "$hba"; rm -f "$DIR/$h/pg_hba.rhel"
}

pg_primary_job() {
  local h=$1
  if [ "$LAYOUT" = rhel ]; then
    step "initdb $RHEL_DATA"
    # local trust only until the roles exist; configure_pg_rhel then asks for passwords everywhere
    hx_pg "$h" "$RHEL_BIN/initdb" -D "$RHEL_DATA" --no-sync --locale=C.UTF-8 -U postgres --auth=trust >/dev/null
    step "pg_ctl start"
    rhel_pg_ctl "$h" -l /var/lib/pgsql/logfile -w -t 60 start
  else
    step "pg_createcluster"
    hx "$h" pg_createcluster --locale=C.UTF-8 "$PGVER" main -- --no-sync
    configure_pg "$h"
    step "pg_ctlcluster start"
    hx "$h" pg_ctlcluster "$PGVER" main start
  fi
  step "roles"
  {
    echo "SET password_encryption = 'md5';"
    echo "CREATE ROLE webadmin LOGIN SUPERUSER CREATEDB CREATEROLE PASSWORD $(sql_lit "$WEBADMIN_PW");"
    echo "CREATE ROLE appuser LOGIN PASSWORD $(sql_lit "$APP_PW");"
    echo "CREATE ROLE legacy LOGIN PASSWORD $(sql_lit "$LEGACY_PW");"
    echo "CREATE ROLE replicator LOGIN REPLICATION PASSWORD $(sql_lit "$REPL_PW");"
    if [ ${#PGPOOL_HOSTS[@]} -gt 0 ]; then
      echo "CREATE ROLE pgpool LOGIN PASSWORD $(sql_lit "$PGPOOL_PW");"
      echo "GRANT pg_monitor TO pgpool;"
    fi
    echo "CREATE DATABASE appdb OWNER appuser;"
  } | hx_pg "$h" psql -X -q -v ON_ERROR_STOP=1 -d postgres
  if [ "$LAYOUT" = rhel ]; then
    configure_pg_rhel "$h"
    step "pg_ctl restart (listen_addresses, logging_collector)"
    rhel_pg_ctl "$h" -l /var/lib/pgsql/logfile -w -t 60 -m fast restart
  fi
  step "primary ready"
}

pg_standby_job() {
  local h=$1 up=$2 F upip; upip=$(ip_of "$up")
  F=$(hostfs "$h")
  if [ "$LAYOUT" = rhel ]; then pg_standby_rhel "$h" "$up"; return; fi
  step "pg_createcluster"
  hx "$h" pg_createcluster --locale=C.UTF-8 "$PGVER" main -- --no-sync
  configure_pg "$h"   # Debian keeps postgresql.conf/pg_hba.conf in /etc: not copied by pg_basebackup
  # replication password for pg_basebackup and the walreceiver: ~postgres/.pgpass
  local pgpass=$F/var/lib/postgresql/.pgpass
  ( umask 077; printf '*:5432:replication:replicator:%s\n' "$(pgpass_field "$REPL_PW")" > "$pgpass" )
  chown postgres:postgres "$pgpass"
  rm -rf "$F/var/lib/postgresql/$PGVER/main"
  step "waiting for $up"
  wait_marker "$up" postgres 90
  step "pg_basebackup"
  local slot=(); [ -z "${REPL_SLOT[$h]:-}" ] || slot=(-C -S "$h")
  hx_pg "$h" pg_basebackup -h "$upip" -p 5432 -U replicator -w -D "/var/lib/postgresql/$PGVER/main" \
    -X stream -c fast -R --no-sync "${slot[@]}"
  # own primary_conninfo: no password inside, sslmode=prefer so it keeps working when the primary goes TLS-only
  local auto=$F/var/lib/postgresql/$PGVER/main/postgresql.auto.conf tmp; tmp=$(mktemp)
  # (a basebackup of a standby copies ITS postgresql.auto.conf: its slot name is not ours)
  grep -v -e '^primary_conninfo' -e '^primary_slot_name' "$auto" > "$tmp" || true
  [ -z "${REPL_SLOT[$h]:-}" ] || echo "primary_slot_name = '$h'" >> "$tmp"
  echo "primary_conninfo = 'host=$upip port=5432 user=replicator passfile=/var/lib/postgresql/.pgpass sslmode=prefer application_name=$h'" >> "$tmp"
  cat "$tmp" > "$auto"; rm -f "$tmp"
  step "pg_ctlcluster start"
  hx "$h" pg_ctlcluster "$PGVER" main start
  step "waiting for streaming"
  wait_until 30 "$h to stream from $up" \
    hx_pg "$h" bash -c '[ "$(psql -XAtqc "select status from pg_stat_wal_receiver")" = streaming ]'
  step "standby of $up is streaming"
}

# pg_standby_rhel NAME PRIMARY: a RHEL-style standby (pg_basebackup copies the primary's config files
# too, since they live in the data directory)
pg_standby_rhel() {
  local h=$1 up=$2 F upip; upip=$(ip_of "$up")
  F=$(hostfs "$h")
  local pgpass=$F/var/lib/pgsql/.pgpass
  ( umask 077; printf '*:5432:replication:replicator:%s\n' "$(pgpass_field "$REPL_PW")" > "$pgpass" )
  chown postgres:postgres "$pgpass"
  step "waiting for $up"
  wait_marker "$up" postgres 90
  step "pg_basebackup"
  hx_pg "$h" "$RHEL_BIN/pg_basebackup" -h "$upip" -p 5432 -U replicator -w -D "$RHEL_DATA" -X stream -c fast -R --no-sync
  local auto=$F$RHEL_DATA/postgresql.auto.conf tmp; tmp=$(mktemp)
  grep -v '^primary_conninfo' "$auto" > "$tmp" || true
  echo "primary_conninfo = 'host=$upip port=5432 user=replicator passfile=/var/lib/pgsql/.pgpass sslmode=prefer application_name=$h'" >> "$tmp"
  cat "$tmp" > "$auto"; rm -f "$tmp"
  step "pg_ctl start"
  rhel_pg_ctl "$h" -l /var/lib/pgsql/logfile -w -t 60 start
  step "waiting for streaming"
  # local rules want passwords here (copied from the primary): the server's own log says it streams
  wait_until 30 "$h to stream from $up" bash -c 'grep -qs "started streaming WAL" "$1"/*' - "$F$RHEL_DATA/log"
  step "standby of $up is running"
}

# RHEL-style Pgpool-II: /etc/pgpool-II (a copy of the package's files) and its own init script
# shellcheck disable=SC2016
PGPOOL_RHEL_INIT='#!/bin/sh
# /etc/init.d/pgpool-II: Pgpool-II as RHEL-style hosts run it (written by lab/lab.sh --layout rhel)
PGPOOLDAEMON=/usr/sbin/pgpool
PGPOOLCONF=/etc/pgpool-II/pgpool.conf
PGPOOLHBA=/etc/pgpool-II/pool_hba.conf
PGPOOLPCP=/etc/pgpool-II/pcp.conf
PGPOOLLOG=/var/log/pgpool/pgpool.log
PIDFILE=/var/run/pgpool/pgpool.pid
running() { p=$(tr -dc 0-9 2>/dev/null < "$PIDFILE"); [ -n "$p" ] && [ "$(cat /proc/$p/comm 2>/dev/null)" = pgpool ]; }
case "$1" in
  start)
    install -d -m 0755 -o postgres -g postgres /var/run/pgpool
    running && exit 0
    su -s /bin/sh -c "$PGPOOLDAEMON -f $PGPOOLCONF -a $PGPOOLHBA -F $PGPOOLPCP -n </dev/null >>$PGPOOLLOG 2>&1 &" postgres
    i=0; while [ $i -lt 50 ] && ! running; do sleep 0.1; i=$((i + 1)); done
    running || { echo "Pgpool-II did not start, see $PGPOOLLOG" >&2; exit 1; } ;;
  stop)
    running || exit 0
    su -s /bin/sh -c "$PGPOOLDAEMON -f $PGPOOLCONF -m fast stop" postgres >/dev/null 2>&1 || kill -INT "$(tr -dc 0-9 2>/dev/null < "$PIDFILE")" ;;
  restart) "$0" stop; i=0; while [ $i -lt 100 ] && running; do sleep 0.1; i=$((i + 1)); done; "$0" start ;;
  reload) su -s /bin/sh -c "$PGPOOLDAEMON -f $PGPOOLCONF reload" postgres ;;
  status) running ;;
  *) echo "usage: $0 start|stop|restart|reload|status" >&2; exit 2 ;;
esac'

pgpool_job() {
  local h=$1 backends=$2 F b n=0
  F=$(hostfs "$h")
  local etc=/etc/pgpool2 home=/var/lib/postgresql pidfile=/var/run/postgresql/pgpool.pid datadir=/var/lib/postgresql/$PGVER/main
  if [ "$LAYOUT" = rhel ]; then
    etc=/etc/pgpool-II home=/var/lib/pgsql pidfile=/var/run/pgpool/pgpool.pid datadir=$RHEL_DATA
    install -d -m 0755 "$F$etc"
    cp -a "$F/etc/pgpool2/." "$F$etc/"
    [ -f /usr/share/pgpool2/pgpool.conf ] && cat /usr/share/pgpool2/pgpool.conf > "$F$etc/pgpool.conf"
    printf '%s\n' "$PGPOOL_RHEL_INIT" > "$F/etc/init.d/pgpool-II"
    chmod 0755 "$F/etc/init.d/pgpool-II"
  fi
  local conf=$F$etc/pgpool.conf
  [ -f "$conf" ] || die "$h: no $etc/pgpool.conf (is pgpool2 installed?)"
  set_conf "$conf" listen_addresses "'*'"
  set_conf "$conf" port 9999
  set_conf "$conf" socket_dir "'/var/run/postgresql'"
  set_conf "$conf" pcp_socket_dir "'/var/run/postgresql'"
  set_conf "$conf" wd_ipc_socket_dir "'/var/run/postgresql'"
  set_conf "$conf" pid_file_name "'$pidfile'"
  set_conf "$conf" logdir "'/var/log/pgpool'"
  for b in ${backends//,/ }; do
    set_conf "$conf" "backend_hostname$n" "'$(ip_of "$b")'"
    set_conf "$conf" "backend_port$n" 5432
    set_conf "$conf" "backend_weight$n" 1
    set_conf "$conf" "backend_data_directory$n" "'$datadir'"
    set_conf "$conf" "backend_flag$n" "'ALLOW_TO_FAILOVER'"
    set_conf "$conf" "backend_application_name$n" "'$b'"
    n=$((n + 1))
  done
  set_conf "$conf" enable_pool_hba off
  # pre-TLS: clients not in pool_passwd authenticate with a clear-text password that pgpool replays
  # (md5) to the backends; only works while enable_pool_hba is off
  set_conf "$conf" allow_clear_text_frontend_auth on
  set_conf "$conf" ssl off
  set_conf "$conf" sr_check_period 10
  set_conf "$conf" sr_check_user "'pgpool'"
  set_conf "$conf" sr_check_password "''"     # '' = take it from pool_passwd
  set_conf "$conf" health_check_period 0
  {
    echo
    echo "# Remote access"
    printf '%-7s %-11s %-11s %-21s %s\n' host all all 0.0.0.0/0 md5
    printf '%-7s %-11s %-11s %-21s %s\n' host all all ::/0 md5
  } >> "$F$etc/pool_hba.conf"
  # random pgpool key in ~postgres/.pgpoolkey; pool_passwd holds only the pgpool user's AES entry
  # (as a cluster installer leaves it); pg_enc reads the password from a file, not argv
  local key=$F$home/.pgpoolkey in=$DIR/$h/.pg_enc.in
  ( umask 077; head -c 18 /dev/urandom | base64 > "$key"; printf 'pgpool:%s\n' "$PGPOOL_PW" > "$in" )
  chown postgres:postgres "$key"
  : > "$F$etc/pool_passwd"
  pg_enc -m -k "$key" -f "$conf" -i "$in"
  rm -f "$in"
  step "waiting for backends"
  for b in ${backends//,/ }; do wait_marker "$b" postgres 90; done
  if [ "$LAYOUT" = rhel ]; then
    step "/etc/init.d/pgpool-II start"
    hx "$h" /etc/init.d/pgpool-II start
  else
    step "/etc/init.d/pgpool2 start"
    hx "$h" /etc/init.d/pgpool2 start
  fi
  wait_until 30 "pgpool on $h to answer" env PGPASSWORD="$PGPOOL_PW" PGCONNECT_TIMEOUT=2 \
    psql -X -Atq "host=$(ip_of "$h") port=9999 user=pgpool dbname=postgres sslmode=disable" -c 'show pool_nodes'
  step "pgpool is up"
}

write_outputs() {
  local h f
  cat "$DIR"/pg*/known_hosts > "$DIR/known_hosts"
  : > "$DIR/ssh_config"
  for ((i = 1; i <= NHOSTS; i++)); do
    h=pg$i
    cat >> "$DIR/ssh_config" <<EOF
Host $h $(ip_of "$h")
  HostName $(ip_of "$h")
  User ${LOGIN_USER:-root}
  IdentityFile $DIR/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $DIR/known_hosts
  StrictHostKeyChecking yes
  BatchMode yes

EOF
  done
  f=$DIR/inventory.yaml
  {
    echo "# pgtls lab inventory, written by lab/lab.sh up"
    echo "# hosts: $NHOSTS; postgres: ${POSTGRES_HOSTS[*]:-none}; pgpool: ${PGPOOL_SPECS[*]:-none}; layout: $LAYOUT"
    for h in "${!STANDBY_OF[@]}"; do echo "# $h is a streaming standby of ${STANDBY_OF[$h]}"; done
    echo "all:"
    echo "  vars:"
    if [ -n "$LOGIN_USER" ]; then
      echo "    ansible_user: $(yaml_str "$LOGIN_USER")"
      echo "    ansible_become: true"
    else
      echo "    ansible_user: root"
    fi
    echo "    ansible_ssh_private_key_file: $(yaml_str "$DIR/id_ed25519")"
    echo "    pgtls_known_hosts: $(yaml_str "$DIR/known_hosts")"
    echo "    pgtls_ca_dir: $(yaml_str "$DIR/ca")"
    if [ ${#POSTGRES_HOSTS[@]} -gt 0 ]; then
      echo "    webadmin_password: $(yaml_str "$WEBADMIN_PW")"
      echo "    pgtls_users:"
      echo "      - name: appuser"
      echo "        password: $(yaml_str "$APP_PW")"
      # the roles servers and pools log in with must keep working once rules say scram-sha-256
      echo "      - name: replicator"
      echo "        password: $(yaml_str "$REPL_PW")"
      if [ ${#PGPOOL_HOSTS[@]} -gt 0 ]; then
        echo "      - name: pgpool"
        echo "        password: $(yaml_str "$PGPOOL_PW")"
        echo "    pgpool_password: $(yaml_str "$PGPOOL_PW")"
      fi
    fi
    echo "  children:"
    emit_group postgres "${POSTGRES_HOSTS[@]}"
    emit_group pgpool "${PGPOOL_HOSTS[@]}"
    local all=(); for ((i = 1; i <= NHOSTS; i++)); do all+=("pg$i"); done
    emit_group lab "${all[@]}"
  } > "$f"
}
emit_group() {
  local g=$1 h; shift
  echo "    $g:"
  if [ $# -eq 0 ]; then echo "      hosts: {}"; return; fi
  echo "      hosts:"
  for h in "$@"; do echo "        $h: { ansible_host: $(ip_of "$h") }"; done
}

cmd_up() {
  local t0; t0=$(now)
  NHOSTS=3; LOGIN_USER=""; LAYOUT=debian; POSTGRES_HOSTS=(); PGPOOL_SPECS=(); PGPOOL_HOSTS=(); declare -gA STANDBY_OF=() REPL_SLOT=()
  local dir="" spec h b want_slot="" owner_pid="" owner=""
  while [ $# -gt 0 ]; do
    case $1 in
      --dir) dir=$2; shift 2 ;;
      --slot) want_slot=$2; shift 2 ;;
      --owner-pid) owner_pid=$2; shift 2 ;;
      --hosts) NHOSTS=$2; shift 2 ;;
      --postgres) [ -n "$2" ] && IFS=, read -ra POSTGRES_HOSTS <<< "$2"; shift 2 ;;
      --standby) spec=$2; [[ $spec == *:* ]] || die "--standby wants HOST:PRIMARY"; STANDBY_OF[${spec%%:*}]=${spec#*:}; shift 2 ;;
      --repl-slot) REPL_SLOT[$2]=1; shift 2 ;;
      --pgpool) spec=$2; [[ $spec == *:?* ]] || die "--pgpool wants HOST:BACKEND1,BACKEND2"; PGPOOL_SPECS+=("$spec"); shift 2 ;;
      --user) LOGIN_USER=$2; shift 2 ;;
      --layout) LAYOUT=$2; shift 2 ;;
      *) die "up: unknown argument $1" ;;
    esac
  done
  [ "$(id -u)" = 0 ] || die "must run as root"
  [[ $NHOSTS =~ ^[0-9]+$ ]] && [ "$NHOSTS" -ge 1 ] && [ "$NHOSTS" -le 200 ] || die "--hosts must be 1..200"
  valid_host() { [[ $1 =~ ^pg[0-9]+$ ]] && [ "${1#pg}" -ge 1 ] && [ "${1#pg}" -le "$NHOSTS" ]; }
  for h in "${POSTGRES_HOSTS[@]}"; do valid_host "$h" || die "--postgres: no host $h (hosts are pg1..pg$NHOSTS)"; done
  for h in "${!STANDBY_OF[@]}"; do
    b=${STANDBY_OF[$h]}
    [[ " ${POSTGRES_HOSTS[*]} " == *" $h "* && " ${POSTGRES_HOSTS[*]} " == *" $b "* ]] \
      || die "--standby $h:$b: both must be in --postgres"
    [ "$h" != "$b" ] || die "--standby $h:$b: a host cannot follow itself"
  done
  for h in "${!REPL_SLOT[@]}"; do [ -n "${STANDBY_OF[$h]:-}" ] || die "--repl-slot $h: $h is not a --standby"; done
  for spec in "${PGPOOL_SPECS[@]}"; do
    h=${spec%%:*}; valid_host "$h" || die "--pgpool: no host $h"
    PGPOOL_HOSTS+=("$h")
    local bl=${spec#*:}
    for b in ${bl//,/ }; do [[ " ${POSTGRES_HOSTS[*]} " == *" $b "* ]] || die "--pgpool $spec: backend $b is not in --postgres"; done
  done
  command -v ip >/dev/null && command -v nsenter >/dev/null && [ -x /usr/sbin/sshd ] || die "needs iproute2, util-linux, openssh-server"
  [ ${#POSTGRES_HOSTS[@]} -eq 0 ] || command -v pg_createcluster >/dev/null || die "--postgres needs postgresql-$PGVER"
  [ ${#PGPOOL_HOSTS[@]} -eq 0 ] || [ -x /usr/sbin/pgpool ] || die "--pgpool needs pgpool2"
  [ -z "$LOGIN_USER" ] || command -v sudo >/dev/null || die "--user needs sudo"
  [ -z "$LOGIN_USER" ] || [[ $LOGIN_USER =~ ^[a-z_][a-z0-9_-]*$ ]] || die "--user: bad user name"
  case $LAYOUT in debian|rhel) ;; *) die "--layout must be debian or rhel" ;; esac
  [ -z "$want_slot" ] || { [[ $want_slot =~ ^[0-9]+$ ]] && [ "$want_slot" -le $MAX_SLOT ]; } || die "--slot must be 0..$MAX_SLOT"
  if [ -n "$owner_pid" ]; then owner=$(proc_id "$owner_pid") || die "--owner-pid $owner_pid: no such process"; fi

  DIR=$(resolve_dir "$dir"); mkdir -p "$DIR"; DIR=$(cd "$DIR" && pwd)

  # Choose a slot (under the lock): reclaim dead labs, reuse this DIR's slot, else --slot, else the lowest free.
  take_lock
  gc_slots
  local k f slot=""
  # A DIR holds one lab: tear down every lab registered for this DIR (also when the DIR was deleted
  # and re-created since), and reuse its slot.
  for f in "$REGISTRY"/slot.*; do
    [ -e "$f" ] && [ "$(sed -n 1p "$f")" = "$DIR" ] || continue
    k=${f##*.}
    teardown_slot "$k"
    if [ -z "$slot" ] && { [ -z "$want_slot" ] || [ "$want_slot" = "$k" ]; }; then slot=$k; fi
  done
  slot_free() {
    [ ! -e "$REGISTRY/slot.$1" ] && ! used_slots | grep -qx "$1" && ! ip -o -4 addr show 2>/dev/null | grep -q " 10\.231\.$1\."
  }
  if [ -z "$slot" ] && [ -n "$want_slot" ]; then
    slot_free "$want_slot" || die "slot $want_slot is in use by $(sed -n 1p "$REGISTRY/slot.$want_slot" 2>/dev/null || echo 'something else') (lab.sh down --dir THAT_DIR, or down --all)"
    slot=$want_slot
  fi
  if [ -z "$slot" ]; then
    for ((k = 0; k <= MAX_SLOT; k++)); do slot_free "$k" && { slot=$k; break; }; done
    [ -n "$slot" ] || die "all $((MAX_SLOT + 1)) lab slots are in use (lab.sh down --all)"
  fi
  mkdir -p "$REGISTRY"
  printf '%s\n%s\n' "$DIR" "$owner" > "$REGISTRY/slot.$slot"
  echo "$slot" > "$DIR/lab.slot"
  echo "$LAYOUT" > "$DIR/lab.layout"
  set_slot "$slot"
  ip link add "$BR" type bridge
  ip addr add "$NET.1/24" dev "$BR"
  ip link set "$BR" up
  exec 9>&-          # the slot is ours: let other labs come up in parallel
  # fresh state; the client key is kept across runs
  rm -rf "$DIR"/pg[0-9]* "$DIR/ca" "$DIR/bin"
  rm -f "$DIR/known_hosts" "$DIR/ssh_config" "$DIR/inventory.yaml"
  [ -s "$DIR/id_ed25519" ] && [ -s "$DIR/id_ed25519.pub" ] || { rm -f "$DIR/id_ed25519" "$DIR/id_ed25519.pub"; ssh-keygen -q -t ed25519 -N '' -C pgtls-lab -f "$DIR/id_ed25519"; }
  mkdir -p "$DIR/bin"
  cat > "$DIR/bin/logger" <<'EOF'
#!/bin/bash
# pgtls lab: stand-in for logger(1) inside lab hosts (there is no syslog daemon): appends to the
# host's /var/log/syslog in syslog's format. Understands -t TAG; ignores the other options.
tag=${SUDO_USER:-${LOGNAME:-logger}}; args=()
while [ $# -gt 0 ]; do
  case $1 in
    -t) tag=$2; shift 2 ;; -t*) tag=${1#-t}; shift ;; --tag=*) tag=${1#--tag=}; shift ;;
    -p|-f|-n|-P|-u|-S|--priority|--server|--port|--socket|--size|--file) shift 2 ;;
    --) shift; args+=("$@"); break ;;
    -*) shift ;;
    *) args+=("$1"); shift ;;
  esac
done
out() { printf '%(%b %e %H:%M:%S)T %s %s: %s\n' -1 "$HOSTNAME" "$tag" "$1" >> /var/log/syslog 2>/dev/null || true; }
if [ ${#args[@]} -gt 0 ]; then out "${args[*]}"; else while IFS= read -r line || [ -n "$line" ]; do out "$line"; done; fi
exit 0
EOF
  chmod 0755 "$DIR/bin/logger"

  # every host (sequential, cheap), each host's PID 1 starting in the background
  for ((i = 1; i <= NHOSTS; i++)); do mkdir -p "$DIR/pg$i"; done
  for ((i = 1; i <= NHOSTS; i++)); do start_host "pg$i"; done
  for ((i = 1; i <= NHOSTS; i++)); do run_job "pg$i" boot finish_host "pg$i"; done
  wait_jobs || die "starting hosts failed"
  write_outputs
  local t_hosts; t_hosts=$(since "$t0")

  # services, in parallel: primaries, standbys (wait for their primary), pgpools (wait for backends)
  for h in "${POSTGRES_HOSTS[@]}"; do
    if [ -n "${STANDBY_OF[$h]:-}" ]; then run_job "$h" postgres pg_standby_job "$h" "${STANDBY_OF[$h]}"
    else run_job "$h" postgres pg_primary_job "$h"; fi
  done
  for spec in "${PGPOOL_SPECS[@]}"; do run_job "${spec%%:*}" pgpool pgpool_job "${spec%%:*}" "${spec#*:}"; done
  for ((i = 1; i <= NHOSTS; i++)); do wait_until 10 "sshd on pg$i" tcp_open "$(ip_of "pg$i")" 22 || die "sshd on pg$i did not come up, see $DIR/pg$i/fs/var/log/auth.log"; done
  wait_jobs || die "lab is up but some services failed (see above); 'lab.sh down' to clean up"
  log "up: slot $SLOT ($NET.0/24), $NHOSTS hosts in ${t_hosts}s, services ready after $(since "$t0")s; dir $DIR"
}

cmd_down() {
  local dir="" all="" t0 k; t0=$(now)
  while [ $# -gt 0 ]; do
    case $1 in --dir) dir=$2; shift 2 ;; --all) all=1; shift ;; *) die "down: unknown argument $1" ;; esac
  done
  take_lock
  if [ -n "$all" ]; then
    teardown_everything
  else
    DIR=$(resolve_dir "$dir")
    if [ -s "$DIR/lab.slot" ]; then
      k=$(cat "$DIR/lab.slot")
      if [ "$(sed -n 1p "$REGISTRY/slot.$k" 2>/dev/null)" = "$DIR" ] || [ ! -e "$REGISTRY/slot.$k" ]; then
        teardown_slot "$k"
      fi   # else: the slot has been given to another lab since; nothing of ours is left
    fi
    rm -f "$DIR"/pg*/init.pid 2>/dev/null || true
  fi
  log "down in $(since "$t0")s"
}

cmd_gc() { take_lock; gc_slots; }

cmd_exec() {
  local dir="" h
  while [ $# -gt 0 ]; do case $1 in --dir) dir=$2; shift 2 ;; *) break ;; esac; done
  h=${1:?usage: lab.sh exec [--dir DIR] HOST [-- CMD...]}; shift
  [ "${1:-}" = "--" ] && shift
  DIR=$(resolve_dir "$dir")
  [ $# -gt 0 ] || set -- bash -l
  local pid; pid=$(holder_pid "$h")
  exec nsenter -t "$pid" -n -m -u -i -p -- \
    env -i -C / PATH="$HOST_PATH" HOME=/root USER=root LOGNAME=root SHELL=/bin/bash LANG=C.UTF-8 \
    TERM="${TERM:-dumb}" "$@"
}

cmd_sshd() {
  local dir="" h action
  while [ $# -gt 0 ]; do case $1 in --dir) dir=$2; shift 2 ;; *) break ;; esac; done
  h=${1:?usage: lab.sh sshd HOST start|stop}; action=${2:?usage: lab.sh sshd HOST start|stop}
  DIR=$(resolve_dir "$dir"); use_dir_slot
  case $action in
    start) hx "$h" bash -c '[ -s /run/sshd.pid ] && kill -0 "$(cat /run/sshd.pid)" 2>/dev/null || /usr/sbin/sshd -E /var/log/auth.log'
           wait_until 10 "sshd on $h" tcp_open "$(ip_of "$h")" 22 ;;
    stop)  hx "$h" bash -c '[ -s /run/sshd.pid ] && kill "$(cat /run/sshd.pid)" 2>/dev/null; rm -f /run/sshd.pid; true' ;;
    *) die "sshd: start|stop" ;;
  esac
}

cmd_status() {
  local dir="" d h ip f
  while [ $# -gt 0 ]; do case $1 in --dir) dir=$2; shift 2 ;; *) die "status: unknown argument $1" ;; esac; done
  DIR=$(resolve_dir "$dir"); use_dir_slot
  echo "dir: $DIR (slot $SLOT)"
  if ip link show "$BR" >/dev/null 2>&1; then echo "bridge: $BR $NET.1/24"; else echo "bridge: $BR absent"; fi
  for d in "$DIR"/pg[0-9]*; do
    [ -d "$d" ] || continue
    h=${d##*/}; ip=$(ip_of "$h")
    if [ -s "$d/init.pid" ] && kill -0 "$(cat "$d/init.pid")" 2>/dev/null && ip netns list | grep -q "^$NSP-$h\b"; then
      # shellcheck disable=SC2016
      hx "$h" bash -c '
        s=$( [ -s /run/sshd.pid ] && kill -0 "$(cat /run/sshd.pid)" 2>/dev/null && echo up || echo down )
        pg=$(pg_lsclusters -h 2>/dev/null | awk "{print \$1\"/\"\$2\":\"\$4}" | paste -sd" " -); [ -n "$pg" ] || pg=-
        pp=$( [ -s /var/run/postgresql/pgpool.pid ] && kill -0 "$(tr -dc 0-9 < /var/run/postgresql/pgpool.pid)" 2>/dev/null && echo up || echo - )
        printf "%-5s %-13s up  sshd:%-4s postgres:%-22s pgpool:%s\n" "$(hostname)" "$1" "$s" "$pg" "$pp"
      ' - "$ip" || true
    else
      printf '%-5s %-13s down\n' "$h" "$ip"
    fi
  done
  echo "labs on this machine:"
  for f in "$REGISTRY"/slot.*; do
    [ -e "$f" ] || { echo "  none"; break; }
    printf '  slot %-3s %s%s\n' "${f##*.}" "$(sed -n 1p "$f")" "$(o=$(sed -n 2p "$f"); [ -z "$o" ] || echo " (owner pid ${o%%:*})")"
  done
  return 0
}

usage() { sed -n '4,10p' "$SELF" | sed 's/^# \{0,1\}//' >&2; exit 2; }

case ${1:-} in
  up) shift; cmd_up "$@" ;;
  down) shift; cmd_down "$@" ;;
  exec) shift; cmd_exec "$@" ;;
  sshd) shift; cmd_sshd "$@" ;;
  status) shift; cmd_status "$@" ;;
  gc) shift; cmd_gc ;;
  __init) shift; host_init "$@" ;;
  -h|--help|help|"") usage ;;
  *) echo "lab: unknown command $1" >&2; usage ;;
esac
