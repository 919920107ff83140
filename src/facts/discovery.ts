/**
 * Which running process IS the host's server: pure decisions over what the host reported, so they
 * can be table-tested with fake process tables (test/unit/discovery.test.ts).
 *
 * The source of truth is the server's own pid file (PostgreSQL's postmaster.pid in its data
 * directory, Pgpool-II's pid_file_name); the process table is only a hint to find it. A zombie (its
 * /proc entries are unreadable, state Z), a process of another network namespace (the lab's hosts,
 * containers) and a child orphaned by a restart (re-parented to init, titled "pgpool: …" /
 * "postgres: …", and never the pid its pid file names) never count as a main process.
 */
import { posix } from 'node:path';

export interface ProcRow {
  pid: number;
  ppid: number;
  /** /proc/PID/stat state: R S D Z T …; '' when unreadable */
  state: string;
  /** the process's network namespace against ours: 'other' only when both were readable and differ */
  net: 'same' | 'other' | 'unknown';
  /** comm of the parent ('' when unreadable) */
  parentComm: string;
  /** argv (NUL-separated cmdline); a child's title is one element like "pgpool: wait for connection request" */
  argv: string[];
}

/** The columns every process row of the discovery scripts starts with: pid, ppid, state, net, parent's comm. */
export function procRowHead(f: readonly string[]): Omit<ProcRow, 'argv'> {
  return {
    pid: Number(f[1]),
    ppid: Number(f[2]),
    state: f[3] ?? '',
    net: (['same', 'other', 'unknown'].includes(f[4] ?? '') ? f[4] : 'unknown') as ProcRow['net'],
    parentComm: f[5] ?? '',
  };
}

/** Not a candidate for a main process: a zombie, another namespace's, or a child (by parent or title). */
export function excludedReason(p: ProcRow, comm: string): string | undefined {
  if (p.state === 'Z' || p.state === 'X') return 'zombie';
  if (p.net === 'other') return 'another network namespace';
  if (p.parentComm === comm || (comm === 'postgres' && p.parentComm === 'postmaster')) return 'child of a server process';
  const title = p.argv[0] ?? '';
  // children set their process title ("pgpool: worker process", "postgres: checkpointer"); a main
  // process keeps its binary path as argv[0]
  if (/^(pgpool|postgres|postmaster): /.test(title)) return 'child process (by its title)';
  return undefined;
}

/** The process table's candidates for the main process of `comm`. */
export function mainCandidates<T extends ProcRow>(rows: readonly T[], comm: string): T[] {
  return rows.filter((p) => excludedReason(p, comm) === undefined);
}

/** The pid a pid file names (its first line), or null. */
export function pidFromFile(text: string | null | undefined): number | null {
  if (!text) return null;
  const first = text.split('\n')[0]!.trim();
  return /^\d+$/.test(first) && Number(first) > 0 ? Number(first) : null;
}

/**
 * A PostgreSQL postmaster: a candidate whose data directory's postmaster.pid names its own pid (an
 * orphaned backend has the same cwd, but is not the pid in the file).
 */
export function isPostmaster(p: ProcRow & { pidFile: string | null }): boolean {
  return excludedReason(p, 'postgres') === undefined && pidFromFile(p.pidFile) === p.pid;
}

/** The state of the process a pid file names, as the host reported it. */
export interface PidFileProbe {
  pid: number | null;
  comm: string;
  state: string;
}

/** Whether the pid file names a live process of that program (a stale pid file names a gone or reused pid). */
export function pidFileAlive(probe: PidFileProbe, comm: string): boolean {
  return probe.pid !== null && probe.comm === comm && probe.state !== 'Z' && probe.state !== 'X' && probe.state !== '';
}

/**
 * The init script that runs Pgpool-II with `confFile`: the one that names the file (or its
 * directory), else the one named like the directory (/etc/pgpool2 ↔ pgpool2, /etc/pgpool-II ↔
 * pgpool-II: each package's convention), else the only one there is. Never a fixed preference.
 */
export function chooseInitScript(scripts: readonly { path: string; mentions: 'file' | 'dir' | 'none' }[], confFile: string): string | undefined {
  const byFile = scripts.filter((s) => s.mentions === 'file');
  if (byFile.length === 1) return byFile[0]!.path;
  const byDir = scripts.filter((s) => s.mentions === 'dir');
  if (byFile.length === 0 && byDir.length === 1) return byDir[0]!.path;
  const dirName = posix.basename(posix.dirname(confFile));
  const byName = scripts.filter((s) => posix.basename(s.path) === dirName);
  if (byName.length === 1 && (byFile.length === 0 || byFile.includes(byName[0]!))) return byName[0]!.path;
  if (scripts.length === 1) return scripts[0]!.path;
  return undefined;
}
