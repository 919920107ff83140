/**
 * A read-only command a task will run (ModuleDef.probes, .sql, or the last run's replay record), and
 * what one run leaves the next to ask with its lock. Shared by the executor (host-session.ts), the
 * connection's first round trip (first-trip.ts) and the record on the controller (replay-cache.ts).
 */
import { createHash } from 'node:crypto';
import { Secret } from '../lib/secret.js';
import { ShellCommand } from '../lib/sh.js';
import type { ExecOptions } from '../lib/transport.js';

/**
 * What one run leaves the next on this host to ask with its lock (HostSession.replayRecord); command
 * texts, never a secret. A login's password is named, not kept: `stdinVar` is the host's variable
 * whose value its stdin was, and the next run sends that variable's value as it is then.
 */
export interface ReplayRecord {
  reads: { path: string; user?: string }[];
  probes: RecordedProbe[];
}

export interface RecordedProbe {
  cmd: string;
  user?: string;
  stdinVar?: string;
}

/** A read-only command a task will run, as the shell's user unless it names another; a login's password on stdin. */
export interface Probe {
  cmd: ShellCommand;
  user?: string;
  stdin?: Secret;
  timeoutMs?: number;
  /** 'host': its answer depends on this host's own files alone (ModuleDef.probes), so what other hosts change leaves it standing. */
  scope?: 'host';
}

/** A recorded probe as this run asks it: a login gets its variable's value now (`secret`), or is not asked (null) when that is gone. */
export function replayedProbe(p: RecordedProbe, secret: (name: string) => Secret | undefined = () => undefined): Probe | null {
  const stdin = p.stdinVar === undefined ? undefined : secret(p.stdinVar);
  if (p.stdinVar !== undefined && !stdin) return null;
  return { cmd: new ShellCommand(p.cmd), ...(p.user === undefined ? {} : { user: p.user }), ...(stdin ? { stdin } : {}) };
}

/** Which queries are the same: command text, user, and stdin (by a digest: the key is kept in memory, never shown). */
export function probeKey(cmd: ShellCommand, user?: string, stdin?: ExecOptions['stdin']): string {
  const input = stdin === undefined ? '' : createHash('sha256').update(stdin instanceof Secret ? stdin.reveal() : stdin).digest('hex');
  return `${user ?? ''}\0${cmd.text}\0${input}`;
}

