// Shared machinery of the fault suite (test/e2e/faults-*.fault.ts): one lab per file (pg1 primary,
// pg2 standby, pg3 Pgpool-II), the real CLI run as a child we can signal, the invariants checked
// after every fault, and the counts for the closing note.
//
// The invariants, after every injected fault or interrupt:
//   - no config file missing, empty, half-written (every line the file had before pgtls and still
//     has after a clean install must be there, in order, and the file ends with a newline) or
//     with a temp file (.pgtls-tmp.*) next to it; every certificate and key parses; a config that
//     turns TLS on names files that exist and match (it would survive a restart);
//   - every server still serving: a psql login over TCP on each PostgreSQL server and through Pgpool-II;
//   - a re-run converges (exit 0) and the next run reports changed=0, with no leftover of any run
//     (temp files, rollback copies) on any host.
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { appendFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import * as assert from 'uvu/assert';
import { ROOT, type JsonReport, totalChanged } from './cli.js';
import { labAvailable, labUnavailableReason, labUp, run, type Lab, type LabOptions } from './lab.js';

export const INSTALL = join(ROOT, 'playbooks', 'install.yaml');
export const REISSUE = join(ROOT, 'playbooks', 'reissue.yaml');
export const UNINSTALL = join(ROOT, 'playbooks', 'uninstall.yaml');
const KEYS = '/var/lib/jelastic/keys/SSL-TLS';
const STATE = '/var/lib/pgtls/state';
export const PG_CONF_DIR = '/etc/postgresql/15/main';
export const PGPOOL_CONF_DIR = '/etc/pgpool2';

// ---------------------------------------------------------------------------------------------
// counts for the closing note (all fault files run in one uvu process: totals accumulate)
// ---------------------------------------------------------------------------------------------
export interface Counts {
  faultsInjected: number;
  faultsSurvived: number;
  interruptPoints: number;
  interruptsSurvived: number;
  filesChecked: number;
  reRuns: number;
  reRunsConverged: number;
}
const zero = (): Counts => ({ faultsInjected: 0, faultsSurvived: 0, interruptPoints: 0, interruptsSurvived: 0, filesChecked: 0, reRuns: 0, reRunsConverged: 0 });
export const totals: Counts = zero();
export function summaryLine(file: string, c: Counts): string {
  return (
    `fault suite ${file}: faults injected=${c.faultsInjected} survived=${c.faultsSurvived}; ` +
    `interrupt points tried=${c.interruptPoints} survived=${c.interruptsSurvived}; files checked=${c.filesChecked}; ` +
    `re-runs converged=${c.reRunsConverged} of ${c.reRuns}`
  );
}
/** Adds to a file's counts and to the totals of the whole suite. */
export function count(fl: FaultLab, key: keyof Counts, n = 1): void {
  fl.counts[key] += n;
  totals[key] += n;
}

/** What is wrong after a fault, one line each (empty: all is well). */
export type Problems = string[];
/** Fails the test with every problem found (not only the first). */
export function expectNone(problems: Problems, what: string): void {
  assert.equal(problems, [], `${what}:\n${problems.join('\n')}`);
}

// ---------------------------------------------------------------------------------------------
// seeded randomness (print the seed; PGTLS_FAULT_SEED=N replays a run)
// ---------------------------------------------------------------------------------------------
export function seededRandom(label: string): { seed: number; next: () => number; int: (lo: number, hi: number) => number; pick: <T>(xs: readonly T[]) => T } {
  const seed = Number(process.env['PGTLS_FAULT_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
  console.log(`  ${label}: seed ${seed} (replay with PGTLS_FAULT_SEED=${seed})`);
  let a = seed >>> 0;
  const next = (): number => {
    // mulberry32
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number): number => lo + Math.floor(next() * (hi - lo + 1));
  return { seed, next, int, pick: (xs) => xs[Math.floor(next() * xs.length)]! };
}

// ---------------------------------------------------------------------------------------------
// the lab
// ---------------------------------------------------------------------------------------------
export interface FaultLab {
  lab: Lab;
  work: string;
  inventory: string;
  counts: Counts;
  /** host → the files as they were before pgtls touched anything (path → content). */
  originals: Record<string, Map<string, Buffer>>;
  /** host → config file → the lines every state of that file must keep, in order. */
  stableLines: Record<string, Map<string, string[]>>;
  /** Run a JSON-reporting pgtls and wait for it. */
  pgtls(playbook: string, args?: string[], env?: Record<string, string>): Promise<PgtlsRun>;
  /** Spawn pgtls without waiting (to signal it, or to run two at once). */
  spawnPgtls(playbook: string, args?: string[], env?: Record<string, string>): PgtlsChild;
}

export const PG_HOSTS = ['pg1', 'pg2'];
export const POOL_HOST = 'pg3';
export const ALL_HOSTS = [...PG_HOSTS, POOL_HOST];

/** Config files whose lines are checked, per kind of host. */
const pgConfigFiles = [`${PG_CONF_DIR}/postgresql.conf`, `${PG_CONF_DIR}/pg_hba.conf`];
const poolConfigFiles = [`${PGPOOL_CONF_DIR}/pgpool.conf`, `${PGPOOL_CONF_DIR}/pool_hba.conf`];
/** Directories whose every file is checked (and must hold no temp file), per kind of host. */
const pgDirs = [PG_CONF_DIR, `${KEYS}/server`, `${KEYS}/client`, STATE];
const poolDirs = [PGPOOL_CONF_DIR, `${KEYS}/server`, `${KEYS}/client`, STATE];
export const dirsOf = (host: string): string[] => (host === POOL_HOST ? poolDirs : pgDirs);
const configFilesOf = (host: string): string[] => (host === POOL_HOST ? poolConfigFiles : pgConfigFiles);

/** Under CI a missing lab is a failure, never a silent pass. */
export function requireLab(): boolean {
  if (labAvailable()) return true;
  if (process.env['CI'] === 'true') assert.unreachable(`the fault suite needs the lab: ${labUnavailableReason()}`);
  console.log(`skipping the fault suite: ${labUnavailableReason()}`);
  return false;
}

export async function faultLab(name: string, opts: LabOptions = {}): Promise<FaultLab> {
  // Not under /tmp: lab hosts get a private /tmp.
  mkdirSync('/var/tmp', { recursive: true });
  const work = mkdtempSync(`/var/tmp/pgtls-e2e-${name}-`);
  const lab = await labUp({ hosts: 3, postgres: PG_HOSTS, standby: { pg2: 'pg1' }, pgpool: { pg3: PG_HOSTS }, ...opts, dir: join(work, 'lab') });
  let n = 0;
  const fl: FaultLab = {
    lab,
    work,
    inventory: lab.inventoryPath,
    counts: zero(),
    originals: {},
    stableLines: {},
    pgtls: (playbook, args = [], env = {}) => fl.spawnPgtls(playbook, args, env).done,
    spawnPgtls: (playbook, args = [], env = {}) => spawnPgtls(playbook, fl.inventory, args, join(work, `run-${++n}`), env),
  };
  for (const h of ALL_HOSTS) fl.originals[h] = readTree(lab, h);
  return fl;
}

/** After the first clean install: the lines of each config file that are the same before and after. */
export function learnStableLines(fl: FaultLab): void {
  for (const h of ALL_HOSTS) {
    const installed = readTree(fl.lab, h);
    const m = new Map<string, string[]>();
    for (const f of configFilesOf(h)) {
      const before = fl.originals[h]!.get(f);
      const after = installed.get(f);
      assert.ok(before && after, `${h}:${f} exists before and after the install`);
      const kept = new Set(after.toString('utf8').split('\n'));
      m.set(f, before.toString('utf8').split('\n').filter((l) => l.trim() !== '' && kept.has(l)));
    }
    fl.stableLines[h] = m;
  }
}

/** Path on the controller of a file inside a lab host (its root through /proc, see lab.sh). */
export const hostPath = (lab: Lab, host: string, p: string): string => join(lab.dir, host, 'fs', p);

/** Every regular file under the host's checked directories (path inside the host → content). */
export function readTree(lab: Lab, host: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (dir: string): void => {
    const abs = hostPath(lab, host, dir);
    if (!existsSync(abs)) return;
    for (const name of readdirSync(abs).sort()) {
      const p = `${dir}/${name}`;
      const st = lstatSync(hostPath(lab, host, p));
      if (st.isDirectory()) walk(p);
      else if (st.isFile()) out.set(p, readFileSync(hostPath(lab, host, p)));
    }
  };
  for (const d of dirsOf(host)) walk(d);
  return out;
}

// ---------------------------------------------------------------------------------------------
// the CLI as a child process
// ---------------------------------------------------------------------------------------------
export interface PgtlsRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  report?: JsonReport;
  commandLog: string;
  ms: number;
}
export interface PgtlsChild {
  child: ChildProcess;
  done: Promise<PgtlsRun>;
  exited: () => boolean;
  /** Path of the PGTLS_COMMAND_LOG of this run (every remote command line, as it is sent). */
  commandLog: string;
  /**
   * Resolves once the process catches SIGINT and SIGTERM (its first line of JavaScript ran:
   * bin/pgtls.js), by the kernel's own account (/proc/PID/status SigCgt), or when it exited. A signal
   * before that ends Node itself, before pgtls exists: not a point of the run.
   */
  catching(): Promise<void>;
}

function spawnPgtls(playbook: string, inventory: string, args: string[], base: string, env: Record<string, string>): PgtlsChild {
  const json = `${base}.json`;
  const commandLog = `${base}.commands`;
  writeFileSync(commandLog, '', { mode: 0o600 }); // pgtls appends to it (private, as it wants its logs)
  const t0 = Date.now();
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'pgtls.js'), 'run', playbook, '-i', inventory, '--json', json, ...args], {
    cwd: ROOT,
    env: { ...process.env, CI: 'true', NO_COLOR: '1', PGTLS_COMMAND_LOG: commandLog, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let exited = false;
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<PgtlsRun>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      exited = true;
      let report: JsonReport | undefined;
      try {
        report = JSON.parse(readFileSync(json, 'utf8')) as JsonReport;
      } catch {
        report = undefined;
      }
      resolve({ code, signal, stdout, stderr, report, commandLog: readFileSync(commandLog, 'utf8'), ms: Date.now() - t0 });
    });
  });
  const catching = async (): Promise<void> => {
    const want = (1n << 1n) | (1n << 14n); // SIGINT (2), SIGTERM (15): bit n-1
    for (let i = 0; i < 1000 && !exited; i++) {
      const m = /^SigCgt:\s*([0-9a-f]+)$/m.exec((() => { try { return readFileSync(`/proc/${child.pid}/status`, 'utf8'); } catch { return ''; } })());
      if (m && (BigInt(`0x${m[1]}`) & want) === want) return;
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  return { child, done, exited: () => exited, commandLog, catching };
}

export const show = (r: PgtlsRun): string =>
  `exit ${r.code}${r.signal ? ` (${r.signal})` : ''} after ${r.ms} ms\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-2000)}`;

/** All the messages a run printed or reported for a host (errors, task errors, warnings). */
export function hostMessages(r: PgtlsRun, host: string): string {
  const h = r.report?.hosts[host];
  const fromReport = h ? [h.message ?? '', ...h.tasks.map((t) => t.error ?? ''), ...h.warnings].join('\n') : '';
  const fromOutput = r.stdout.split('\n').filter((l) => l.startsWith(`${host} `) || l.startsWith(`${host}:`)).join('\n');
  return `${fromReport}\n${fromOutput}`;
}

/** Resolves when a line for which `pred` holds appears in the run's command log (polled every 10 ms). */
export async function waitForCommand(p: PgtlsChild, pred: (host: string, cmd: string) => boolean, timeoutMs = 60_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !p.exited()) {
    const lines = readFileSync(p.commandLog, 'utf8').split('\n');
    for (const l of lines) {
      const tab = l.indexOf('\t');
      if (tab > 0 && pred(l.slice(0, tab), l.slice(tab + 1))) return true;
    }
    await sleep(10);
  }
  return false;
}

/** The n-th (1-based) command to `host` whose line matches `re`, as a predicate for waitForCommand. */
export function nthCommand(host: string, re: RegExp, n: number): (h: string, cmd: string) => boolean {
  let seen = 0;
  return (h, cmd) => h === host && re.test(cmd) && ++seen >= n;
}
/** Counts the commands to `host` matching `re` in a finished run's command log. */
export const countCommands = (r: PgtlsRun, host: string, re: RegExp): number =>
  r.commandLog.split('\n').filter((l) => l.startsWith(`${host}\t`) && re.test(l)).length;
/** An atomic file write of the executor (its remote script is named pgtls-write). */
// the commit of a task's (or several tasks') held file changes (commit.sh)
export const WRITE_RE = /pgtls-commit/;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// invariants
// ---------------------------------------------------------------------------------------------
// Temp files of a run: the atomic write's (.pgtls-tmp.*, .NAME.pgtls-new, *.tmp) and, in pgtls_state_dir,
// the received content (.in.RUNID.XXXXXX), a stale lock being removed, and a record not yet renamed
// to its final name (HASH.orig.XXXXXX: anything but the record suffixes of src/remote/state.ts).
const TEMP_RE = /\.pgtls-tmp\.|\.pgtls-new$|\.tmp$/;
const STATE_TEMP_RE = /^\.in\.|^\.lock\.stale\./;
const RECORD_RE = /^[0-9a-f]{40}(\.path|\.orig|\.absent|\.meta|\.orig\.mac|\.installed|\.installed\.sha256|\.installed\.absent|\.installed\.mac)$/;
function isTemp(p: string, name: string): boolean {
  if (TEMP_RE.test(name)) return true;
  if (p !== `${STATE}/${name}`) return false;
  return STATE_TEMP_RE.test(name) || (/^[0-9a-f]{40}\./.test(name) && !RECORD_RE.test(name));
}
// Copies kept next to a file for a rollback during one run (.NAME.pgtls-rb.RUNID[.absent]; the older .NAME.pgtls-rollback).
const ROLLBACK_RE = /pgtls-rollback|pgtls-rb\./;
// What a run holds on a host while it lasts (its lock, its journal of rollback copies): gone once a run completed.
const RUN_HELD_RE = new RegExp(`^${STATE}/(lock/|runs/)`);

/** True when `sub` appears in `lines` in order (not necessarily adjacent). */
function isSubsequence(sub: string[], lines: string[]): string | null {
  let i = 0;
  for (const l of lines) if (i < sub.length && l === sub[i]) i++;
  return i === sub.length ? null : sub[i]!;
}

/**
 * No file half-written, missing, empty or with a temp file next to it; certificates and keys parse;
 * TLS settings name files that exist and match. `afterRerun`: no rollback copy of any run either.
 */
export function checkFiles(fl: FaultLab, opts: { afterRerun?: boolean; abrupt?: boolean } = {}): Problems {
  const problems: Problems = [];
  for (const h of ALL_HOSTS) {
    const tree = readTree(fl.lab, h);
    for (const [p, content] of tree) {
      count(fl, 'filesChecked');
      const name = p.slice(p.lastIndexOf('/') + 1);
      // A controller killed outright (SIGKILL, a second Ctrl-C) cannot remove the new keys its host was
      // generating for it (they wait, 0600, for their certificate): the next run removes them (converge
      // checks that nothing of any run is left). Anything else, and any temp file after a graceful stop, is a bug.
      const waitingKey = opts.abrupt && p.startsWith(`${KEYS}/`) && name.startsWith('.pgtls-tmp.');
      // (A commit's half-received content, .in.RUNID.* in root's state directory, is no exception: once
      // the connection is gone its commit.sh ends (its stdin ends early, and the agent sends it TERM)
      // and removes it; checkAfterFault looks only once every remote shell of the killed run has ended.)
      if (isTemp(p, name) && !waitingKey) problems.push(`${h}:${p}: a temp file was left behind`);
      if (opts.afterRerun && ROLLBACK_RE.test(name)) problems.push(`${h}:${p}: a rollback copy survived a completed run`);
      if (opts.afterRerun && RUN_HELD_RE.test(p)) problems.push(`${h}:${p}: a lock or journal survived a completed run`);
      if (/\.(crt|pem)$/.test(name) && !isTemp(p, name) && !ROLLBACK_RE.test(name)) {
        try {
          new X509Certificate(content);
        } catch (e) {
          problems.push(`${h}:${p}: not a whole certificate (${content.length} bytes): ${(e as Error).message}`);
        }
      }
      if (/\.key$/.test(name) && !isTemp(p, name) && !ROLLBACK_RE.test(name)) {
        try {
          createPrivateKey(content);
        } catch (e) {
          problems.push(`${h}:${p}: not a whole private key (${content.length} bytes): ${(e as Error).message}`);
        }
      }
    }
    // every file that existed before pgtls still exists and is not empty
    for (const [p, orig] of fl.originals[h]!) {
      if (ROLLBACK_RE.test(p) || TEMP_RE.test(p)) continue; // (none before pgtls: a lab host starts clean)
      const now = tree.get(p);
      if (!now) problems.push(`${h}:${p}: missing`);
      else if (orig.length > 0 && now.length === 0) problems.push(`${h}:${p}: empty (was ${orig.length} bytes)`);
    }
    for (const [f, stable] of fl.stableLines[h] ?? []) {
      const now = tree.get(f);
      if (!now) continue; // reported above
      const text = now.toString('utf8');
      if (!text.endsWith('\n')) problems.push(`${h}:${f}: does not end with a newline (cut short?)`);
      const lost = isSubsequence(stable, text.split('\n'));
      if (lost !== null) problems.push(`${h}:${f}: half-written: ${text.length} bytes, lost the line ${JSON.stringify(lost)} and what follows`);
    }
    const pw = tree.get(`${PGPOOL_CONF_DIR}/pool_passwd`);
    if (h === POOL_HOST && pw) {
      for (const l of pw.toString('utf8').split('\n').filter(Boolean))
        if (!/^[^:\s]+:(AES|md5|SCRAM-SHA-256\$|TEXT)\S*$/.test(l)) problems.push(`${h}:pool_passwd: a broken entry ${JSON.stringify(l.slice(0, 40))}`);
    }
    problems.push(...survivesRestart(h, tree));
  }
  return problems;
}

/** Last `key = value` of a config file, quotes stripped. */
function setting(text: string, key: string): string | undefined {
  let v: string | undefined;
  for (const l of text.split('\n')) {
    const m = new RegExp(`^\\s*${key}\\s*=\\s*(?:'([^']*)'|([^\\s#]*))`).exec(l);
    if (m) v = m[1] ?? m[2];
  }
  return v;
}

/** A config that turns TLS on (or pool_hba on) must name what exists: else the next restart fails. */
function survivesRestart(h: string, tree: Map<string, Buffer>): string[] {
  const problems: string[] = [];
  const isPool = h === POOL_HOST;
  const conf = tree.get(isPool ? `${PGPOOL_CONF_DIR}/pgpool.conf` : `${PG_CONF_DIR}/postgresql.conf`)?.toString('utf8');
  if (!conf) return problems;
  if (setting(conf, 'ssl') === 'on') {
    const certKey = isPool ? ['ssl_cert', 'ssl_key'] : ['ssl_cert_file', 'ssl_key_file'];
    const [certPath, keyPath] = certKey.map((k) => setting(conf, k));
    if (!certPath || !keyPath) problems.push(`${h}: ssl = on without ${certKey.join(' and ')}: the server would not restart`);
    else {
      const cert = tree.get(certPath);
      const key = tree.get(keyPath);
      if (!cert || !key) problems.push(`${h}: ssl = on names ${!cert ? certPath : keyPath}, which does not exist: the server would not restart`);
      else {
        try {
          const pub = new X509Certificate(cert).publicKey.export({ type: 'spki', format: 'der' });
          const fromKey = createPublicKey(createPrivateKey(key)).export({ type: 'spki', format: 'der' });
          if (!pub.equals(fromKey)) problems.push(`${h}: ${certPath} and ${keyPath} do not belong together: the server would not restart`);
        } catch {
          /* reported by the parse checks */
        }
      }
    }
  }
  if (isPool && setting(conf, 'enable_pool_hba') === 'on') {
    const pw = tree.get(`${PGPOOL_CONF_DIR}/pool_passwd`)?.toString('utf8') ?? '';
    for (const u of ['webadmin', 'pgpool'])
      if (!pw.split('\n').some((l) => l.startsWith(`${u}:`))) problems.push(`${h}: enable_pool_hba = on but pool_passwd has no entry for ${u}: every ${u} login would be refused after a restart`);
  }
  return problems;
}

/** psql over TCP from the controller, the password in the child's environment only. */
export function psqlLogin(fl: FaultLab, host: string, port: number, user = 'webadmin', password = fl.lab.passwords.webadmin) {
  const conninfo = `host=${fl.lab.ip(host)} port=${port} user=${user} dbname=postgres sslmode=prefer connect_timeout=5`;
  return run('psql', ['-X', '-A', '-t', '-q', '-w', '-c', 'select 1', conninfo], {
    env: { ...process.env, PGPASSWORD: password, PGPASSFILE: '/dev/null' },
    timeoutMs: 20_000,
  });
}

/** Every server serves: a login on each PostgreSQL server and through Pgpool-II (waits up to 20 s for a restart in progress). */
export async function checkServing(fl: FaultLab): Promise<Problems> {
  const targets: [string, number][] = [...PG_HOSTS.map((h): [string, number] => [h, 5432]), [POOL_HOST, 9999]];
  const failures = await Promise.all(
    targets.map(async ([h, port]) => {
      const deadline = Date.now() + 20_000;
      let last = '';
      for (;;) {
        const r = await psqlLogin(fl, h, port);
        if (r.code === 0 && r.stdout.trim() === '1') return null;
        last = r.stderr.trim();
        if (Date.now() > deadline) return `${h}:${port} does not serve: ${last}`;
        await sleep(500);
      }
    }),
  );
  return failures.filter((f): f is string => f !== null);
}

/** PostgreSQL's own view of its files as they are now (it re-reads them): no line it would refuse. */
export async function checkServerConfigs(fl: FaultLab): Promise<Problems> {
  const problems: Problems = [];
  for (const h of PG_HOSTS) {
    try {
      const errs = await fl.lab.sql(
        h,
        `select sourcefile || ':' || sourceline || ': ' || error from pg_file_settings where error is not null
         union all select 'pg_hba.conf:' || line_number || ': ' || error from pg_hba_file_rules where error is not null`,
      );
      if (errs) problems.push(`${h}: its configuration would not load on a restart: ${errs}`);
    } catch (e) {
      problems.push(`${h}: cannot ask PostgreSQL about its files: ${(e as Error).message}`);
    }
  }
  return problems;
}

/** All the invariants that must hold right after a fault. */
export async function checkAfterFault(fl: FaultLab, opts: { abrupt?: boolean } = {}): Promise<Problems> {
  // (a run that lost its connection, or was killed, may have left its last commit still running on the host)
  const busy = [...(await commitsEnded(fl)), ...(await agentsEnded(fl))];
  return [...busy, ...checkFiles(fl, opts), ...(await checkServerConfigs(fl)), ...(await checkServing(fl))];
}

/**
 * A killed controller's (or a cut connection's) last commit goes on on its host until it is complete (commit.sh needs nothing
 * from the controller once the content has arrived; it marks itself in the state directory's runs/):
 * the files are checked once it has ended. A commit that does not end within a minute is a problem.
 */
async function commitsEnded(fl: FaultLab): Promise<Problems> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const running = ALL_HOSTS.filter((h) => {
      const dir = hostPath(fl.lab, h, `${STATE}/runs`);
      return existsSync(dir) && readdirSync(dir).some((n) => n.endsWith('.commit'));
    });
    if (running.length === 0) return [];
    if (Date.now() > deadline) return running.map((h) => `${h}: a killed run's commit is still running after a minute`);
    await sleep(200);
  }
}

/**
 * The killed run's long-lived shells (src/remote/scripts/agent.sh) end with their connection, once the
 * command each was running has ended (it gets TERM: its own traps clean up). Until then what it
 * leaves is not yet final. A shell that does not end within a minute is a problem.
 */
async function agentsEnded(fl: FaultLab): Promise<Problems> {
  const deadline = Date.now() + 60_000;
  const agents = (h: string): number => {
    const proc = hostPath(fl.lab, h, '/proc');
    let n = 0;
    for (const pid of readdirSync(proc).filter((x) => /^\d+$/.test(x))) {
      try {
        if (readFileSync(join(proc, pid, 'cmdline')).includes('pgtls-agent')) n++;
      } catch {
        /* gone meanwhile */
      }
    }
    return n;
  };
  for (;;) {
    const running = ALL_HOSTS.filter((h) => agents(h) > 0);
    if (running.length === 0) return [];
    if (Date.now() > deadline) return running.map((h) => `${h}: a killed run's remote shell is still running after a minute`);
    await sleep(200);
  }
}

/**
 * A re-run converges and the next one reports changed=0, leaving nothing of any run behind.
 * `then` is the playbook of the changed=0 run (reissue always re-issues: its steady state is install's).
 */
export async function converge(fl: FaultLab, playbook: string, then = playbook, args: string[] = []): Promise<Problems> {
  count(fl, 'reRuns');
  const r1 = await fl.pgtls(playbook, args);
  if (r1.code !== 0) return [`the re-run did not converge: ${show(r1)}`];
  const r2 = await fl.pgtls(then, args);
  if (r2.code !== 0) return [`the run after the re-run failed: ${show(r2)}`];
  if (!r2.report || totalChanged(r2.report) !== 0) return [`the run after the re-run still changed something: ${show(r2)}`];
  count(fl, 'reRunsConverged');
  return [...checkFiles(fl, { afterRerun: true }).map((p) => `after the re-run: ${p}`), ...(await checkServing(fl)).map((p) => `after the re-run: ${p}`)];
}

/**
 * One fault or interrupt point (or a 'check' of neither): `body` returns what is wrong (or throws). Counted as survived when
 * nothing is; the problems are returned (prefixed with `what`) so a test can go on to the next
 * point and report them all at the end.
 */
export async function attempt(fl: FaultLab, kind: 'fault' | 'interrupt' | 'check', what: string, body: () => Promise<Problems>): Promise<Problems> {
  if (kind !== 'check') count(fl, kind === 'fault' ? 'faultsInjected' : 'interruptPoints');
  let problems: Problems;
  try {
    problems = await body();
  } catch (e) {
    problems = [(e as Error).message || String((e as Error).stack ?? e)];
  }
  if (problems.length) note(fl, `FAILED ${what}:\n  ${problems.join('\n  ')}`);
  else if (kind !== 'check') count(fl, kind === 'fault' ? 'faultsSurvived' : 'interruptsSurvived');
  return problems.map((p) => `${what}: ${p}`);
}

/** After a failed point: services up again and one more run of `playbook`, so the next point starts sane. */
export async function recover(fl: FaultLab, playbook: string): Promise<void> {
  for (const h of PG_HOSTS) await fl.lab.exec(h, 'pg_ctlcluster 15 main status >/dev/null 2>&1 || pg_ctlcluster 15 main start');
  await fl.lab.exec(POOL_HOST, '[ -s /var/run/postgresql/pgpool.pid ] && kill -0 "$(cat /var/run/postgresql/pgpool.pid)" 2>/dev/null || /etc/init.d/pgpool2 start');
  await fl.pgtls(playbook);
}

/** Byte-for-byte: these files on `host` are as in `snap` (path → content). */
export function sameFiles(fl: FaultLab, host: string, snap: Map<string, Buffer>, paths: string[]): Problems {
  const now = readTree(fl.lab, host);
  const diff = paths.filter((p) => {
    const a = snap.get(p);
    const b = now.get(p);
    return a === undefined ? b !== undefined : b === undefined || !a.equals(b);
  });
  return diff.length ? [`${host}: not as before: ${diff.join(', ')}`] : [];
}

// ---------------------------------------------------------------------------------------------
// agents inside a lab host (see fault-agent.ts)
// ---------------------------------------------------------------------------------------------
export interface Agent {
  send(line: string): void;
  /** Resolves with the first output line matching `re` (rejects after timeoutMs). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
  lines: string[];
  stop(): Promise<void>;
}

export async function startAgent(lab: Lab, host: string, args: string[]): Promise<Agent> {
  const holder = readFileSync(join(lab.dir, host, 'init.pid'), 'utf8').trim();
  // A copy in the lab's directory: the host sees its own /tmp, so a checkout under /tmp is out of its sight.
  const script = join(lab.dir, 'fault-agent.mjs');
  if (!existsSync(script)) writeFileSync(script, readFileSync(join(ROOT, 'dist', 'test', 'e2e', 'fault-agent.js')));
  // Into the host's network, mount AND pid namespaces: what it does (a process holding a port) is seen
  // by the host's own tools (ss -p, /proc) as it would be on a real host.
  const child = spawn('nsenter', ['-t', holder, '-n', '-m', '-p', '--', process.execPath, script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  createInterface({ input: child.stdout }).on('line', (l) => {
    lines.push(l);
    for (const w of [...waiters]) if (w.re.test(l)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(l); }
  });
  const exited = new Promise<void>((r) => child.on('close', () => r()));
  const agent: Agent = {
    lines,
    send: (l) => child.stdin.write(`${l}\n`),
    waitFor: (re, timeoutMs = 30_000) => {
      const seen = lines.find((l) => re.test(l));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`agent on ${host} (${args[0]}): no ${re} within ${timeoutMs} ms; said ${JSON.stringify(lines)} ${stderr}`)), timeoutMs);
        waiters.push({ re, resolve: (l) => { clearTimeout(t); resolve(l); } });
      });
    },
    stop: async () => {
      child.stdin.end();
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
  await agent.waitFor(/^ready$/, 20_000);
  return agent;
}

/** Appends a line to a per-suite log (the seed, what each point did) for replays. */
export function note(fl: FaultLab, line: string): void {
  appendFileSync(join(fl.work, 'faults.log'), `${line}\n`);
}
