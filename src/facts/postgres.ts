/**
 * Facts about the PostgreSQL server of a host, asked of the RUNNING server
 * (never guessed from a distribution's default layout), so the same playbook
 * works on Debian (`/etc/postgresql/15/main`), RHEL (`/var/lib/pgsql/15/data`),
 * a hand-built cluster on another port, with or without systemd.
 *
 * Two round trips, memoized per host through ctx.memo:
 *  1. a read-only /proc scan for postmaster candidates (a `postgres` process
 *     whose parent is not one, not a zombie, in our network namespace), kept
 *     only when its data directory's (its cwd's) postmaster.pid names it: that
 *     file also holds the port and socket directory;
 *  2. psql over that socket through the host's SQL login (src/facts/pg-login.ts:
 *     peer as the OS user, else webadmin with its password), SQL on stdin, one
 *     JSON row back with the settings we need.
 * The inventory variables pg_port, pg_config_file, pg_hba_file, pg_os_user
 * (and pg_data_directory) override what is found; pg_port/pg_data_directory
 * also pick the postmaster when a host runs several.
 */
import { HINT_SQL_FIELDS, hintFromJson, rememberState } from '../postgres/state-hint.js';
import { TaskError } from '../lib/errors.js';
import { Secret } from '../lib/secret.js';
import type { ExecAction, PlanContext } from '../lib/plan-types.js';
import { RemoteCommandError } from '../lib/transport.js';
import { sh, type ShellCommand } from '../lib/sh.js';
import type { FactProvider } from './provider.js';
import { excludedReason, isPostmaster, procRowHead, type ProcRow } from './discovery.js';
import { describeLogin, osUserLogsIn, sqlInvocation, sqlLoginAndQuery, sqlReadInvocation, type SqlLogin } from './pg-login.js';
import { renderValue } from '../template/render.js';
import { standaloneScript } from '../remote/standalone-scripts.js';

export type PgService =
  | { kind: 'systemd'; unit: string }
  | { kind: 'pg_ctlcluster'; version: string; cluster: string }
  | { kind: 'pg_ctl'; pgCtl: string; dataDir: string };

export interface PgServer {
  pid: number;
  /** Directory of the running `postgres` binary: psql and pg_ctl of the same major live there. */
  binDir: string;
  version: number;
  versionNum: number;
  configFile: string;
  hbaFile: string;
  dataDirectory: string;
  port: number;
  socketDir: string;
  listenAddresses: string;
  osUser: string;
  osGroup: string;
  inRecovery: boolean;
  service: PgService;
  /** How SQL logs in on this host (peer as osUser, or webadmin with its password). */
  login: SqlLogin;
}

/** A variable as the user set it (rendered if it is a template), or undefined. */
export function userVar(ctx: Pick<PlanContext, 'vars'>, name: string): unknown {
  const v = ctx.vars[name];
  if (v === undefined || v === null || v === '') return undefined;
  return renderValue(v, { vars: ctx.vars as Record<string, unknown>, env: process.env });
}

interface Postmaster extends ProcRow {
  exe: string;
  dataDir: string;
  user: string;
  group: string;
  port: number;
  socketDir: string;
  unit: string;
  /** the data directory's postmaster.pid, null when unreadable */
  pidFile: string | null;
}

/**
 * The discovery script (src/remote/scripts/discover-postgres.sh), with the data directory to try
 * first; a full discovery also asks each postmaster the settings (SETTINGS_SQL), as its OS user.
 */
function discoverCommand(dataDirHint: string | undefined, withSettings = false) {
  const script = standaloneScript('discover-postgres');
  if (withSettings) return sh`sh -c ${script} pgtls-discover ${dataDirHint ?? ''} ${SETTINGS_SQL}`;
  return dataDirHint ? sh`sh -c ${script} pgtls-discover ${dataDirHint}` : sh`sh -c ${script} pgtls-discover`;
}

export function parseDiscovery(out: string): { systemd: boolean; pgCtlcluster: boolean; postmasters: Postmaster[]; settings: Map<number, { rc: number; answer: string }> } {
  const postmasters: Postmaster[] = [];
  const settings = new Map<number, { rc: number; answer: string }>();
  let systemd = false;
  let pgCtlcluster = false;
  for (const line of out.split('\n')) {
    if (line === 'systemd=1') systemd = true;
    if (line === 'pg_ctlcluster=1') pgCtlcluster = true;
    const f = line.split('\t');
    if (f[0] === 'sql') settings.set(Number(f[1]), { rc: Number(f[2]), answer: f.slice(3).join('\t') });
    if (f[0] !== 'pm') continue;
    const hasFile = f[14] === '1';
    postmasters.push({
      ...procRowHead(f),
      exe: f[6] ?? '',
      dataDir: f[7] ?? '',
      user: f[8] ?? '',
      group: f[9] ?? '',
      pidFile: hasFile ? `${f[10] ?? ''}\n` : null,
      port: Number(f[11] || 0),
      socketDir: f[12] ?? '',
      unit: f[13] ?? '',
      argv: [(f[15] ?? '').trim()],
    });
  }
  return { systemd, pgCtlcluster, postmasters, settings };
}

/**
 * The postmasters among the rows: a candidate (not a zombie, not another namespace's, not a
 * child) whose postmaster.pid names it. When the pid file cannot be read (no privileges), the
 * candidate stays, so the caller can say what is missing instead of "no server".
 */
export function postmastersOf(rows: readonly Postmaster[]): Postmaster[] {
  const cands = rows.filter((p) => excludedReason(p, 'postgres') === undefined && (p.pidFile === null || isPostmaster(p)));
  // A row with neither data directory nor pid file next to a server its pid file confirms is a
  // process that ended (or was just forked) while the table was read: it says nothing.
  const known = cands.filter((p) => p.dataDir !== '' || p.pidFile !== null);
  return cands.some((p) => p.pidFile !== null) ? known : cands;
}

function choose(ctx: PlanContext, all: Postmaster[]): Postmaster {
  const pms = postmastersOf(all);
  const port = userVar(ctx, 'pg_port');
  const data = userVar(ctx, 'pg_data_directory');
  let cands = pms;
  if (port !== undefined) cands = cands.filter((p) => p.port === Number(port));
  if (data !== undefined) cands = cands.filter((p) => p.dataDir === String(data).replace(/\/+$/, ''));
  const list = pms.map((p) => `${p.dataDir} (port ${p.port || '?'})`).join(', ');
  if (cands.length === 1) return cands[0]!;
  if (pms.length === 0)
    throw new TaskError(`no running PostgreSQL server found on ${ctx.host}: pgtls converges a running server, start it first`);
  if (cands.length === 0) throw new TaskError(`no running PostgreSQL server matches pg_port/pg_data_directory on ${ctx.host}; found: ${list}`);
  throw new TaskError(`several PostgreSQL servers run on ${ctx.host} (${list}); set pg_port or pg_data_directory for this host`);
}

const SETTINGS_SQL = `select json_build_object(
  'version_num', current_setting('server_version_num'),
  'config_file', current_setting('config_file'),
  'hba_file', current_setting('hba_file'),
  'data_directory', current_setting('data_directory'),
  'port', current_setting('port'),
  'listen_addresses', current_setting('listen_addresses'),
  'in_recovery', pg_is_in_recovery(),
  ${HINT_SQL_FIELDS});
`;

/**
 * Runs read-only SQL through the host's SQL login (src/facts/pg-login.ts); returns stdout.
 * `independentOfFiles`: the SQL reads only the running server's state, not its config files (as
 * pg_file_settings and pg_hba_file_rules do), so the executor's pending writes need not be committed first.
 */
export async function psqlQuery(ctx: PlanContext, s: Pick<PgServer, 'binDir' | 'socketDir' | 'port' | 'login'>, sql: string, opts: { independentOfFiles?: boolean } = {}): Promise<string> {
  const inv = sqlReadInvocation(s, s.login, sql);
  try {
    const res = await ctx.query(inv.cmd, { user: inv.user, ...(inv.stdin === undefined ? {} : { stdin: inv.stdin }), independentOfFiles: opts.independentOfFiles ?? false });
    return res.stdout.toString('utf8');
  } catch (e) {
    if (e instanceof RemoteCommandError) throw new TaskError(`psql on ${ctx.host} (as ${describeLogin(s.login)}) failed: ${e.message}`);
    throw e;
  }
}

/**
 * The commands psqlQuery will send for SQL a task declared (ModuleDef.sql), as the host's server
 * takes them: probes for the executor to run with the lock. None when there is no server here, or
 * when SQL logs in with a password (its stdin holds the password: it goes when asked, on its own).
 */
export async function declaredSqlProbes(ctx: PlanContext, declare: (server: PgServer) => string[]): Promise<{ cmd: ShellCommand; user?: string }[]> {
  let s: PgServer;
  try {
    s = await pgServer(ctx);
  } catch {
    return []; // planning will say why, with the task's name
  }
  return declare(s).flatMap((sql) => {
    const inv = sqlReadInvocation(s, s.login, sql);
    return inv.stdin === undefined ? [{ cmd: inv.cmd, ...(inv.user === undefined ? {} : { user: inv.user }) }] : [];
  });
}

/** An exec action that runs SQL (possibly holding a secret) through the host's SQL login, SQL on stdin. */
export function psqlAction(s: PgServer, description: string, sql: string | Secret): ExecAction {
  const inv = sqlInvocation(s, s.login, sql);
  // SQL changes roles and sessions, not files nor the postmaster (ALTER SYSTEM, which writes a file, must not come here)
  return { kind: 'exec', description, cmd: inv.cmd, stdin: inv.stdin, ...(inv.user ? { user: inv.user } : {}), leavesAlone: ['files', 'server'] };
}

function detectService(
  d: { systemd: boolean; pgCtlcluster: boolean },
  pm: Postmaster,
  configFile: string,
  binDir: string,
  dataDir: string,
): PgService {
  if (d.systemd && pm.unit) return { kind: 'systemd', unit: pm.unit };
  const m = /^\/etc\/postgresql\/([^/]+)\/([^/]+)\/postgresql\.conf$/.exec(configFile);
  if (d.pgCtlcluster && m) return { kind: 'pg_ctlcluster', version: m[1]!, cluster: m[2]! };
  return { kind: 'pg_ctl', pgCtl: binDir ? `${binDir}/pg_ctl` : 'pg_ctl', dataDir };
}

/** What identifies one life of a postmaster: a restart (or a new port/socket) changes it. */
function lifeOf(pm: Postmaster): string {
  return `${pm.pid} ${pm.dataDir} ${pm.port} ${pm.socketDir}`;
}

/**
 * Everything about the host's server. Found once per run (one discovery script, whatever the
 * host's process count, then one SQL query); after a command (the executor clears ctx.memo when a
 * command or a verify ran) only the server's own postmaster.pid is read again, without walking /proc: if it
 * names the same postmaster on the same port and socket, nothing a change can do (an edit, a
 * reload) has changed these facts (config_file, hba_file, data_directory, port, listen_addresses
 * and the binary only change with a restart; pgtls never promotes a standby, so in_recovery holds).
 * A restart (new pid) or a server gone makes it a full discovery again.
 */
export function pgServer(ctx: PlanContext): Promise<PgServer> {
  return ctx.memo('pgtls:pg-server', async () => {
    const known = await ctx.memoStable('pgtls:pg-server-life', () => Promise.resolve<{ life?: string; server?: PgServer; dataDir?: string }>({}));
    if (known.server && known.dataDir) {
      const d = parseDiscovery((await ctx.query(discoverCommand(known.dataDir), { independentOfFiles: true })).stdout.toString('utf8'));
      const same = postmastersOf(d.postmasters).find((p) => lifeOf(p) === known.life);
      if (same) return known.server;
    }
    const hint = known.dataDir ?? inventoryDataDir(ctx);
    const { server, pm } = await discoverServer(ctx, hint);
    Object.assign(known, { life: lifeOf(pm), server, dataDir: pm.dataDir });
    return server;
  });
}

/** pg_data_directory as the inventory sets it: the postmaster the first discovery tries first. */
function inventoryDataDir(ctx: Pick<PlanContext, 'vars'>): string | undefined {
  const v = userVar(ctx, 'pg_data_directory');
  return v === undefined ? undefined : String(v);
}

/** The first discovery's command, known from the inventory alone (FactProvider.probe: sent in the connection's first round trip). */
function firstDiscovery(vars: Readonly<Record<string, unknown>>): ShellCommand {
  return discoverCommand(inventoryDataDir({ vars }), true);
}

async function discoverServer(ctx: PlanContext, dataDirHint: string | undefined): Promise<{ server: PgServer; pm: Postmaster }> {
  const d = parseDiscovery((await ctx.query(discoverCommand(dataDirHint, true), { independentOfFiles: true })).stdout.toString('utf8'));
  const pm = choose(ctx, d.postmasters);
  const osUser = String(userVar(ctx, 'pg_os_user') ?? (pm.user || 'postgres'));
  const binDir = pm.exe.replace(/\/[^/]*$/, '');
  if (!pm.dataDir)
    throw new TaskError(`cannot inspect the PostgreSQL server process on ${ctx.host} (pid ${pm.pid}): use become: true or log in as root or its OS user`);
  if (!pm.socketDir) throw new TaskError(`the PostgreSQL server on ${ctx.host} (${pm.dataDir}) has no Unix socket; pgtls needs one`);
  const local = { binDir, socketDir: pm.socketDir, port: pm.port, osUser };
  const pw = userVar(ctx, 'webadmin_password');
  // the OS user got in during discovery (the settings came with it), else the login and the settings
  // in one command when the OS user gets in (sqlLoginAndQuery), else through the login found
  const asked = d.settings.get(pm.pid);
  const { login, stdout } =
    asked?.rc === 0 && pm.user === osUser
      ? { login: await osUserLogsIn(ctx, local), stdout: asked.answer }
      : await sqlLoginAndQuery(ctx, local, pw === undefined ? undefined : pw instanceof Secret ? pw : new Secret(String(pw)), SETTINGS_SQL, (l) =>
          psqlQuery(ctx, { ...local, login: l }, SETTINGS_SQL, { independentOfFiles: true }),
        );
  const raw = stdout.trim();
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(raw) as Record<string, unknown>;
  } catch {
    throw new TaskError(`unexpected answer from PostgreSQL on ${ctx.host}: ${raw.slice(0, 200)}`);
  }
  const versionNum = Number(j.version_num);
  const configFile = String(userVar(ctx, 'pg_config_file') ?? j.config_file);
  const dataDirectory = String(j.data_directory);
  // (what the server has loaded now: a hint for the reload's questions, asked ahead of its state)
  if ('files' in j) await rememberState(ctx, hintFromJson(j, dataDirectory));
  const server: PgServer = {
    pid: pm.pid,
    binDir,
    version: Math.floor(versionNum / 10000),
    versionNum,
    configFile,
    hbaFile: String(userVar(ctx, 'pg_hba_file') ?? j.hba_file),
    dataDirectory,
    port: Number(j.port),
    socketDir: pm.socketDir,
    listenAddresses: String(j.listen_addresses),
    osUser,
    osGroup: pm.group || osUser,
    inRecovery: j.in_recovery === true,
    service: detectService(d, pm, configFile, binDir, dataDirectory),
    login,
  };
  return { server, pm };
}


/** The on-demand facts this file contributes to the registry (src/facts/index.ts). */
export const postgresFacts: Record<string, FactProvider> = {
  pg_version: { placeholder: 15, provide: async (ctx) => (await pgServer(ctx)).version, probe: firstDiscovery },
  pg_config_file: { placeholder: '/etc/postgresql/15/main/postgresql.conf', provide: async (ctx) => (await pgServer(ctx)).configFile, reads: true, probe: firstDiscovery },
  pg_hba_file: { placeholder: '/etc/postgresql/15/main/pg_hba.conf', provide: async (ctx) => (await pgServer(ctx)).hbaFile, reads: true, probe: firstDiscovery },
  pg_data_directory: { placeholder: '/var/lib/postgresql/15/main', provide: async (ctx) => (await pgServer(ctx)).dataDirectory, probe: firstDiscovery },
  pg_port: { placeholder: 5432, provide: async (ctx) => (await pgServer(ctx)).port, probe: firstDiscovery },
  pg_socket_dir: { placeholder: '/var/run/postgresql', provide: async (ctx) => (await pgServer(ctx)).socketDir, probe: firstDiscovery },
  pg_os_user: { placeholder: 'postgres', provide: async (ctx) => (await pgServer(ctx)).osUser, probe: firstDiscovery },
  pg_service: {
    placeholder: { kind: 'pg_ctlcluster', version: '15', cluster: 'main' },
    provide: async (ctx) => (await pgServer(ctx)).service,
    probe: firstDiscovery,
  },
};
