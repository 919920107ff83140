/**
 * Facts about the Pgpool-II of a host. Like src/facts/postgres.ts, the RUNNING
 * process is asked first (its -f/-a/-k arguments, its user, its systemd unit),
 * confirmed by its own pid file (pid_file_name), and distribution layouts are
 * only the fallback when pgpool is down: Debian/Ubuntu `/etc/pgpool2`, RHEL/PGDG
 * `/etc/pgpool-II`. Zombies and orphaned children never count (discovery.ts).
 *
 * Inventory variables override: pgpool_conf_file, pgpool_hba_file,
 * pgpool_os_user, pgpool_key_file, pgpool_port, pgpool_pid_file.
 * One discovery round trip + one read of pgpool.conf, memoized per host.
 */
import { posix } from 'node:path';
import { TaskError } from '../lib/errors.js';
import type { PlanContext } from '../lib/plan-types.js';
import type { FactProvider } from './provider.js';
import { sh } from '../lib/sh.js';
import { chooseInitScript, mainCandidates, pidFileAlive, procRowHead, type PidFileProbe, type ProcRow } from './discovery.js';
import { userVar } from './postgres.js';
import { standaloneScript } from '../remote/standalone-scripts.js';

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
  /** backend_hostnameN of pgpool.conf, in N order */
  backends: string[];
  /** pgpool.conf says ssl = on */
  ssl: boolean;
}

/** Where packages put pgpool.conf (RHEL/PGDG, Debian): candidates when nothing better says where it is. */
const CONF_CANDIDATES = ['/etc/pgpool-II/pgpool.conf', '/etc/pgpool2/pgpool.conf'];
const UNITS = ['pgpool2.service', 'pgpool-II.service', 'pgpool.service'];

// Every main-candidate `pgpool` process (src/remote/scripts/discover-pgpool.sh: no process per
// /proc entry, children skipped), the packages' config files and units that exist.
const discoverCommand = () => sh`sh -c ${standaloneScript('discover-pgpool')} pgtls-discover ${CONF_CANDIDATES} -- ${UNITS}`;

// Second round trip, once the config file is known: the process its pid file names, and which
// init scripts start Pgpool-II with that file (by naming it or its directory).
const PIDFILE_AND_INIT = `pidfile=$1 conf=$2 confdir=$3
pid=$(tr -dc '0-9\\n' < "$pidfile" 2>/dev/null | head -n 1 | head -c 10)
if [ -n "$pid" ]; then
  set -- $(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null) x
  echo "pidfile $pid $(cat "/proc/$pid/comm" 2>/dev/null || echo -) $1"
else echo "pidfile none"; fi
for s in /etc/init.d/*pgpool* /etc/rc.d/init.d/*pgpool*; do
  [ -f "$s" ] && [ -x "$s" ] || continue
  if grep -qF -- "$conf" "$s"; then m=file; elif grep -qF -- "$confdir" "$s"; then m=dir; else m=none; fi
  echo "init $m $s"
done
`;

interface Proc extends ProcRow {
  user: string;
  home: string;
  unit: string;
  keyEnv: string;
  defaultConf: string;
}

interface Discovery {
  systemd: boolean;
  procs: Proc[];
  confs: string[];
  units: string[];
  postgresHome: string;
}

export function parseDiscovery(out: string): Discovery {
  const d: Discovery = { systemd: false, procs: [], confs: [], units: [], postgresHome: '' };
  for (const line of out.split('\n')) {
    const f = line.split('\t');
    if (f[0] === 'pp') {
      d.procs.push({
        ...procRowHead(f),
        user: f[6] ?? '',
        home: f[7] ?? '',
        unit: f[8] ?? '',
        keyEnv: f[9] ?? '',
        defaultConf: f[10] ?? '',
        argv: f.slice(11).filter(Boolean),
      });
    } else if (line === 'systemd=1') d.systemd = true;
    else if (line.startsWith('conf=')) d.confs.push(line.slice(5));
    else if (line.startsWith('unit=')) d.units.push(line.slice(5));
    else if (line.startsWith('home_postgres=')) d.postgresHome = line.slice(14);
  }
  return d;
}

export function parsePidFileAndInit(out: string): { probe: PidFileProbe; inits: { path: string; mentions: 'file' | 'dir' | 'none' }[] } {
  let probe: PidFileProbe = { pid: null, comm: '', state: '' };
  const inits: { path: string; mentions: 'file' | 'dir' | 'none' }[] = [];
  for (const line of out.split('\n')) {
    let m: RegExpExecArray | null;
    if ((m = /^pidfile (\d+) (\S+) ?(\S*)$/.exec(line))) probe = { pid: Number(m[1]), comm: m[2] === '-' ? '' : m[2]!, state: m[3] ?? '' };
    else if ((m = /^init (file|dir|none) (.+)$/.exec(line))) inits.push({ path: m[2]!, mentions: m[1] as 'file' | 'dir' | 'none' });
  }
  return { probe, inits };
}

/** The config file a (candidate main) pgpool process reads: its -f, else its binary's default. */
function confOf(p: Proc): string | undefined {
  return optionValue(p.argv, 'f', 'config-file') ?? (p.defaultConf || undefined);
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

/** backend_hostnameN values of pgpool.conf (the last active line of each N wins), in N order. */
export function backendHosts(text: string): string[] {
  const ns = new Set<number>();
  for (const m of text.matchAll(/^\s*backend_hostname(\d+)\s*=/gm)) ns.add(Number(m[1]));
  return [...ns].sort((a, b) => a - b).map((i) => pgpoolSetting(text, `backend_hostname${i}`) ?? '').filter(Boolean);
}

/** Where pgpool looks for pool_passwd: the setting, relative to the conf dir; '' means "off" (pgpool's own rule). */
export function poolPasswdPath(confFile: string, confText: string): string {
  const v = pgpoolSetting(confText, 'pool_passwd') ?? 'pool_passwd';
  const name = v === '' ? 'pool_passwd' : v;
  return name.startsWith('/') ? name : posix.join(posix.dirname(confFile), name);
}

/**
 * Everything about the host's pgpool, asked once per run (paths do not change during a run).
 * The config file: pgpool_conf_file, else the -f (or compiled-in default) of the running main
 * process, else where packages put it. The main process: the one its pid_file_name names; the
 * process table only finds the config. The service: the systemd unit whose cgroup the main process
 * runs in, else the init script that starts Pgpool-II with that config file.
 */
export function pgpoolServer(ctx: PlanContext): Promise<PgpoolServer> {
  return ctx.memoStable('pgtls:pgpool-server', async () => {
    const d = parseDiscovery((await ctx.query(discoverCommand(), { independentOfFiles: true })).stdout.toString('utf8'));
    const str = (name: string) => {
      const v = userVar(ctx, name);
      return v === undefined ? undefined : String(v);
    };
    const cands = mainCandidates(d.procs, 'pgpool');
    const explicit = str('pgpool_conf_file');
    const choices = explicit ? [explicit] : [...new Set([...cands.map(confOf).filter((c): c is string => !!c), ...d.confs])];
    if (choices.length === 0)
      throw new TaskError(`no Pgpool-II configuration found on ${ctx.host} (looked for ${CONF_CANDIDATES.join(', ')}); set pgpool_conf_file`);
    // The first config whose pid file names a live pgpool wins; none: pgpool is down (first choice).
    let chosen: { confFile: string; text: string; pidFile: string; pid: number | null; inits: { path: string; mentions: 'file' | 'dir' | 'none' }[] } | undefined;
    for (const confFile of choices) {
      const conf = await ctx.readFile(confFile);
      if (!conf) {
        if (explicit) throw new TaskError(`${confFile} does not exist on ${ctx.host}`);
        continue;
      }
      const text = conf.content.toString('utf8');
      const pidFile = str('pgpool_pid_file') ?? pgpoolSetting(text, 'pid_file_name') ?? '/var/run/pgpool/pgpool.pid';
      const out = (await ctx.query(sh`sh -c ${PIDFILE_AND_INIT} pgtls-pgpool-pid ${pidFile} ${confFile} ${posix.dirname(confFile)}`)).stdout.toString('utf8');
      const { probe, inits } = parsePidFileAndInit(out);
      const pid = pidFileAlive(probe, 'pgpool') ? probe.pid : null;
      const entry = { confFile, text, pidFile, pid, inits };
      if (!chosen) chosen = entry;
      if (pid !== null) {
        chosen = entry;
        break;
      }
    }
    if (!chosen) throw new TaskError(`${choices[0]} does not exist on ${ctx.host}`);
    const { confFile, text, pidFile, pid, inits } = chosen;
    const proc = pid === null ? undefined : d.procs.find((p) => p.pid === pid);
    if (pid === null && cands.length > 0)
      ctx.warn(
        `a pgpool process runs on ${ctx.host} (pid ${cands.map((p) => p.pid).join(', ')}) but ${pidFile} (pid_file_name of ${confFile}) names no live Pgpool-II: treated as stopped`,
      );
    const dir = posix.dirname(confFile);
    const osUser = str('pgpool_os_user') ?? (proc?.user || 'postgres');
    const home = proc && proc.user === osUser ? proc.home : osUser === 'postgres' ? d.postgresHome : '';
    const argKey = proc && (optionValue(proc.argv, 'k', 'key-file') ?? (proc.keyEnv || undefined));
    const keyFile = str('pgpool_key_file') ?? argKey ?? (home ? posix.join(home, '.pgpoolkey') : undefined);
    if (!keyFile) throw new TaskError(`cannot find the home directory of ${osUser} on ${ctx.host}; set pgpool_key_file`);
    const script = chooseInitScript(inits, confFile);
    const service: PgpoolService =
      d.systemd && proc?.unit
        ? { kind: 'systemd', unit: proc.unit }
        : d.systemd && !proc && d.units.length === 1
          ? { kind: 'systemd', unit: d.units[0]! }
          : script
            ? { kind: 'init', script }
            : { kind: 'unknown' };
    return {
      pid,
      confFile,
      hbaFile: str('pgpool_hba_file') ?? (proc && optionValue(proc.argv, 'a', 'hba-file')) ?? posix.join(dir, 'pool_hba.conf'),
      osUser,
      keyFile,
      port: Number(str('pgpool_port') ?? pgpoolSetting(text, 'port') ?? 9999),
      pidFile,
      service,
      backends: backendHosts(text),
      ssl: /^(on|true|yes|1)$/i.test(pgpoolSetting(text, 'ssl') ?? 'off'),
    };
  });
}

/** The on-demand facts this file contributes to the registry (src/facts/index.ts). */
export const pgpoolFacts: Record<string, FactProvider> = {
  pgpool_conf_file: { placeholder: '/etc/pgpool2/pgpool.conf', provide: async (ctx) => (await pgpoolServer(ctx)).confFile, reads: true, probe: discoverCommand },
  pgpool_hba_file: { placeholder: '/etc/pgpool2/pool_hba.conf', provide: async (ctx) => (await pgpoolServer(ctx)).hbaFile, reads: true, probe: discoverCommand },
  pgpool_os_user: { placeholder: 'postgres', provide: async (ctx) => (await pgpoolServer(ctx)).osUser, probe: discoverCommand },
  pgpool_key_file: { placeholder: '/var/lib/postgresql/.pgpoolkey', provide: async (ctx) => (await pgpoolServer(ctx)).keyFile, probe: discoverCommand },
  pgpool_port: { placeholder: 9999, provide: async (ctx) => (await pgpoolServer(ctx)).port, probe: discoverCommand },
  pgpool_pid_file: { placeholder: '/var/run/postgresql/pgpool.pid', provide: async (ctx) => (await pgpoolServer(ctx)).pidFile, probe: discoverCommand },
  pgpool_service: { placeholder: { kind: 'init', script: '/etc/init.d/pgpool2' }, provide: async (ctx) => (await pgpoolServer(ctx)).service, probe: discoverCommand },
};
