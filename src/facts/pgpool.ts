/**
 * Facts about the Pgpool-II of a host. Like src/facts/postgres.ts, the RUNNING
 * process is asked first (its -f/-a/-k arguments, its user, its systemd unit),
 * and distribution layouts are only the fallback when pgpool is down:
 * Debian/Ubuntu `/etc/pgpool2`, RHEL/PGDG `/etc/pgpool-II`.
 *
 * Inventory variables override: pgpool_conf_file, pgpool_hba_file,
 * pgpool_os_user, pgpool_key_file, pgpool_port, pgpool_pid_file.
 * One discovery round trip + one read of pgpool.conf, memoized per host.
 */
import { posix } from 'node:path';
import { TaskError } from '../core/errors.js';
import type { PlanContext } from '../core/types.js';
import { sh } from '../remote/sh.js';
import { userVar } from './postgres.js';

export type PgpoolService = { kind: 'systemd'; unit: string } | { kind: 'init'; script: string } | { kind: 'unknown' };

export interface PgpoolServer {
  /** pid of the main pgpool process, null when pgpool is not running */
  pid: number | null;
  confFile: string;
  hbaFile: string;
  osUser: string;
  /** the key file pgpool reads at start: -k > $PGPOOLKEYFILE > ~osUser/.pgpoolkey */
  keyFile: string;
  port: number;
  pidFile: string;
  service: PgpoolService;
}

/** The fallback when pgpool is down; RHEL first, as in the Jelastic images the add-on targeted. */
const CONF_CANDIDATES = ['/etc/pgpool-II/pgpool.conf', '/etc/pgpool2/pgpool.conf'];
const INIT_SCRIPTS = ['/etc/init.d/pgpool2', '/etc/init.d/pgpool-II'];
const UNITS = ['pgpool2.service', 'pgpool-II.service', 'pgpool.service'];

// A main pgpool is a `pgpool` process whose parent is not one, in OUR network namespace
// (the lab's hosts share one PID space). cmdline and environ are NUL-separated: made one line each.
const DISCOVER = `
self_net=$(readlink /proc/self/ns/net 2>/dev/null)
if [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; then echo "systemd=1"; fi
for d in /proc/[0-9]*; do
  [ "$(cat "$d/comm" 2>/dev/null)" = pgpool ] || continue
  ppid=$(sed -n 's/^PPid:[[:space:]]*//p' "$d/status" 2>/dev/null)
  [ "$(cat "/proc/$ppid/comm" 2>/dev/null)" = pgpool ] && continue
  net=$(readlink "$d/ns/net" 2>/dev/null)
  if [ -n "$self_net" ] && [ -n "$net" ] && [ "$net" != "$self_net" ]; then continue; fi
  user=$(stat -c %U "$d")
  unit=$(sed -n 's|.*/\\([^/]*\\.service\\)$|\\1|p' "$d/cgroup" 2>/dev/null | head -n 1)
  keyenv=$(tr '\\0' '\\n' < "$d/environ" 2>/dev/null | sed -n 's/^PGPOOLKEYFILE=//p' | head -n 1)
  printf 'pp\\t%s\\t%s\\t%s\\t%s\\t%s\\t%s\\n' "\${d#/proc/}" "$user" "$(getent passwd "$user" | cut -d: -f6)" "$unit" "$keyenv" \\
    "$(tr '\\0' '\\t' < "$d/cmdline" 2>/dev/null)"
done
for f in ${CONF_CANDIDATES.join(' ')}; do [ -f "$f" ] && echo "conf=$f"; done
for s in ${INIT_SCRIPTS.join(' ')}; do [ -x "$s" ] && echo "init=$s"; done
if [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; then
  for u in ${UNITS.join(' ')}; do systemctl cat -- "$u" >/dev/null 2>&1 && echo "unit=$u"; done
fi
echo "home_postgres=$(getent passwd postgres | cut -d: -f6)"
`;

interface Discovery {
  systemd: boolean;
  procs: { pid: number; user: string; home: string; unit: string; keyEnv: string; argv: string[] }[];
  confs: string[];
  inits: string[];
  units: string[];
  postgresHome: string;
}

function parseDiscovery(out: string): Discovery {
  const d: Discovery = { systemd: false, procs: [], confs: [], inits: [], units: [], postgresHome: '' };
  for (const line of out.split('\n')) {
    const f = line.split('\t');
    if (f[0] === 'pp') {
      d.procs.push({ pid: Number(f[1]), user: f[2] ?? '', home: f[3] ?? '', unit: f[4] ?? '', keyEnv: f[5] ?? '', argv: f.slice(6).filter(Boolean) });
    } else if (line === 'systemd=1') d.systemd = true;
    else if (line.startsWith('conf=')) d.confs.push(line.slice(5));
    else if (line.startsWith('init=')) d.inits.push(line.slice(5));
    else if (line.startsWith('unit=')) d.units.push(line.slice(5));
    else if (line.startsWith('home_postgres=')) d.postgresHome = line.slice(14);
  }
  return d;
}

/** The value of `-x VALUE`, `-xVALUE` or `--long=VALUE` in pgpool's argv (getopt_long). */
export function optionValue(argv: readonly string[], short: string, long: string): string | undefined {
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === `-${short}` || a === `--${long}`) return argv[i + 1];
    if (a.startsWith(`--${long}=`)) return a.slice(long.length + 3);
    if (a.startsWith(`-${short}`) && a.length > 2 && !a.startsWith('--')) return a.slice(2);
  }
  return undefined;
}

/**
 * One setting of pgpool.conf (same syntax as postgresql.conf): the LAST active line wins, quoted
 * values lose their quotes ('' and \' unescaped), a trailing # comment is dropped. Undefined when unset.
 */
export function pgpoolSetting(text: string, key: string): string | undefined {
  let value: string | undefined;
  const re = new RegExp(`^\\s*${key}(?:\\s*=\\s*|\\s+)(.*)$`);
  for (const line of text.split('\n')) {
    const m = re.exec(line);
    if (!m) continue;
    const rest = m[1]!;
    if (rest.startsWith("'")) {
      let v = '';
      let i = 1;
      for (; i < rest.length; i++) {
        const c = rest[i]!;
        if (c === '\\' && i + 1 < rest.length) v += rest[++i]!;
        else if (c === "'" && rest[i + 1] === "'") (v += "'"), i++;
        else if (c === "'") break;
        else v += c;
      }
      value = v;
    } else value = rest.replace(/\s*#.*$/, '').trim();
  }
  return value;
}

/** Where pgpool looks for pool_passwd: the setting, relative to the conf dir; '' means "off" (pgpool's own rule). */
export function poolPasswdPath(confFile: string, confText: string): string {
  const v = pgpoolSetting(confText, 'pool_passwd') ?? 'pool_passwd';
  const name = v === '' ? 'pool_passwd' : v;
  return name.startsWith('/') ? name : posix.join(posix.dirname(confFile), name);
}

/** Everything about the host's pgpool, asked once per run (paths do not change during a run). */
export function pgpoolServer(ctx: PlanContext): Promise<PgpoolServer> {
  return ctx.memoStable('pgtls:pgpool-server', async () => {
    const d = parseDiscovery((await ctx.query(sh`sh -c ${DISCOVER}`)).stdout.toString('utf8'));
    if (d.procs.length > 1)
      throw new TaskError(`several Pgpool-II main processes run on ${ctx.host} (pids ${d.procs.map((p) => p.pid).join(', ')}); pgtls expects one`);
    const proc = d.procs[0];
    const str = (name: string) => {
      const v = userVar(ctx, name);
      return v === undefined ? undefined : String(v);
    };
    const argConf = proc && optionValue(proc.argv, 'f', 'config-file');
    const confFile = str('pgpool_conf_file') ?? argConf ?? d.confs[0];
    if (!confFile)
      throw new TaskError(`no Pgpool-II configuration found on ${ctx.host} (looked for ${CONF_CANDIDATES.join(', ')}); set pgpool_conf_file`);
    const conf = await ctx.readFile(confFile);
    if (!conf) throw new TaskError(`${confFile} does not exist on ${ctx.host}`);
    const text = conf.content.toString('utf8');
    const dir = posix.dirname(confFile);
    const osUser = str('pgpool_os_user') ?? (proc?.user || 'postgres');
    const home = proc && proc.user === osUser ? proc.home : osUser === 'postgres' ? d.postgresHome : '';
    const argKey = proc && (optionValue(proc.argv, 'k', 'key-file') ?? (proc.keyEnv || undefined));
    const keyFile = str('pgpool_key_file') ?? argKey ?? (home ? posix.join(home, '.pgpoolkey') : undefined);
    if (!keyFile) throw new TaskError(`cannot find the home directory of ${osUser} on ${ctx.host}; set pgpool_key_file`);
    const service: PgpoolService =
      d.systemd && proc?.unit
        ? { kind: 'systemd', unit: proc.unit }
        : d.systemd && d.units[0]
          ? { kind: 'systemd', unit: d.units[0] }
          : d.inits[0]
            ? { kind: 'init', script: d.inits[0] }
            : { kind: 'unknown' };
    return {
      pid: proc?.pid ?? null,
      confFile,
      hbaFile: str('pgpool_hba_file') ?? (proc && optionValue(proc.argv, 'a', 'hba-file')) ?? posix.join(dir, 'pool_hba.conf'),
      osUser,
      keyFile,
      port: Number(str('pgpool_port') ?? pgpoolSetting(text, 'port') ?? 9999),
      pidFile: str('pgpool_pid_file') ?? pgpoolSetting(text, 'pid_file_name') ?? '/var/run/pgpool/pgpool.pid',
      service,
    };
  });
}

/** The on-demand facts this file contributes to the registry (src/facts/index.ts). */
export const pgpoolFacts: Record<string, { placeholder: unknown; provide(ctx: PlanContext): Promise<unknown> }> = {
  pgpool_conf_file: { placeholder: '/etc/pgpool2/pgpool.conf', provide: async (ctx) => (await pgpoolServer(ctx)).confFile },
  pgpool_hba_file: { placeholder: '/etc/pgpool2/pool_hba.conf', provide: async (ctx) => (await pgpoolServer(ctx)).hbaFile },
  pgpool_os_user: { placeholder: 'postgres', provide: async (ctx) => (await pgpoolServer(ctx)).osUser },
  pgpool_key_file: { placeholder: '/var/lib/postgresql/.pgpoolkey', provide: async (ctx) => (await pgpoolServer(ctx)).keyFile },
  pgpool_port: { placeholder: 9999, provide: async (ctx) => (await pgpoolServer(ctx)).port },
  pgpool_pid_file: { placeholder: '/var/run/postgresql/pgpool.pid', provide: async (ctx) => (await pgpoolServer(ctx)).pidFile },
  pgpool_service: { placeholder: { kind: 'init', script: '/etc/init.d/pgpool2' }, provide: async (ctx) => (await pgpoolServer(ctx)).service },
};
