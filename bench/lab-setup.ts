// The benchmark's hosts: a fresh lab/lab.sh lab per tool, hosts made to look busy, the files the
// lineinfile benchmark edits, and the floor (one plain OpenSSH session per host reading the files).
import { spawn } from 'node:child_process';
import { chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const LAB_SH = path.join(REPO, 'lab', 'lab.sh');

export type Role = 'primary' | 'standby' | 'pgpool' | 'plain';

export interface BenchHost {
  name: string;
  ip: string;
  role: Role;
}

export interface BenchLab {
  dir: string;
  inventory: string;
  knownHosts: string;
  key: string;
  hosts: BenchHost[];
  upS: number;
}

/** What lab.sh builds for a job: N = 3 is the issue's pg1 primary, pg2 standby, pg3 Pgpool-II. */
export function labLayout(n: number, postgres: boolean): { args: string[]; roles: Role[] } {
  const names = Array.from({ length: n }, (_, i) => `pg${i + 1}`);
  if (!postgres) return { args: ['--hosts', String(n)], roles: names.map(() => 'plain') };
  if (n === 3) {
    return {
      args: ['--hosts', '3', '--postgres', 'pg1,pg2', '--standby', 'pg2:pg1', '--pgpool', 'pg3:pg1,pg2'],
      roles: ['primary', 'standby', 'pgpool'],
    };
  }
  // any other size: N PostgreSQL primaries (the issue's "50 PostgreSQL hosts")
  return { args: ['--hosts', String(n), '--postgres', names.join(',')], roles: names.map(() => 'primary') };
}

/** Run a program to completion; output goes to logFile. Resolves to the exit code. */
export function runLogged(cmd: string, args: string[], logFile: string, env?: NodeJS.ProcessEnv, input?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => chunks.push(b));
    child.stderr.on('data', (b: Buffer) => chunks.push(b));
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
    child.on('error', reject);
    child.on('close', (code) => {
      writeFileSync(logFile, Buffer.concat(chunks), { flag: 'a' });
      resolve(code ?? 1);
    });
  });
}

export async function labUp(dir: string, n: number, postgres: boolean, logDir: string): Promise<BenchLab> {
  const { args, roles } = labLayout(n, postgres);
  const t0 = Date.now();
  const log = path.join(logDir, 'lab.log');
  const code = await runLogged('bash', [LAB_SH, 'up', '--dir', dir, ...args, '--owner-pid', String(process.pid)], log);
  if (code !== 0) throw new Error(`lab.sh up failed (exit ${code}), see ${log}`);
  const upS = (Date.now() - t0) / 1000;
  const inventory = path.join(dir, 'inventory.yaml');
  const ips = hostIps(inventory);
  const hosts = roles.map((role, i) => {
    const name = `pg${i + 1}`;
    const ip = ips.get(name);
    if (!ip) throw new Error(`${inventory}: no address for ${name}`);
    return { name, ip, role };
  });
  return { dir, inventory, knownHosts: path.join(dir, 'known_hosts'), key: path.join(dir, 'id_ed25519'), hosts, upS };
}

export async function labDown(dir: string, logDir: string): Promise<void> {
  await runLogged('bash', [LAB_SH, 'down', '--dir', dir], path.join(logDir, 'lab.log'));
}

/** name -> ansible_host from the inventory lab.sh wrote (its fixed "pgI: { ansible_host: IP }" lines). */
function hostIps(inventory: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of readFileSync(inventory, 'utf8').matchAll(/^\s+(pg\d+): \{ ansible_host: ([0-9.]+) \}$/gm)) out.set(m[1]!, m[2]!);
  return out;
}

/** Run a bash script inside each host (lab.sh exec), `limit` hosts at a time; resolves to each stdout. */
async function inEachHost(lab: BenchLab, hosts: BenchHost[], script: string, args: string[], logDir: string, limit = 8): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < hosts.length) {
      const h = hosts[next++]!;
      const res = await new Promise<{ code: number; stdout: string }>((resolve, reject) => {
        const child = spawn('bash', [LAB_SH, 'exec', '--dir', lab.dir, h.name, '--', 'bash', '-c', script, 'bench', ...args], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
        child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
        child.on('error', reject);
        child.on('close', (code) => {
          writeFileSync(path.join(logDir, 'lab.log'), `[${h.name}] ${stderr}`, { flag: 'a' });
          resolve({ code: code ?? 1, stdout });
        });
      });
      if (res.code !== 0) throw new Error(`setup on ${h.name} failed (exit ${res.code}), see ${path.join(logDir, 'lab.log')}`);
      out.set(h.name, res.stdout.trim());
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, hosts.length) }, worker));
  return out;
}

/**
 * Busy-looking servers: each PostgreSQL host gets `backends` real client sessions (psql as postgres
 * over the local socket, idle in a transaction-less session: a real backend process each, children
 * of the postmaster like on a production server) and then plain `sleep` processes until its PID
 * namespace holds `total` processes. Real backends cost ~2.6 MB each here, a sleep ~0.35 MB, so
 * hundreds of real backends on 50 hosts would not fit this machine: the mix keeps /proc as long as
 * a busy server's. Returns the process count each host sees.
 */
export const BUSY_SCRIPT = String.raw`
set -eu
backends=$1 total=$2
fifo=/run/pgtls-bench-busy.fifo
[ -p "$fifo" ] || mkfifo -m 0666 "$fifo"
i=0
while [ "$i" -lt "$backends" ]; do
  # psql waits for input on the fifo forever (opened read-write, so it never sees EOF): an idle session
  setsid setpriv --reuid postgres --regid postgres --init-groups psql -X -q -d postgres <>"$fifo" >/dev/null 2>&1 &
  i=$((i + 1))
done
n=0
for _ in $(seq 1 600); do
  n=$(runuser -u postgres -- psql -X -Atq -d postgres -c "select count(*) from pg_stat_activity where backend_type = 'client backend' and application_name = 'psql' and state = 'idle'" 2>/dev/null || echo 0)
  [ "$n" -ge "$backends" ] && break
  sleep 0.1
done
[ "$n" -ge "$backends" ] || { echo "only $n of $backends sessions came up" >&2; exit 1; }
have=$(ls -d /proc/[0-9]* | wc -l)
i=$have
while [ "$i" -lt "$total" ]; do
  setsid sleep 86400 </dev/null >/dev/null 2>&1 &
  i=$((i + 1))
done
sleep 0.5
ls -d /proc/[0-9]* | wc -l
`;

export function busyMemoryMB(hosts: number, backends: number, total: number): number {
  return Math.round(hosts * (backends * 4 + Math.max(0, total - backends * 2) * 0.4));
}

export async function makeBusy(lab: BenchLab, backends: number, total: number, logDir: string): Promise<number[]> {
  const pgHosts = lab.hosts.filter((h) => h.role === 'primary' || h.role === 'standby');
  const counts = await inEachHost(lab, pgHosts, BUSY_SCRIPT, [String(backends), String(total)], logDir);
  return [...counts.values()].map(Number);
}

/** Debian-like pg_hba.conf of a pre-TLS server (what lab.sh's PostgreSQL hosts have). */
const PG_HBA = `# pg_hba.conf (bench seed, like a Debian server before TLS)
local   all             postgres                                peer
local   all             all                                     peer
host    all             all             127.0.0.1/32            md5
host    all             all             ::1/128                 md5
local   replication     all                                     peer
host    replication     all             127.0.0.1/32            md5
host    replication     all             ::1/128                 md5

# Remote access
host    replication     replicator      10.0.0.0/8              md5
host    all             all             0.0.0.0/0               md5
host    all             all             ::/0                    md5
`;

/** uid and gid of a user in a host's own /etc/passwd. */
function userIds(root: string, user: string): { uid: number; gid: number } {
  const line = readFileSync(path.join(root, 'etc/passwd'), 'utf8').split('\n').find((l) => l.startsWith(`${user}:`));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (uid === undefined || gid === undefined) throw new Error(`no user ${user} in ${root}/etc/passwd`);
  return { uid: Number(uid), gid: Number(gid) };
}

/**
 * The files bench/lineinfile.yaml edits, written into every host's private /etc (through DIR/pgI/fs),
 * with Debian's owners and modes (pg_createcluster makes /etc/postgresql/15/main and its files the
 * postgres user's; pgpool.conf stays the package's root:postgres 0640).
 */
export function seedConfigFiles(lab: BenchLab): void {
  const conf = readFileSync('/usr/share/postgresql/15/postgresql.conf.sample');
  const pgpool = readFileSync('/usr/share/pgpool2/pgpool.conf');
  for (const h of lab.hosts) {
    const root = path.join(lab.dir, h.name, 'fs');
    const pg = userIds(root, 'postgres');
    let dir = path.join(root, 'etc/postgresql');
    for (const part of ['15', 'main']) {
      dir = path.join(dir, part);
      mkdirSync(dir, { recursive: true, mode: 0o755 });
      chownSync(dir, pg.uid, pg.gid);
    }
    for (const [name, content, mode] of [['postgresql.conf', conf, 0o644], ['pg_hba.conf', PG_HBA, 0o640]] as const) {
      const f = path.join(dir, name);
      writeFileSync(f, content, { mode });
      chownSync(f, pg.uid, pg.gid);
    }
    mkdirSync(path.join(root, 'etc/pgpool2'), { recursive: true });
    writeFileSync(path.join(root, 'etc/pgpool2/pgpool.conf'), pgpool);   // existing file: owner and mode kept
  }
}

/** The files an idempotent tool must at least read on each host (Debian paths). */
export function floorFiles(role: Role): string[] {
  const keys = '/var/lib/jelastic/keys/SSL-TLS';
  const pg = ['/etc/postgresql/15/main/postgresql.conf', '/etc/postgresql/15/main/pg_hba.conf'];
  switch (role) {
    case 'primary':
    case 'standby':
      return [...pg, `${keys}/server/server.crt`, `${keys}/server/root.crt`, `${keys}/client/client.crt`, `${keys}/client/root.crt`];
    case 'pgpool':
      return ['/etc/pgpool2/pgpool.conf', '/etc/pgpool2/pool_hba.conf', '/etc/pgpool2/pool_passwd', `${keys}/server/server.crt`, `${keys}/server/root.crt`];
    case 'plain':
      return [...pg, '/etc/pgpool2/pgpool.conf'];
  }
}

/** The floor: N plain OpenSSH sessions at once, one per host, each reading that host's files once. */
export function writeFloorScript(lab: BenchLab, file: string): void {
  const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const lines = [
    '#!/bin/bash',
    '# one plain ssh session per host, all at once, each reading the files an idempotent run must read',
    `ssh_opts=(-i ${q(lab.key)} -o UserKnownHostsFile=${q(lab.knownHosts)} -o StrictHostKeyChecking=yes -o BatchMode=yes -o ControlMaster=no -o ControlPath=none)`,
    'rc=0; pids=()',
    ...lab.hosts.map((h) => `ssh "\${ssh_opts[@]}" root@${h.ip} ${q(`cat -- ${floorFiles(h.role).join(' ')}`)} >/dev/null & pids+=($!)`),
    'for p in "${pids[@]}"; do wait "$p" || rc=1; done',
    'exit $rc',
    '',
  ];
  writeFileSync(file, lines.join('\n'), { mode: 0o755 });
}
