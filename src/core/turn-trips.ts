/**
 * The executor's reads and probes, a round trip per turn of the event loop (src/core/host-session.ts
 * owns one per host): what a plan asks in one go (its Promise.all) goes to the host in ONE batch.sh,
 * and a read that misses the cache brings the rest of the run's read set along (read-many.sh). Also
 * the read cache itself, and the limits of both.
 */
import type { FileState } from '../lib/plan-types.js';
import type { ShellCommand } from '../lib/sh.js';
import { RemoteCommandError, type ExecOptions, type ExecResult } from '../lib/transport.js';
import { asUserInBatch, execBatch } from '../remote/batch.js';
import { parseReadMany, readManyCommand, readRemoteFile } from '../remote/files.js';
import { mergeSqlReads } from '../remote/sql-merge.js';
import type { HostShell } from '../remote/host-shell.js';

/** At most this many files in one batched read (what was asked, then the read set). */
export const MAX_BATCH_READ = 64;
/** A file of the read set larger than this (when last read) is not read again along with others: only when asked. */
export const MAX_PREFETCH_SIZE = 256 * 1024;

/** The read cache's (and the read set's) key: a file as read by a user ('' = the shell's own). */
export function readKey(path: string, user?: string): string {
  return `${user ?? ''}\0${path}`;
}

/** Files to read in one round trip, by the user each is read as: one read-many.sh each, at most MAX_BATCH_READ files (the first round trip's, the lock's). */
export function readsByUser(files: Iterable<{ path: string; user?: string }>): { user?: string; paths: string[] }[] {
  const by = new Map<string | undefined, string[]>();
  for (const f of files) {
    const list = by.get(f.user) ?? [];
    if (list.length < MAX_BATCH_READ && !list.includes(f.path)) by.set(f.user, [...list, f.path]);
  }
  return [...by].map(([user, paths]) => (user === undefined ? { paths } : { user, paths }));
}

/** A file the run has read or expects to read (its size when last read decides whether it comes along with others). */
export interface ReadSetEntry {
  path: string;
  user?: string;
  size?: number;
}

/** What the trips need of their host's session. */
export interface TripHost {
  shell(): HostShell;
  readonly readSet: ReadonlyMap<string, ReadSetEntry>;
  readonly reads: ReadCache;
  /** Queries to ask along with the next round trip, for a later task (HostSession.askAhead); each told its answer. */
  takeAhead?(): { cmd: ShellCommand; user?: string; done: (r: ExecResult | Error) => void }[];
}

export class TurnTrips {
  /**
   * What the current turn of the event loop asks of the host (a plan's Promise.all): its reads, by
   * user, and its probes go in ONE round trip (batch.sh) when there is more than one.
   */
  private trip: Trip | null = null;

  constructor(private readonly host: TripHost) {}

  /** The round trip the current turn of the event loop fills (sent once the turn's requests are in, not after a delay). */
  private currentTrip(): Trip {
    if (!this.trip) {
      const trip: Trip = { shell: this.host.shell(), reads: new Map(), probes: [] };
      this.trip = trip;
      setImmediate(() => void this.sendTrip(trip));
    }
    return this.trip;
  }

  /**
   * A command that must run before everything else of the current turn's round trip (the held writes'
   * commit, which the turn's questions wait for): first and alone on the host; when it fails, nothing
   * else of the trip runs (those get an error). Undefined when the turn's trip is not this shell's.
   */
  lead(cmd: ShellCommand, stdin?: Buffer, opts: { okCodes?: number[]; timeoutMs?: number } = {}): Promise<ExecResult> | undefined {
    const t = this.currentTrip();
    if (t.shell !== this.host.shell() || t.leader) return undefined;
    const d = deferred<ExecResult>();
    t.leader = { cmd, okCodes: opts.okCodes ?? [0], ...(stdin === undefined ? {} : { stdin }), ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }), d };
    return d.promise;
  }

  /** Whether a probe asked now goes in the current turn's round trip (else it is sent on its own, at once). */
  joins(exec: Pick<ExecOptions, 'user'>): boolean {
    const shell = this.host.shell();
    const user = exec.user ?? shell.effectiveUser;
    return (user === shell.effectiveUser || (shell.effectiveUser === 'root' && shell.loginUser === 'root')) && (this.trip === null || this.trip.shell === shell);
  }

  /** A read of the current turn's round trip. */
  read(path: string, user?: string): Promise<FileState | null> {
    const t = this.currentTrip();
    const u = user ?? '';
    let q = t.reads.get(u);
    if (!q) t.reads.set(u, (q = { ...(user === undefined ? {} : { user }), waiting: new Map() }));
    let d = q.waiting.get(path);
    if (!d) q.waiting.set(path, (d = deferred()));
    return d.promise;
  }

  /**
   * One round trip for a turn's requests: per user, the files asked and every other file of the read
   * set not in the cache (read-many.sh), and the probes; a single request goes alone, as before.
   */
  private async sendTrip(t: Trip): Promise<void> {
    if (this.trip === t) this.trip = null;
    const generation = this.host.reads.generation;
    // (asked ahead for the next task: only what this trip's shell runs, as it runs its own questions)
    const ahead: TripUnit[] = (t.shell === this.host.shell() ? (this.host.takeAhead?.() ?? []) : [])
      .filter((a) => this.joins(a.user === undefined ? {} : { user: a.user }))
      .map((a) => ({ cmd: a.cmd, ...(a.user === undefined ? {} : { user: a.user }), okCodes: [], done: a.done }));
    const units: TripUnit[] = [];
    for (const [u, q] of t.reads) {
      const asked = [...q.waiting.keys()];
      const more = [...this.host.readSet.entries()]
        .filter(([key, f]) => (f.user ?? '') === u && !q.waiting.has(f.path) && !this.host.reads.has(key) && (f.size ?? 0) <= MAX_PREFETCH_SIZE)
        .map(([, f]) => f.path)
        .slice(0, Math.max(0, MAX_BATCH_READ - asked.length));
      const settleReads = (got: Map<string, FileState | null>) => {
        // what was read for later tasks is kept only if nothing may have changed the files meanwhile
        if (this.host.reads.generation === generation)
          for (const p of more) if (got.has(p)) this.host.reads.memo(readKey(p, q.user), () => Promise.resolve(got.get(p)!));
        for (const [p, d] of q.waiting) {
          // not in the batch's answer (a refusal, too big): read on its own, for its own error
          if (got.has(p)) d.resolve(got.get(p)!);
          else readRemoteFile(t.shell, p, q.user).then(d.resolve, d.reject);
        }
      };
      if (asked.length + more.length === 1 && t.reads.size + t.probes.length === 1 && !t.leader && ahead.length === 0) {
        // alone: read.sh, exactly as a read always went
        const [p, d] = [...q.waiting][0]!;
        readRemoteFile(t.shell, p, q.user).then(d.resolve, d.reject);
        return;
      }
      const paths = [...asked, ...more];
      units.push({
        cmd: readManyCommand(paths),
        ...(q.user === undefined ? {} : { user: q.user }),
        okCodes: [0],
        done: (r) => settleReads(r instanceof Error ? new Map() : parseReadMany(r.stdout, paths)),
      });
    }
    for (const p of t.probes) units.push({ ...p, done: (r) => (r instanceof Error ? p.d.reject(r) : p.d.resolve(r)) });
    units.push(...ahead);
    const leader = t.leader;
    const lead: TripUnit | undefined = leader && { ...leader, done: (r) => (r instanceof Error ? leader.d.reject(r) : leader.d.resolve(r)) };
    if (lead && units.length === 0) units.push(lead);
    if (units.length === 0) return;
    if (units.length === 1 && (!lead || units[0] === lead)) {
      // one command: on its own, exactly as before
      const u = units[0]!;
      const { cmd, okCodes, user, stdin, timeoutMs } = u;
      const opts = { okCodes, ...(user === undefined ? {} : { user }), ...(stdin === undefined ? {} : { stdin }), ...(timeoutMs === undefined ? {} : { timeoutMs }) };
      await t.shell.exec(cmd, opts).then(u.done, (e: unknown) => u.done(e instanceof Error ? e : new Error(String(e))));
      return;
    }
    const { send, expand } = mergeSqlReads(units, (u) => u.okCodes);
    let results: (ExecResult | Error | undefined)[];
    try {
      results = await execBatch(
        t.shell,
        [...(lead ? [lead] : []), ...send.map((u) => ({ ...u, cmd: asUserInBatch(t.shell, u.cmd, u.user) }))],
        // a plan's questions (reads and queries) at once on the host; after the commit they wait for,
        // when there is one: it runs first and alone, and when it fails nothing else runs
        lead ? 'first-parallel' : 'parallel',
      );
    } catch (e) {
      for (const u of [...(lead ? [lead] : []), ...units]) u.done(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    if (lead) lead.done(results.shift() ?? new Error('the host did not answer the command the batch began with'));
    results = expand(results);
    const missing = lead ? 'the host did not run this command: the one before it in its batch failed' : 'the host did not answer this command of the batch';
    for (const [i, u] of units.entries()) u.done(results[i] ?? new Error(missing));
  }

  /**
   * A probe joins the turn's round trip when it can run inside it: as the shell's own user, or (root
   * running the batch) as another user through runuser; its stdin (a password for psql) comes
   * through the batch's stdin. Anything else goes alone.
   */
  probe(cmd: ShellCommand, exec: ExecOptions): Promise<ExecResult> {
    if (!this.joins(exec)) return this.host.shell().exec(cmd, exec);
    const t = this.currentTrip();
    const d = deferred<ExecResult>();
    const { okCodes = [0], user: as, stdin, timeoutMs } = exec;
    t.probes.push({ cmd, okCodes, ...(as === undefined ? {} : { user: as }), ...(stdin === undefined ? {} : { stdin }), ...(timeoutMs === undefined ? {} : { timeoutMs }), d });
    return d.promise;
  }
}

interface TripUnit {
  cmd: ShellCommand;
  user?: string;
  okCodes: number[];
  stdin?: ExecOptions['stdin'];
  timeoutMs?: number;
  done: (r: ExecResult | Error) => void;
}

/** One turn's requests of the host: the command they wait for (a commit), reads by user ('' = the shell's), probes. */
interface Trip {
  shell: HostShell;
  leader?: Omit<TripUnit, 'done'> & { d: Deferred<ExecResult> };
  reads: Map<string, { user?: string; waiting: Map<string, Deferred<FileState | null>> }>;
  probes: (Omit<TripUnit, 'done'> & { d: Deferred<ExecResult> })[];
}

export /**
 * The executor's read cache: files as the host has them. `generation` changes whenever it is cleared
 * (something may have changed the files), so a batched read still in flight does not fill it with
 * what it read before.
 */
class ReadCache {
  private readonly map = new Map<string, Promise<unknown>>();
  generation = 0;
  has(key: string): boolean {
    return this.map.has(key);
  }
  /** The file as read already, or undefined (never a round trip). */
  get(key: string): Promise<FileState | null> | undefined {
    return this.map.get(key) as Promise<FileState | null> | undefined;
  }
  /** The file as last read, by whichever user read it (the same file: lib.sh resolves the same path). */
  peekPath(path: string): Promise<FileState | null> | undefined {
    for (const [key, p] of this.map) if (key.slice(key.indexOf('\0') + 1) === path) return p as Promise<FileState | null>;
    return undefined;
  }
  memo(key: string, compute: () => Promise<FileState | null>): Promise<FileState | null> {
    return memoize(this.map, key, compute);
  }
  clear(): void {
    this.map.clear();
    this.generation++;
  }
  /** Forgets these files, as read by any user (what was read of other files still holds). */
  forgetPaths(paths: ReadonlySet<string>): void {
    for (const key of [...this.map.keys()]) if (paths.has(key.slice(key.indexOf('\0') + 1))) this.map.delete(key);
    this.generation++;
  }
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

export function memoize<T>(cache: Map<string, Promise<unknown>>, key: string, compute: () => Promise<T>): Promise<T> {
  let p = cache.get(key) as Promise<T> | undefined;
  if (!p) {
    p = compute();
    cache.set(key, p);
    p.catch(() => cache.delete(key));
  }
  return p;
}

