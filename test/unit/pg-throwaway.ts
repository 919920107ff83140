// Throwaway PostgreSQL cluster for tests that need the real server as an oracle (SCRAM verifiers, md5
// hashes, logins over TCP). One cluster per call to start(): initdb -N into a fresh temp dir, fsync off,
// unix socket inside the temp dir (no clash with a system cluster), TCP only on 127.0.0.1 and a free port.
//
// The server refuses to run as root, so when the tests run as root initdb/pg_ctl run as the `postgres` OS
// user (spawn uid/gid, no `su`, so nothing goes through a shell). psql is only a client and runs as us.
// SQL always goes through psql's stdin and passwords through PGPASSWORD: nothing secret lands on argv,
// where `ps` would show it.
import { spawn, spawnSync } from 'node:child_process';
import { chown, mkdtemp, rm, writeFile, appendFile, readFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const PG_BINDIR = process.env.PGTLS_PG_BINDIR ?? '/usr/lib/postgresql/15/bin';

export interface PgCluster {
  /** temp dir holding everything (data dir, socket, log); removed by stop() */
  dir: string;
  dataDir: string;
  socketDir: string;
  port: number;
  logFile: string;
  /** OS user the server runs as (uid/gid), null when we already are that user */
  runAs: { uid: number; gid: number } | null;
}

export interface StartOptions {
  /** extra postgresql.conf lines */
  conf?: string[];
  /**
   * pg_hba.conf content. Default: local trust for everyone (the tests drive the cluster through the
   * socket) and scram-sha-256 for TCP on 127.0.0.1.
   */
  hba?: string;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

const live = new Set<PgCluster>();

// Last-resort cleanup if the test process dies before stop() ran (uncaught error, process.exit): an orphaned
// postmaster would keep the port and the temp dir forever. 'exit' handlers must be synchronous.
process.once('exit', () => {
  for (const c of live) {
    spawnSync(path.join(PG_BINDIR, 'pg_ctl'), ['-D', c.dataDir, '-m', 'immediate', '-w', 'stop'], {
      stdio: 'ignore',
      ...(c.runAs ?? {}),
    });
    spawnSync('rm', ['-rf', '--', c.dir], { stdio: 'ignore' });
  }
});

function run(
  cmd: string,
  args: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string; runAs?: { uid: number; gid: number } | null; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(opts.runAs ?? {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.stdin.on('error', () => {}); // the child may exit before reading everything; the exit code tells
    child.stdin.end(opts.input ?? '');
  });
}

function lookupPostgresUser(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null; // not root: run the server as ourselves
  const id = (flag: string) => spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' });
  const u = id('-u');
  const g = id('-g');
  if (u.status !== 0 || g.status !== 0) throw new Error('running as root but there is no "postgres" OS user to run the server as');
  return { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Environment for client tools: no inherited PG* settings, no ~/.pgpass, no ~/.psqlrc surprises. */
function clientEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PG')) env[k] = v;
  env.PGCLIENTENCODING = 'UTF8';
  env.PGPASSFILE = '/nonexistent/pgtls-no-pgpass';
  env.PGCONNECT_TIMEOUT = '10';
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

const DEFAULT_HBA = 'local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n';

/** initdb + start a cluster; always pair with stop() (e.g. in uvu's test.after, which runs even on failure). */
export async function start(opts: StartOptions = {}): Promise<PgCluster> {
  const runAs = lookupPostgresUser();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pgtls-pg-'));
  const cluster: PgCluster = {
    dir,
    dataDir: path.join(dir, 'data'),
    socketDir: dir,
    port: 0,
    logFile: path.join(dir, 'postgres.log'),
    runAs,
  };
  live.add(cluster);
  try {
    if (runAs) await chown(dir, runAs.uid, runAs.gid);
    const serverEnv = clientEnv({ LC_ALL: 'C.UTF-8' });
    const init = await run(
      path.join(PG_BINDIR, 'initdb'),
      ['-D', cluster.dataDir, '-U', 'postgres', '-N', '-E', 'UTF8', '--locale=C.UTF-8', '--auth-local=trust', '--auth-host=scram-sha-256'],
      { cwd: dir, runAs, env: serverEnv },
    );
    if (init.code !== 0) throw new Error(`initdb failed (${init.code}): ${init.stderr || init.stdout}`);
    await writeFile(path.join(cluster.dataDir, 'pg_hba.conf'), opts.hba ?? DEFAULT_HBA);

    // The port is only reserved while we probe it, so another process can grab it before the postmaster
    // binds; retry with a fresh port in that (rare) case.
    for (let attempt = 1; ; attempt++) {
      cluster.port = await freePort();
      await appendFile(
        path.join(cluster.dataDir, 'postgresql.conf'),
        [
          '',
          '# pgtls throwaway test cluster',
          "listen_addresses = '127.0.0.1'",
          `port = ${cluster.port}`,
          `unix_socket_directories = '${dir}'`,
          'fsync = off',
          'synchronous_commit = off',
          'full_page_writes = off',
          'max_connections = 20',
          'shared_buffers = 16MB',
          ...(opts.conf ?? []),
          '',
        ].join('\n'),
      );
      const st = await run(
        path.join(PG_BINDIR, 'pg_ctl'),
        ['-D', cluster.dataDir, '-l', cluster.logFile, '-w', '-t', '30', 'start'],
        { cwd: dir, runAs, env: serverEnv },
      );
      if (st.code === 0) break;
      const log = await readFile(cluster.logFile, 'utf8').catch(() => '');
      if (attempt < 3 && /could not (bind|create listen socket)|Address already in use/i.test(log)) continue;
      throw new Error(`pg_ctl start failed (${st.code}): ${st.stderr || st.stdout}\n${log}`);
    }
    return cluster;
  } catch (err) {
    await stop(cluster);
    throw err;
  }
}

/** Stops the server (immediate: nothing in it is worth a checkpoint) and deletes the temp dir. Idempotent. */
export async function stop(cluster: PgCluster | undefined | null): Promise<void> {
  if (!cluster || !live.has(cluster)) return;
  try {
    await run(path.join(PG_BINDIR, 'pg_ctl'), ['-D', cluster.dataDir, '-m', 'immediate', '-w', 'stop'], {
      cwd: cluster.dir,
      runAs: cluster.runAs,
      env: clientEnv(),
    });
  } finally {
    live.delete(cluster);
    await rm(cluster.dir, { recursive: true, force: true });
  }
}

export interface PsqlOptions {
  user?: string;
  db?: string;
  /** 'socket' (default; trust auth) or 'tcp' (127.0.0.1, goes through the scram-sha-256 hba line) */
  via?: 'socket' | 'tcp';
  /** sent as PGPASSWORD, never on argv */
  password?: string;
  /** extra environment for psql (e.g. PGSSLMODE) */
  env?: Record<string, string>;
  /** throw on a non-zero exit (default true) */
  check?: boolean;
}

/**
 * Runs SQL through psql's stdin (-X: no psqlrc; ON_ERROR_STOP: fail on the first error; -At: unaligned,
 * tuples only, so stdout is just the values). Resolves with stdout/stderr/exit code.
 */
export async function psql(cluster: PgCluster, sql: string, opts: PsqlOptions = {}): Promise<RunResult> {
  const host = opts.via === 'tcp' ? '127.0.0.1' : cluster.socketDir;
  const res = await run(
    path.join(PG_BINDIR, 'psql'),
    ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', host, '-p', String(cluster.port), '-U', opts.user ?? 'postgres', '-d', opts.db ?? 'postgres', '-f', '-'],
    { input: sql, env: clientEnv({ PGSSLMODE: 'disable', PGPASSWORD: opts.password, ...opts.env }) },
  );
  if ((opts.check ?? true) && res.code !== 0) {
    throw new Error(`psql failed (${res.code}): ${res.stderr.trim()}`);
  }
  return res;
}

/** SQL string literal (standard_conforming_strings = on, the default since 9.1: only ' needs doubling). */
export function sqlLiteral(s: string): string {
  if (s.includes('\0')) throw new TypeError('SQL literals cannot contain NUL');
  return `'${s.replaceAll("'", "''")}'`;
}

/** SQL identifier, always quoted. */
export function sqlIdent(s: string): string {
  if (s.includes('\0')) throw new TypeError('SQL identifiers cannot contain NUL');
  return `"${s.replaceAll('"', '""')}"`;
}
