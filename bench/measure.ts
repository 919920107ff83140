// How one benchmarked command is measured on the controller:
//   - wall time, user and system CPU, and the peak RSS of its largest process, from GNU time
//     (/usr/bin/time -f '%e %U %S %M': the CPU of every descendant it waited for, e.g. Ansible's forks
//     and their ssh clients; %M is the largest single process, not a sum);
//   - the peak memory of the whole process tree, from a memory cgroup made for the command (cgroup v1
//     memory.max_usage_in_bytes or v2 memory.peak: every process of the tool together, page cache it
//     caused included), when this machine lets us make one; null otherwise;
//   - the load average before and after, because the machine is shared.
// Processes the command leaves behind in its cgroup (OpenSSH ControlPersist masters) are ended by pid
// after the measurement, so every run starts without persisted connections.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';

export const GNU_TIME = '/usr/bin/time';

export interface Measurement {
  wallS: number;
  userS: number;
  sysS: number;
  cpuS: number;
  /** Peak RSS of the largest process (GNU time %M), MB. */
  maxRssMB: number;
  /** Peak memory of all the command's processes together (cgroup), MB; null without cgroups. */
  treePeakMB: number | null;
  exitCode: number;
  loadBefore: number[];
  loadAfter: number[];
}

export interface MeasureOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs: number;
  /** stdout and stderr of the command go to this file. */
  logFile: string;
}

/** Where this process's memory cgroup lives, and which file holds the peak (v1 or v2). */
function memoryCgroup(): { dir: string; peakFile: string } | null {
  let lines: string[];
  try {
    lines = readFileSync('/proc/self/cgroup', 'utf8').split('\n');
  } catch {
    return null;
  }
  for (const line of lines) {
    const [, controllers, rel] = line.split(':');
    if (controllers !== undefined && rel !== undefined && controllers.split(',').includes('memory')) {
      const dir = path.join('/sys/fs/cgroup/memory', rel);
      if (existsSync(path.join(dir, 'memory.max_usage_in_bytes'))) return { dir, peakFile: 'memory.max_usage_in_bytes' };
    }
  }
  const v2 = lines.find((l) => l.startsWith('0::'));
  if (v2 !== undefined) {
    const dir = path.join('/sys/fs/cgroup', v2.slice(3));
    if (existsSync(path.join(dir, 'memory.peak'))) return { dir, peakFile: 'memory.peak' };
  }
  return null;
}

let seq = 0;

/** A fresh child cgroup for one measurement, or null when cgroups cannot be made here. */
function makeCgroup(): { dir: string; peakFile: string } | null {
  const parent = memoryCgroup();
  if (!parent) return null;
  const dir = path.join(parent.dir, `pgtls-bench-${process.pid}-${++seq}`);
  try {
    mkdirSync(dir);
    return { dir, peakFile: parent.peakFile };
  } catch {
    return null;
  }
}

/** End what the command left in its cgroup (our own processes, by pid), then remove the cgroup. */
async function dropCgroup(dir: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    let pids: number[] = [];
    try {
      pids = readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
    } catch {
      return;
    }
    if (pids.length === 0) {
      try {
        rmdirSync(dir);
      } catch {
        /* a process may just have left; try again */
      }
      if (!existsSync(dir)) return;
    }
    for (const pid of pids) {
      try {
        process.kill(pid, i < 20 ? 'SIGTERM' : 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Run cmd args under GNU time (inside a fresh memory cgroup when possible) and measure it. */
export async function measure(cmd: string, args: string[], opts: MeasureOptions): Promise<Measurement> {
  if (!existsSync(GNU_TIME)) throw new Error(`${GNU_TIME} is missing (Debian package "time"; lab/install-deps.sh installs it)`);
  const timeFile = `${opts.logFile}.time`;
  rmSync(timeFile, { force: true });
  const cg = makeCgroup();
  // The shell joins the cgroup, then becomes GNU time, which runs the command: all of it is measured.
  const script = 'if [ -n "$1" ]; then echo $$ > "$1/cgroup.procs"; fi; shift; exec "$@"';
  const argv = ['-c', script, 'sh', cg?.dir ?? '', GNU_TIME, '-f', '%e %U %S %M', '-o', timeFile, cmd, ...args];
  const loadBefore = loadavg().map((l) => Number(l.toFixed(2)));
  writeFileSync(opts.logFile, `$ ${cmd} ${args.join(' ')}\n`);
  const exitCode = await new Promise<number>((resolve, reject) => {
    const out = openAppend(opts.logFile);
    const child = spawn('/bin/sh', argv, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', out, out] });
    closeSync(out);
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? (signal ? 128 + 9 : 1));
    });
  });
  const loadAfter = loadavg().map((l) => Number(l.toFixed(2)));
  let treePeakMB: number | null = null;
  if (cg) {
    try {
      treePeakMB = round(Number(readFileSync(path.join(cg.dir, cg.peakFile), 'utf8').trim()) / 2 ** 20);
    } catch {
      treePeakMB = null;
    }
    await dropCgroup(cg.dir);
  }
  const fields = readTimeFile(timeFile);
  const [wall, user, sys, rssKb] = fields;
  if (wall === undefined || user === undefined || sys === undefined || rssKb === undefined) {
    throw new Error(`GNU time wrote no figures for ${cmd} (see ${opts.logFile})`);
  }
  return {
    wallS: wall,
    userS: user,
    sysS: sys,
    cpuS: round(user + sys),
    maxRssMB: round(rssKb / 1024),
    treePeakMB,
    exitCode,
    loadBefore,
    loadAfter,
  };
}

/** GNU time's last line holds the figures (a line before it may say "Command exited with non-zero status"). */
function readTimeFile(file: string): number[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const last = text.trim().split('\n').pop() ?? '';
  const nums = last.split(/\s+/).map(Number);
  return nums.length === 4 && nums.every(Number.isFinite) ? nums : [];
}

/** A plain fd: the child writes straight to the log, nothing flows through this process. */
function openAppend(file: string): number {
  return openSync(file, 'a');
}

export function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
