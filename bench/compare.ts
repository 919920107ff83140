// bench/compare.sh N [options]: pgtls vs an equivalent Ansible playbook vs the plain-ssh floor, on
// fresh lab hosts for each tool, in one invocation; a table with ratios on stdout and a JSON file.
// See README.md "Performance" for what is measured and how.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, freemem, loadavg } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { busyMemoryMB, labDown, labUp, makeBusy, REPO, seedConfigFiles, writeFloorScript, type BenchLab } from './lab-setup.js';
import { GNU_TIME, measure, round, type Measurement } from './measure.js';
import { commandCounts, readAnsibleRecap, readPgtlsReport } from './parse.js';
import { formatTable, ratios, targets, type BenchResult, type RunRecord } from './report.js';

const USAGE = `usage: bench/compare.sh N [options]
  N                     hosts: 3 = pg1 primary, pg2 standby, pg3 Pgpool-II; other N = N PostgreSQL primaries
  --quick               N = 3, pgtls and the floor only (add --ansible to include Ansible); for CI
  --lineinfile          hosts without PostgreSQL: bench/lineinfile.yaml over files the harness creates
  --busy P              each PostgreSQL host sees P processes (real idle sessions + sleep processes)
  --backends B          of which B real idle client sessions (default 20)
  --ansible / --no-ansible   include Ansible (default: yes, except with --quick)
  --out FILE            JSON results (default .lab-bench/compare-N[-lineinfile].json)
  --max-load L          first wait until the 1-minute load average is below L (shared machine)
  --max-wait S          ... for at most S seconds (default 1800), else exit 3 without measuring
  --keep                keep the last lab up (for inspection; lab.sh down --dir DIR removes it)
bench/compare.sh --render FILE.json   print (and save as FILE.txt) the table of an earlier run`;

/**
 * A lab of this many hosts runs every host's sshd on the controller's own cores: under that load a
 * 10 s connect timeout (pgtls's and Ansible's default) is too short, and one host too slow to answer
 * stops a pgtls run before its first change. Both tools get the same longer timeout there.
 */
const LOADED_LAB_HOSTS = 100;
const LOADED_CONNECT_TIMEOUT_S = 60;
const connectTimeout = (n: number) => (n >= LOADED_LAB_HOSTS ? ['-e', `ansible_connect_timeout=${LOADED_CONNECT_TIMEOUT_S}`] : []);

interface Options {
  n: number;
  quick: boolean;
  lineinfile: boolean;
  busy: number;
  backends: number;
  ansible: boolean;
  out: string;
  keep: boolean;
  maxLoad: number | null;
  maxWaitS: number;
}

function parseOptions(argv: string[]): Options {
  const { values: v, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      quick: { type: 'boolean' },
      lineinfile: { type: 'boolean' },
      busy: { type: 'string' },
      backends: { type: 'string' },
      ansible: { type: 'boolean' },
      'no-ansible': { type: 'boolean' },
      out: { type: 'string' },
      keep: { type: 'boolean' },
      'max-load': { type: 'string' },
      'max-wait': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (v.help) {
    process.stdout.write(USAGE + '\n');
    process.exit(0);
  }
  const quick = v.quick ?? false;
  const n = Number(positionals[0] ?? (quick ? 3 : NaN));
  const fail = (m: string): never => {
    process.stderr.write(`bench: ${m}\n${USAGE}\n`);
    process.exit(2);
  };
  if (!Number.isInteger(n) || n < 1 || n > 200) fail('N must be 1..200');
  if (quick && n !== 3) fail('--quick is N = 3');
  const busy = Number(v.busy ?? 0);
  const backends = Number(v.backends ?? 20);
  if (!Number.isInteger(busy) || busy < 0) fail('--busy must be a process count');
  if (!Number.isInteger(backends) || backends < 0 || backends > 90) fail('--backends must be 0..90 (max_connections is 100)');
  const lineinfile = v.lineinfile ?? false;
  if (lineinfile && busy > 0) fail('--busy is for PostgreSQL hosts, not --lineinfile');
  const ansible = v['no-ansible'] ? false : (v.ansible ?? !quick);
  const out = v.out ?? path.join(REPO, '.lab-bench', `compare-${n}${lineinfile ? '-lineinfile' : ''}.json`);
  const maxLoad = v['max-load'] === undefined ? null : Number(v['max-load']);
  const maxWaitS = Number(v['max-wait'] ?? 1800);
  if (maxLoad !== null && !(maxLoad > 0)) fail('--max-load must be a positive number');
  if (!(maxWaitS >= 0)) fail('--max-wait must be seconds');
  return { n, quick, lineinfile, busy, backends, ansible, out, keep: v.keep ?? false, maxLoad, maxWaitS };
}

/** Poll the 1-minute load average until it is below max (true), or the wait is over (false). */
async function waitForLoad(max: number, waitS: number, say: (m: string) => void): Promise<boolean> {
  const end = Date.now() + waitS * 1000;
  let last = 0;
  for (;;) {
    const l = loadavg()[0] ?? 0;
    if (l < max) return true;
    if (Date.now() >= end) return false;
    if (Date.now() - last > 60_000) {
      say(`load ${l.toFixed(2)} >= ${max}: waiting (until ${new Date(end).toISOString().slice(11, 19)} UTC)`);
      last = Date.now();
    }
    await new Promise((r) => setTimeout(r, 5000));
  }
}

function version(cmd: string, args: string[]): string | null {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0]?.trim() ?? null;
  } catch {
    return null;
  }
}

/** Without a cgroup to end them, Ansible's ControlPersist masters would carry over into the next run. */
function closeControlMasters(dir: string): void {
  if (!existsSync(dir)) return;
  for (const sock of readdirSync(dir)) {
    try {
      execFileSync('ssh', ['-o', `ControlPath=${path.join(dir, sock)}`, '-O', 'exit', 'bench'], { stdio: 'ignore', timeout: 10_000 });
    } catch {
      /* already gone */
    }
  }
}

function record(tool: RunRecord['tool'], job: RunRecord['job'], m: Measurement, extra: Partial<RunRecord> = {}): RunRecord {
  return { tool, job, ...m, changed: null, failedHosts: null, commandsPerHost: null, topTasks: null, ...extra };
}

/** --render FILE.json: the table of an earlier run (ratios and targets recomputed), also to FILE.txt. */
function render(file: string): number {
  const r = JSON.parse(readFileSync(file, 'utf8')) as BenchResult;
  r.ratios = ratios(r.runs);
  r.targets = targets(r.mode, r.n, r.runs, r.ratios);
  const table = formatTable(r);
  writeFileSync(file.replace(/\.json$/, '') + '.txt', table + '\n');
  process.stdout.write(table + '\n');
  return 0;
}

async function main(): Promise<number> {
  if (process.argv[2] === '--render' && process.argv[3]) return render(process.argv[3]);
  const o = parseOptions(process.argv.slice(2));
  if (!existsSync(GNU_TIME)) throw new Error(`${GNU_TIME} is missing: apt-get install time (lab/install-deps.sh does)`);
  if (o.ansible && !version('ansible-playbook', ['--version'])) throw new Error('ansible-playbook is missing (WITH_ANSIBLE=1 lab/install-deps.sh), or pass --no-ansible');
  const say = (m: string): void => void process.stderr.write(`bench: ${m}\n`);
  if (o.maxLoad !== null && !(await waitForLoad(o.maxLoad, o.maxWaitS, say))) {
    say(`the load average stayed above ${o.maxLoad} for ${o.maxWaitS} s: nothing measured`);
    return 3;
  }
  const startedAt = new Date().toISOString();
  const stamp = startedAt.replace(/[:.]/g, '-');
  const work = path.join(REPO, '.lab-bench', `compare-${stamp}`);
  const logDir = path.join(work, 'logs');
  mkdirSync(logDir, { recursive: true });
  const playbook = o.lineinfile ? path.join(REPO, 'bench', 'lineinfile.yaml') : path.join(REPO, 'playbooks', 'install.yaml');
  const ansiblePlaybook = o.lineinfile ? playbook : path.join(REPO, 'bench', 'ansible', 'install.yaml');
  const postgres = !o.lineinfile;
  const timeoutMs = Math.max(900_000, o.n * 40_000);   // a safety net only: a stuck run must not hold the lab forever
  const runs: RunRecord[] = [];
  const labs: { tool: string; upS: number; busyCounts: number[] }[] = [];
  let current: BenchLab | null = null;
  const cleanup = async (): Promise<void> => {
    if (current && !o.keep) await labDown(current.dir, logDir);
    current = null;
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      process.stderr.write(`bench: ${sig}, taking the lab down\n`);
      void cleanup().finally(() => process.exit(130));
    });
  }

  const freshLab = async (tool: string): Promise<BenchLab> => {
    await cleanup();
    say(`${tool}: lab up (${o.n} hosts${postgres ? '' : ', no PostgreSQL'}), load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    const lab = await labUp(path.join(work, `lab-${tool}`), o.n, postgres, logDir);
    current = lab;
    let busyCounts: number[] = [];
    if (o.busy > 0) {
      const need = busyMemoryMB(lab.hosts.length, o.backends, o.busy);
      if (freemem() / 2 ** 20 < need + 2048) throw new Error(`--busy ${o.busy}: needs ~${need} MB, only ${Math.round(freemem() / 2 ** 20)} MB free`);
      busyCounts = await makeBusy(lab, o.backends, o.busy, logDir);
      say(`${tool}: each PostgreSQL host sees ${Math.min(...busyCounts)}–${Math.max(...busyCounts)} processes`);
    }
    if (o.lineinfile) seedConfigFiles(lab);
    labs.push({ tool, upS: round(lab.upS), busyCounts });
    return lab;
  };

  try {
    // pgtls: first run, the no-change re-run (its replay record is the first run's), a second one
    // (a no-change run's record: the steady state of a pipeline); the floor on the same hosts afterwards.
    {
      const lab = await freshLab('pgtls');
      for (const job of ['install', 'rerun', 'rerun2'] as const) {
        const base = path.join(logDir, `pgtls-${job}`);
        say(`pgtls: ${job}`);
        const m = await measure('node', [path.join(REPO, 'bin', 'pgtls.js'), 'run', playbook, '-i', lab.inventory, '-f', String(o.n), ...connectTimeout(o.n), '--json', `${base}.json`], {
          // its own replay record (src/core/replay-cache.ts): none for the first run on fresh hosts, the previous run's after
          env: { ...process.env, CI: '1', PGTLS_COMMAND_LOG: `${base}.commands`, PGTLS_CACHE_DIR: path.join(work, 'pgtls-cache') },
          cwd: REPO,
          timeoutMs,
          logFile: `${base}.log`,
        });
        const rep = existsSync(`${base}.json`) ? readPgtlsReport(`${base}.json`) : {};
        runs.push(record('pgtls', job, m, { ...rep, commandsPerHost: commandCounts(`${base}.commands`) }));
      }
      const floor = path.join(work, 'floor.sh');
      writeFloorScript(lab, floor);
      say('floor: one plain ssh session per host');
      runs.push(record('ssh', 'floor', await measure('bash', [floor], { timeoutMs, logFile: path.join(logDir, 'floor.log') })));
    }
    if (o.ansible) {
      const lab = await freshLab('ansible');
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        ANSIBLE_CONFIG: path.join(REPO, 'bench', 'ansible', 'ansible.cfg'),
        ANSIBLE_FORKS: String(o.n),
        ANSIBLE_HOST_KEY_CHECKING: 'True',
        ANSIBLE_PIPELINING: 'True',
        ANSIBLE_SSH_ARGS: `-o UserKnownHostsFile=${lab.knownHosts} -o StrictHostKeyChecking=yes -o ControlMaster=auto -o ControlPersist=60s`,
        ANSIBLE_SSH_CONTROL_PATH_DIR: path.join(lab.dir, 'cp'),
        ANSIBLE_LOCAL_TEMP: path.join(lab.dir, 'ansible-tmp'),
        ANSIBLE_NOCOLOR: '1',
        ...(o.n >= LOADED_LAB_HOSTS ? { ANSIBLE_TIMEOUT: String(LOADED_CONNECT_TIMEOUT_S) } : {}),
      };
      for (const job of ['install', 'rerun'] as const) {
        const log = path.join(logDir, `ansible-${job}.log`);
        say(`ansible: ${job}`);
        const m = await measure('ansible-playbook', ['-i', lab.inventory, ansiblePlaybook], { env, cwd: REPO, timeoutMs, logFile: log });
        runs.push(record('ansible', job, m, readAnsibleRecap(log)));
        closeControlMasters(path.join(lab.dir, 'cp'));
      }
    }
  } finally {
    await cleanup();
  }

  const result: BenchResult = {
    version: 1,
    startedAt,
    finishedAt: new Date().toISOString(),
    n: o.n,
    mode: o.lineinfile ? 'lineinfile' : 'install',
    quick: o.quick,
    layout: o.lineinfile ? `${o.n} hosts without PostgreSQL (bench/lineinfile.yaml)` : o.n === 3 ? 'pg1 primary, pg2 standby, pg3 Pgpool-II' : `${o.n} PostgreSQL primaries`,
    busy: o.busy > 0 ? { processesPerHost: o.busy, realBackendsPerHost: o.backends, seen: labs.flatMap((l) => l.busyCounts) } : null,
    machine: {
      cores: cpus().length,
      memGiB: round(totalmem() / 2 ** 30),
      node: process.version,
      ansible: o.ansible ? version('ansible-playbook', ['--version']) : null,
    },
    labs: labs.map(({ tool, upS }) => ({ tool, upS })),
    logs: logDir,
    runs,
    ratios: ratios(runs),
    targets: [],
  };
  result.targets = targets(result.mode, result.n, runs, result.ratios);
  mkdirSync(path.dirname(o.out), { recursive: true });
  writeFileSync(o.out, JSON.stringify(result, null, 2) + '\n');
  const table = formatTable(result);
  writeFileSync(o.out.replace(/\.json$/, '') + '.txt', table + '\n');
  process.stdout.write(table + `\nJSON: ${o.out}\nlogs: ${logDir}\n`);
  const bad = runs.filter((r) => r.exitCode !== 0 || (r.failedHosts ?? 0) > 0);
  return bad.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
