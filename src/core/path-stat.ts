/**
 * The `stat` fact of PlanContext: times, sizes and sums of paths, answered from the executor's overlay
 * first (content this run planned and has not written to the host yet) and from the host for the rest.
 * The real and the dry executor share this code, so both modes give the same answers for the same host:
 * that is what keeps a module from planning one thing under --check and another in a real run.
 */
import { createHash } from 'node:crypto';
import type { ExecOptions, ExecResult } from '../lib/transport.js';
import { sh, type ShellCommand } from '../lib/sh.js';
import type { FileState, PathStat } from '../lib/plan-types.js';

export type Probe = (cmd: ShellCommand, opts?: ExecOptions) => Promise<ExecResult>;

/** A planned, unwritten file: newer than anything on the host (it is written after every load time seen now). */
export function pendingStat(content: Buffer): PathStat {
  return { mtime: Infinity, ctime: Infinity, size: content.length, sha256: createHash('sha256').update(content).digest('hex'), pending: true };
}

/** "MTIME CTIME SIZE NAME" lines; `bump` is added to whole-second times (see statOnHost). */
export function parseStatLines(out: string, bump = 0): Map<string, PathStat> {
  const m = new Map<string, PathStat>();
  for (const line of out.split('\n')) {
    const parts = /^(\S+) (\S+) (\d+) (.+)$/.exec(line);
    if (!parts) continue;
    const mtime = Number(parts[1]);
    const ctime = Number(parts[2]);
    if (!Number.isFinite(mtime) || !Number.isFinite(ctime)) continue;
    m.set(parts[4]!, { mtime: mtime + bump, ctime: ctime + bump, size: Number(parts[3]) });
  }
  return m;
}

/**
 * Nanosecond times when the host's stat can print them (%.9Y); an old coreutils prints whole seconds,
 * then a file written in the same second as a reload counts as newer (one reload too many, never one too few).
 */
export async function statOnHost(probe: Probe, paths: string[], opts: { user?: string; sha256?: boolean } = {}): Promise<Map<string, PathStat>> {
  if (paths.length === 0) return new Map();
  const run = async (fmt: string) => (await probe(sh`stat -L -c ${fmt} -- ${paths}`, { okCodes: [0, 1], user: opts.user })).stdout.toString('utf8');
  let found = parseStatLines(await run('%.9Y %.9Z %s %n'));
  if (found.size === 0) found = parseStatLines(await run('%Y %Z %s %n'), 0.999999999);
  if (opts.sha256 && found.size > 0) {
    const present = paths.filter((p) => found.has(p));
    const out = (await probe(sh`sha256sum -- ${present}`, { okCodes: [0, 1], user: opts.user })).stdout.toString('utf8');
    for (const l of out.split('\n')) {
      const st = found.get(l.slice(66));
      if (st && /^[0-9a-f]{64}$/.test(l.slice(0, 64))) st.sha256 = l.slice(0, 64);
    }
  }
  return found;
}

/** The overlay's answer for planned paths, the host's (one probe) for the others; paths that do not exist are absent. */
export async function statWithOverlay(
  overlay: ReadonlyMap<string, FileState | null>,
  paths: string[],
  onHost: (rest: string[]) => Promise<Map<string, PathStat>>,
): Promise<Map<string, PathStat>> {
  // The overlay's answers are taken before the host is asked: asking may commit the pending writes
  // (a probe of the host waits for them), which empties the overlay of exactly these paths.
  const planned = new Map<string, PathStat | null>();
  for (const p of new Set(paths)) if (overlay.has(p)) planned.set(p, overlay.get(p) ? pendingStat(overlay.get(p)!.content) : null);
  // all of them, planned or not: the same question whatever this run planned, so the next run (the
  // replay record) asks it in its first round trip; the overlay's answers win
  const host = await onHost([...new Set(paths)]);
  const out = new Map<string, PathStat>();
  for (const p of paths) {
    const st = planned.has(p) ? planned.get(p) : host.get(p);
    if (st) out.set(p, st);
  }
  return out;
}
