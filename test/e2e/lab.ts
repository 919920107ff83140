// Test harness for the lab of real hosts made by lab/lab.sh (network/mount/UTS/PID namespaces with
// their own sshd, PostgreSQL 15 and Pgpool-II). See lab/lab.sh for what a lab host is.
//
//   const lab = await labUp({ postgres: ['pg1', 'pg2'], standby: { pg2: 'pg1' }, pgpool: { pg3: ['pg1', 'pg2'] } });
//   await lab.exec('pg1', 'pg_lsclusters');          // bash -c inside pg1, as root
//   await lab.sql('pg1', 'select 1');                // psql as postgres over the local socket
//   await lab.down();
//
// Several labs can be up at once (each in its own lab.sh "slot" with its own subnet 10.231.K.0/24;
// the first lab gets slot 0 = 10.231.0.0/24): never hard-code addresses, use lab.ip('pg1') or the
// inventory. By default each test process gets its own DIR (<repo>/.lab/run-<pid>) and owns its lab:
// if the process dies without down(), the next labUp() anywhere reclaims it.
// Needs root: check labAvailable() first.
//
// uvu pitfall: an exception thrown in test.before() is swallowed by uvu 0.5 (the file then "passes"
// with 0 tests run and exit code 0). Bring the lab up inside a test(), not in test.before().

import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface LabOptions {
  /** Lab directory (default: <repo>/.lab/run-<pid>). Bringing a lab up on a DIR replaces that DIR's previous lab. */
  dir?: string;
  /** Number of hosts pg1..pgN (default 3). */
  hosts?: number;
  /** Hosts that run PostgreSQL 15 (cluster 15/main). */
  postgres?: string[];
  /** standby -> upstream, e.g. { pg2: 'pg1' }; a cascade: { pg2: 'pg1', pg3: 'pg2' }. Both must be in `postgres`. */
  standby?: Record<string, string>;
  /** Standbys that stream through a physical replication slot (named after the standby) on their upstream. */
  replicationSlots?: string[];
  /** pgpool host -> backends, e.g. { pg3: ['pg1', 'pg2'] }. */
  pgpool?: Record<string, string[]>;
  /** Log in as this non-root user (passwordless sudo) instead of root. */
  user?: string;
  /**
   * 'rhel': hosts laid out like RHEL (data directory /var/lib/pgsql/data with its config inside, pg_ctl,
   * `local all all md5`, Pgpool-II under /etc/pgpool-II with /etc/init.d/pgpool-II). Default 'debian'.
   */
  layout?: 'debian' | 'rhel';
  /** Timeout for `lab.sh up` (default 180 s). */
  timeoutMs?: number;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Written to the command's stdin. */
  input?: string;
  /** Default 120 s. */
  timeoutMs?: number;
}

export interface LabHost {
  name: string;
  ip: string;
}

export interface Lab {
  dir: string;
  /** lab.sh slot: addresses are 10.231.<slot>.(10+i). */
  slot: number;
  inventoryPath: string;
  knownHostsPath: string;
  keyPath: string;
  sshConfigPath: string;
  /** SSH login user (root unless `user` was given). */
  user: string;
  layout: 'debian' | 'rhel';
  hosts: LabHost[];
  /** Passwords the lab's roles were created with. */
  passwords: LabPasswords;
  ip(host: string): string;
  /** `bash -c cmd` inside `host`, as root (via lab.sh exec / nsenter). Never rejects on a non-zero exit. */
  exec(host: string, cmd: string, opts?: ExecOptions): Promise<ExecResult>;
  /** SQL (on stdin) through psql -XAtq as OS user postgres over the local socket of `host`.
   *  `user` switches with SET SESSION AUTHORIZATION. RHEL layout: as webadmin with its password (local md5). Rejects on any error; resolves to stdout without its last newline. */
  sql(host: string, sql: string, opts?: { user?: string; db?: string }): Promise<string>;
  /** sha256 of every regular file under `paths` in `host` ("symlink:<target>" for symlinks). Missing paths are skipped. */
  sha256Tree(host: string, paths: string[]): Promise<Record<string, string>>;
  /** `cmd` through the real OpenSSH client, as the lab's login user, with strict host key checking. */
  ssh(host: string, cmd: string, opts?: ExecOptions): Promise<ExecResult>;
  down(): Promise<void>;
}

export interface LabPasswords {
  webadmin: string;
  app: string;
  replicator: string;
  pgpool: string;
  legacy: string;
}

/** The passwords lab.sh uses (same environment variables and defaults). */
export function labPasswords(env: NodeJS.ProcessEnv = process.env): LabPasswords {
  return {
    webadmin: env['LAB_WEBADMIN_PASSWORD'] ?? `Web Admin's "pw" 1`,
    app: env['LAB_APP_PASSWORD'] ?? `app:pa ss'w0rd`,
    replicator: env['LAB_REPL_PASSWORD'] ?? 'repl-pw',
    pgpool: env['LAB_PGPOOL_PASSWORD'] ?? 'pgpool-pw',
    legacy: 'legacy-pw',
  };
}

function findRepoRoot(): string {
  let d = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(d, 'lab', 'lab.sh')) && existsSync(path.join(d, 'package.json'))) return d;
    const up = path.dirname(d);
    if (up === d) throw new Error('lab.ts: cannot find the repository root (lab/lab.sh)');
    d = up;
  }
}

export const REPO_ROOT = findRepoRoot();
export const LAB_SH = path.join(REPO_ROOT, 'lab', 'lab.sh');

function onPath(bin: string): boolean {
  const dirs = (process.env['PATH'] ?? '').split(':').concat(['/usr/sbin', '/sbin', '/usr/bin', '/bin']);
  return dirs.some((d) => {
    try {
      accessSync(path.join(d, bin), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Why a lab cannot be used here, or undefined if it can. */
export function labUnavailableReason(): string | undefined {
  if (process.platform !== 'linux') return 'the lab needs Linux namespaces';
  if (process.getuid?.() !== 0) return 'the lab needs root (network namespaces, mounts)';
  for (const bin of ['ip', 'nsenter', 'unshare', 'ssh', 'ssh-keygen', 'psql']) {
    if (!onPath(bin)) return `the lab needs ${bin} (iproute2, util-linux, openssh-client, postgresql-client)`;
  }
  if (!existsSync('/usr/sbin/sshd')) return 'the lab needs /usr/sbin/sshd (openssh-server)';
  return undefined;
}

/**
 * True when this machine can run a lab (root, iproute2, util-linux, OpenSSH server and client).
 * Under CI=true a missing lab is a failure, never a skip: this throws, so the calling test (or, at
 * the top level, the whole test file) fails instead of returning early and counting as passed.
 */
export function labAvailable(): boolean {
  const reason = labUnavailableReason();
  if (reason !== undefined && process.env['CI'] === 'true') {
    throw new Error(`CI=true and the lab is unavailable: ${reason} (run .ci/run as root)`);
  }
  return reason === undefined;
}

/**
 * For a test that needs the lab its file's first test brought up: false (the caller returns: skipped)
 * when there is none. Under CI=true there must always be one, so its absence fails every test that
 * needs it, not only the one that tried to bring it up.
 */
export function haveLab<T>(lab: T | undefined | null): lab is NonNullable<T> {
  if (lab) return true;
  if (process.env['CI'] === 'true') throw new Error('no lab: the test that brings it up failed (under CI=true a missing lab fails every test that needs it)');
  return false;
}

/** Run a program; never rejects on a non-zero exit (only on spawn errors and timeouts). */
export function run(
  cmd: string,
  args: string[],
  opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<ExecResult> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let settled = false;
    let exitCode: number | undefined;
    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const result = (): ExecResult => ({
      code: exitCode ?? 1,
      stdout: Buffer.concat(out).toString('utf8'),
      stderr: Buffer.concat(err).toString('utf8'),
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(() =>
        reject(new Error(`timed out after ${timeoutMs} ms: ${cmd} ${args.join(' ')}\n${result().stderr}`)),
      );
    }, timeoutMs);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => finish(() => reject(e)));
    child.on('exit', (code, signal) => {
      exitCode = code ?? 128 + (signal ? (signalNumbers[signal] ?? 1) : 1);
      // A daemon started by the command may keep our pipes open: give the output a moment, then stop waiting.
      setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        finish(() => resolve(result()));
      }, 300).unref();
    });
    child.on('close', () => finish(() => resolve(result())));
    child.stdin.on('error', () => {}); // the command may not read its stdin
    child.stdin.end(opts.input ?? '');
  });
}

const signalNumbers: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15, SIGPIPE: 13 };

/** Single-quote for bash. */
export function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function sqlIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

function hostIp(slot: number, name: string): string {
  const m = /^pg(\d+)$/.exec(name);
  if (!m) throw new Error(`not a lab host name: ${name}`);
  return `10.231.${slot}.${10 + Number(m[1])}`;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Remove <repo>/.lab/run-<pid> dirs of processes that are gone (their labs are reclaimed by lab.sh). */
function removeStaleRunDirs(): void {
  const base = path.join(REPO_ROOT, '.lab');
  let names: string[] = [];
  try {
    names = readdirSync(base);
  } catch {
    return;
  }
  for (const n of names) {
    const m = /^run-(\d+)$/.exec(n);
    if (m && Number(m[1]) !== process.pid && !pidAlive(Number(m[1]))) {
      rmSync(path.join(base, n), { recursive: true, force: true });
    }
  }
}

/** Bring a lab up (tearing down whatever lab was up before). */
export async function labUp(opts: LabOptions = {}): Promise<Lab> {
  const dir = path.resolve(opts.dir ?? path.join(REPO_ROOT, '.lab', `run-${process.pid}`));
  const n = opts.hosts ?? 3;
  const args = [LAB_SH, 'up', '--dir', dir, '--hosts', String(n), '--owner-pid', String(process.pid)];
  if (opts.postgres?.length) args.push('--postgres', opts.postgres.join(','));
  for (const [standby, primary] of Object.entries(opts.standby ?? {})) args.push('--standby', `${standby}:${primary}`);
  for (const h of opts.replicationSlots ?? []) args.push('--repl-slot', h);
  for (const [host, backends] of Object.entries(opts.pgpool ?? {})) args.push('--pgpool', `${host}:${backends.join(',')}`);
  if (opts.user) args.push('--user', opts.user);
  if (opts.layout) args.push('--layout', opts.layout);
  let r: ExecResult;
  try {
    r = await run('bash', args, { timeoutMs: opts.timeoutMs ?? 180_000 });
  } catch (e) {
    await labDown(dir).catch(() => {});
    throw e;
  }
  if (r.code !== 0) {
    // Do not leave a half-built lab running (its logs stay in DIR/pgI/*.log and DIR/pgI/log/);
    // LAB_KEEP_ON_FAILURE=1 keeps it up for debugging with lab/lab.sh exec/status.
    if (process.env['LAB_KEEP_ON_FAILURE'] !== '1') await labDown(dir).catch(() => {});
    throw new Error(`lab.sh up failed (exit ${r.code}):\n${r.stderr.slice(-4000)}`);
  }
  removeStaleRunDirs();
  const slot = Number(readFileSync(path.join(dir, 'lab.slot'), 'utf8').trim());
  return makeLab(dir, slot, n, opts.user ?? 'root', opts.layout ?? 'debian');
}

/** Tear down the lab of `dir` (all labs on this machine with `{ all: true }`). */
export async function labDown(dir: string | { all: true }): Promise<void> {
  const args = [LAB_SH, 'down'];
  if (typeof dir === 'string') args.push('--dir', dir);
  else args.push('--all');
  const r = await run('bash', args, { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`lab.sh down failed (exit ${r.code}):\n${r.stderr}`);
}

function makeLab(dir: string, slot: number, n: number, user: string, layout: 'debian' | 'rhel'): Lab {
  const ipOf = (name: string): string => hostIp(slot, name);
  const hosts: LabHost[] = [];
  for (let i = 1; i <= n; i++) hosts.push({ name: `pg${i}`, ip: ipOf(`pg${i}`) });
  const keyPath = path.join(dir, 'id_ed25519');
  const knownHostsPath = path.join(dir, 'known_hosts');

  const exec = (host: string, cmd: string, opts: ExecOptions = {}): Promise<ExecResult> =>
    run('bash', [LAB_SH, 'exec', '--dir', dir, host, '--', 'bash', '-c', cmd], opts);

  const lab: Lab = {
    dir,
    slot,
    inventoryPath: path.join(dir, 'inventory.yaml'),
    knownHostsPath,
    keyPath,
    sshConfigPath: path.join(dir, 'ssh_config'),
    user,
    layout,
    hosts,
    passwords: labPasswords(),
    ip: ipOf,
    exec,

    async sql(host, sql, opts = {}) {
      const db = opts.db ?? 'postgres';
      const input = (opts.user ? `SET SESSION AUTHORIZATION ${sqlIdent(opts.user)};\n` : '') + sql;
      // RHEL layout: local rules want a password, so as webadmin, its password as the first line of stdin
      const r =
        layout === 'rhel'
          ? await exec(
              host,
              `IFS= read -r PGPASSWORD; export PGPASSWORD; PGPASSFILE=/dev/null exec psql -X -Atq -v ON_ERROR_STOP=1 -h /var/run/postgresql -U webadmin -d ${shq(db)}`,
              { input: `${lab.passwords.webadmin}\n${input}` },
            )
          : await exec(host, `runuser -u postgres -- psql -X -Atq -v ON_ERROR_STOP=1 -d ${shq(db)}`, { input });
      if (r.code !== 0) throw new Error(`psql on ${host} failed (exit ${r.code}): ${r.stderr.trim()}`);
      return r.stdout.replace(/\n$/, '');
    },

    async sha256Tree(host, paths) {
      // Regular files: "HASH  PATH\0" from sha256sum --zero (no name escaping); then a marker;
      // then symlinks as "PATH\0TARGET\0".
      const script = [
        'for p in "$@"; do [ -e "$p" ] || [ -L "$p" ] || continue; find "$p" -type f -print0; done | sort -zu | xargs -0 -r sha256sum --zero',
        "printf -- '--symlinks--\\0'",
        'for p in "$@"; do [ -e "$p" ] || [ -L "$p" ] || continue; find "$p" -type l -printf "%p\\0%l\\0"; done',
      ].join('\n');
      const r = await exec(host, `set -o pipefail; f() {\n${script}\n}; f ${paths.map(shq).join(' ')}`);
      if (r.code !== 0) throw new Error(`sha256Tree on ${host} failed (exit ${r.code}): ${r.stderr.trim()}`);
      const recs = r.stdout.split('\0');
      const result: Record<string, string> = {};
      let i = 0;
      for (; i < recs.length; i++) {
        const rec = recs[i] ?? '';
        if (rec === '--symlinks--') break;
        if (rec === '') continue;
        result[rec.slice(66)] = rec.slice(0, 64);
      }
      for (i++; i + 1 < recs.length; i += 2) {
        result[recs[i] ?? ''] = `symlink:${recs[i + 1] ?? ''}`;
      }
      return result;
    },

    ssh(host, cmd, opts = {}) {
      const ip = /^\d+\.\d+\.\d+\.\d+$/.test(host) ? host : ipOf(host);
      return run(
        'ssh',
        [
          '-o', 'BatchMode=yes',
          '-o', `UserKnownHostsFile=${knownHostsPath}`,
          '-o', 'GlobalKnownHostsFile=/dev/null',
          '-o', 'StrictHostKeyChecking=yes',
          '-o', 'IdentitiesOnly=yes',
          '-o', 'ConnectTimeout=10',
          '-i', keyPath,
          `${user}@${ip}`,
          cmd,
        ],
        opts,
      );
    },

    down: () => labDown(dir),
  };
  return lab;
}
