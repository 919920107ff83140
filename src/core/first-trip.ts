/**
 * The connection's first round trip (batch.sh): the host's names and addresses, the discovery
 * commands its facts start with (FactProvider.probe), and, when the run can take its lock right
 * away (a real run logged in as root), the lock followed by everything the last run here read and
 * asked (the replay record, src/core/replay-cache.ts). On a host that has not changed since, that
 * one round trip answers every question the run's tasks will ask: a no-change re-run is this, then
 * the unlock.
 */
import { MAX_BATCH_BYTES, asUserInBatch, batchBytes, batchScriptBytes, execBatch, queryInBatch, type BatchCommand } from '../remote/batch.js';
import { readsByUser } from './turn-trips.js';
import type { HostShell } from '../remote/host-shell.js';
import { parseReadMany, readManyCommand } from '../remote/files.js';
import { mergeSqlReads } from '../remote/sql-merge.js';
import { lockError, lockTaken, type LockTaken } from '../remote/lock.js';
import { RemoteCommandError, type ExecResult } from '../lib/transport.js';
import { ShellCommand, sh } from '../lib/sh.js';
import type { FileState, HostFacts } from '../lib/plan-types.js';
import { replayedProbe, type Probe, type ReplayRecord } from './probe.js';
import type { Secret } from '../lib/secret.js';

export interface FirstTrip {
  facts: HostFacts;
  /** The discovery commands' answers (every exit code: the query's own okCodes decide). */
  answers: { cmd: ShellCommand; result: ExecResult }[];
  /** With the lock: what lock.sh said, and the replayed reads and probes as their users ran them. */
  locked?: LockTaken;
  /** The lock was refused (another run holds it): the error the host's first task reports, as before. */
  lockRefused?: unknown;
  reads: { user?: string; files: Map<string, FileState | null> }[];
  replayed: { probe: Probe; result: ExecResult }[];
}

export async function firstTrip(
  shell: HostShell,
  loginUser: string,
  probes: readonly ShellCommand[],
  /** `secret`: a host variable's value, for a replayed login that names the variable its password is. */
  withLock?: { lock: ShellCommand; replay: ReplayRecord; secret?: (name: string) => Secret | undefined },
): Promise<FirstTrip> {
  const names = sh`hostname; hostname -f 2>/dev/null || hostname; (hostname -I 2>/dev/null || ip -o addr show 2>/dev/null | awk '{print $4}' | cut -d/ -f1) | tr ' ' '\n'`;
  const trip: FirstTrip = { facts: { hostname: '', fqdn: '', addresses: [], loginUser }, answers: [], reads: [], replayed: [] };
  if (probes.length === 0 && !withLock) return { ...trip, facts: hostFacts((await shell.exec(names)).stdout, loginUser) };

  const as = (cmd: ShellCommand, user?: string) => asUserInBatch(shell, cmd, user);
  const reads = readsByUser(withLock?.replay.reads ?? []);
  // the whole batch is one command line: the replayed probes come along only as far as it stays
  // under MAX_BATCH_BYTES; the rest are asked with the tasks
  const fixed = [...(withLock ? [withLock.lock] : []), names, ...probes, ...reads.map((r) => as(readManyCommand(r.paths), r.user))];
  let room = MAX_BATCH_BYTES - batchScriptBytes() - fixed.reduce((n, c) => n + batchBytes(c), 0);
  const replay: Probe[] = [];
  for (const p of withLock?.replay.probes ?? []) {
    const probe = replayedProbe(p, withLock?.secret);
    if (!probe) continue; // (a login whose variable is gone: asked when asked)
    const size = batchBytes(as(probe.cmd, probe.user));
    if (size > room) continue;
    room -= size;
    replay.push(probe);
  }
  // (the replayed SQL reads of one server: one psql session, src/remote/sql-merge.ts)
  const merged = mergeSqlReads(replay, () => []);
  const batch: BatchCommand[] = [
    ...(withLock ? [{ cmd: withLock.lock }] : []),
    { cmd: names },
    ...probes.map((cmd) => queryInBatch(shell, { cmd })),
    ...reads.map((r) => ({ cmd: as(readManyCommand(r.paths), r.user) })),
    ...merged.send.map((p) => queryInBatch(shell, p)),
  ];
  // after the lock, everything is a read or a query: at once on the host
  const results = await execBatch(shell, batch, withLock ? 'first-parallel' : 'parallel');
  if (withLock) {
    const locked = results.shift();
    // refused: nothing after the lock ran; the facts are asked again without it, and the refusal is
    // the host's failure when its tasks would begin (what another run holds is not this run's to read)
    if (!locked || locked instanceof Error) return { ...(await firstTrip(shell, loginUser, probes)), lockRefused: lockError(locked ?? new Error('the lock script did not answer')) };
    trip.locked = lockTaken(locked);
  }
  const got = results.shift();
  if (!got) throw new Error('the host did not answer its first command');
  if (got instanceof Error) throw got;
  trip.facts = hostFacts(got.stdout, loginUser);
  for (const cmd of probes) {
    const r = results.shift();
    if (r instanceof RemoteCommandError) trip.answers.push({ cmd, result: r.result });
  }
  for (const { user, paths } of reads) {
    const r = results.shift();
    if (r && !(r instanceof Error)) trip.reads.push({ ...(user === undefined ? {} : { user }), files: parseReadMany(r.stdout, paths) });
  }
  const answered = merged.expand(results.splice(0, merged.send.length));
  for (const [i, probe] of replay.entries()) {
    const r = answered[i];
    if (r instanceof RemoteCommandError) trip.replayed.push({ probe, result: r.result });
  }
  return trip;
}

function hostFacts(out: Buffer, loginUser: string): HostFacts {
  const [hostname = '', fqdn = '', ...addrs] = out.toString('utf8').split('\n').map((l) => l.trim());
  return { hostname, fqdn: fqdn || hostname, addresses: addrs.filter(Boolean), loginUser };
}
