/**
 * The shell side of restarting Pgpool-II: how the host runs it, and a bounded
 * wait until a NEW main process is up and listening.
 *
 * Why not just `<service> restart`: Debian's /etc/init.d/pgpool2 restart sends
 * SIGINT, sleeps 1 s and starts only if the old pid is gone; a pgpool still
 * finishing its children after 1 s makes "start" a no-op, and then the old one
 * exits: pgpool is DOWN and the script said OK. So for init scripts we stop,
 * wait for the old main process to be gone, then start. Service output goes to
 * a temp file: a daemon that inherited our SSH channel's fds would keep the
 * command from ever finishing. Done means: a new main process (pid file) whose
 * socket holds the port; a failure says who holds the port instead, and what
 * Pgpool-II's own log said.
 */
import type { PgpoolService } from '../facts/pgpool.js';
import { sh, type ShellCommand } from '../lib/sh.js';

const RESTART = `set -u
pidfile=$1 port=$2 wait=$3 mode=$4 target=$5 conf=\${6:-}
pidof_file() { tr -dc 0-9 2>/dev/null < "$pidfile" | head -c 10; }
alive() { [ -n "$1" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = pgpool ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
listeners() { ss -Hltnp "( sport = :$port )" 2>/dev/null; }
# The port must be held by the NEW Pgpool-II (its main process or a child: they share the socket),
# not by anything that happens to listen there. Without ss, or without the privileges to see the
# owning processes, any listener is all we can tell.
listening() {
  command -v ss >/dev/null 2>&1 || return 0
  out=$(listeners) || return 0
  [ -n "$out" ] || return 1
  case $out in *pid=*) ;; *) return 0 ;; esac
  printf '%s\\n' "$out" | grep -q "pid=$1[,)]" && return 0
  for c in $(cat /proc/$1/task/*/children 2>/dev/null); do printf '%s\\n' "$out" | grep -q "pid=$c[,)]" && return 0; done
  return 1
}
holder() { listeners | sed -n 's/.*users:(("\\([^"]*\\)",pid=\\([0-9]*\\).*/\\1 (pid \\2)/p' | head -n 1; }
log=$(mktemp) || exit 1
stamp=$(mktemp) || exit 1
trap 'rm -f -- "$log" "$stamp"' EXIT
# Pgpool-II's own log since this restart began: log_directory with logging_collector, else where
# packages and init scripts send its output
pool_log() {
  files=
  if [ -n "$conf" ] && [ -r "$conf" ]; then
    coll=$(sed -n "s/^[[:space:]]*logging_collector[[:space:]]*=[[:space:]]*'*\\([A-Za-z0-9]*\\).*/\\1/p" "$conf" | tail -n 1)
    dir=$(sed -n "s/^[[:space:]]*log_directory[[:space:]]*=[[:space:]]*'\\([^']*\\)'.*/\\1/p" "$conf" | tail -n 1)
    case $coll in on|true|yes|1) [ -n "$dir" ] && files=$(ls -t "$dir"/* 2>/dev/null | head -n 1) ;; esac
  fi
  for f in $files /var/log/pgpool/pgpool.log /var/log/pgpool-II/pgpool.log /var/log/pgpool.log /var/log/syslog /var/log/messages; do
    [ -f "$f" ] && [ "$f" -nt "$stamp" ] || continue
    case $f in */syslog|*/messages) sel='pgpool' ;; *) sel='' ;; esac
    got=$(grep -a -E 'FATAL|ERROR|PANIC' "$f" 2>/dev/null | grep -a -e "$sel" | tail -n 1)
    [ -n "$got" ] && { echo "Pgpool-II's log ($f): $got"; return 0; }
  done
  return 0
}
# the last lines are what the error message shows: Pgpool-II's own words, what failed, who has the port
fail() {
  tail -n 5 -- "$log" >&2
  pool_log >&2
  echo "$1" >&2
  h=$(holder); new=$(pidof_file)
  if [ -n "$h" ] && ! { alive "$new" && listening "$new"; }; then echo "port $port is taken by $h, not by the new Pgpool-II" >&2; fi
  exit 1
}
old=$(pidof_file); alive "$old" || old=
n=$((wait * 10))
case $mode in
  systemd) systemctl restart -- "$target" </dev/null >"$log" 2>&1 || fail "systemctl restart $target failed" ;;
  init)
    if [ -n "$old" ]; then
      "$target" stop </dev/null >"$log" 2>&1
      i=0; while alive "$old" && [ $i -lt $n ]; do sleep 0.1; i=$((i + 1)); done
      alive "$old" && fail "Pgpool-II (pid $old) did not stop within \${wait}s"
    fi
    "$target" start </dev/null >>"$log" 2>&1 || fail "$target start failed" ;;
  command) sh -c "$target" </dev/null >"$log" 2>&1 || fail "pgpool_restart_cmd failed" ;;
esac
i=0 seen=
while [ $i -lt $n ]; do
  new=$(pidof_file)
  if alive "$new" && [ "$new" != "$old" ]; then
    seen=$new
    if listening "$new"; then echo "pid $new"; exit 0; fi
  elif [ -n "$seen" ] && [ "$new" = "$seen" ]; then
    fail "Pgpool-II (pid $seen) started and exited"
  elif [ $i -ge 30 ] && [ $((i % 10)) = 0 ] && h=$(holder) && [ -n "$h" ] && case $h in pgpool*) false ;; *) true ;; esac; then
    fail "Pgpool-II is not running 3s after the start and something else listens on its port"
  fi
  sleep 0.1; i=$((i + 1))
done
if [ -n "$seen" ] && alive "$seen"; then fail "Pgpool-II (pid $seen) runs but does not listen on port $port within \${wait}s"; fi
fail "Pgpool-II did not come back within \${wait}s (pid file $pidfile: \${new:-none}, port $port)"
`;

export function restartCommand(
  service: PgpoolService,
  restartCmd: string,
  o: { pidFile: string; port: number; waitSeconds: number; confFile?: string },
): ShellCommand | string {
  const [mode, target] = restartCmd
    ? ['command', restartCmd]
    : service.kind === 'systemd'
      ? ['systemd', service.unit]
      : service.kind === 'init'
        ? ['init', service.script]
        : [null, ''];
  if (!mode) return 'cannot tell how Pgpool-II is run on this host (no systemd unit, no /etc/init.d script): set pgpool_restart_cmd';
  return sh`sh -c ${RESTART} pgtls-pgpool-restart ${o.pidFile} ${o.port} ${Math.ceil(o.waitSeconds)} ${mode} ${target} ${o.confFile ?? ''}`;
}

export function describeService(service: PgpoolService, restartCmd: string): string {
  if (restartCmd) return `pgpool_restart_cmd`;
  return service.kind === 'systemd' ? `systemctl restart ${service.unit}` : service.kind === 'init' ? `${service.script} stop/start` : 'unknown';
}

/**
 * Read-only: is the main pgpool running, and the change time of every file it reads at
 * start, against the pid file's (written at start). ctime, not mtime: a chown/chmod of a
 * key (which decides whether pgpool can load it) counts too. With --check, also the
 * sha256 of each file, to compare with what earlier tasks would have written.
 */
const STATE = `pidfile=$1; withsum=$2; shift 2
pid=$(tr -dc 0-9 < "$pidfile" 2>/dev/null | head -c 10)
if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = pgpool ]; then
  echo "running $pid $(stat -c %.9Z -- "$pidfile")"
else echo stopped; fi
for f; do
  if [ -e "$f" ]; then
    s=-; [ "$withsum" = 1 ] && s=$(sha256sum < "$f" 2>/dev/null | cut -c1-64)
    echo "file $(stat -L -c %.9Z -- "$f") \${s:--} $f"
  else echo "absent $f"; fi
done
`;

export interface PgpoolState {
  running: { pid: number; startedAt: number } | null;
  files: Map<string, { ctime: number; sha256: string | null } | null>;
}

export function stateCommand(pidFile: string, files: string[], withSums: boolean): ShellCommand {
  return sh`sh -c ${STATE} pgtls-pgpool-state ${pidFile} ${withSums ? '1' : '0'} ${files}`;
}

export function parseState(out: string): PgpoolState {
  const st: PgpoolState = { running: null, files: new Map() };
  for (const line of out.split('\n')) {
    let m: RegExpExecArray | null;
    if ((m = /^running (\d+) ([\d.]+)$/.exec(line))) st.running = { pid: Number(m[1]), startedAt: Number(m[2]) };
    else if ((m = /^file ([\d.]+) (\S+) (.*)$/.exec(line))) st.files.set(m[3]!, { ctime: Number(m[1]), sha256: m[2] === '-' ? null : m[2]! });
    else if ((m = /^absent (.*)$/.exec(line))) st.files.set(m[1]!, null);
  }
  return st;
}
