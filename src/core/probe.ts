/**
 * A read-only command a task will run (ModuleDef.probes, .sql, or the last run's replay record), and
 * what one run leaves the next to ask with its lock. Shared by the executor (host-session.ts), the
 * connection's first round trip (first-trip.ts) and the record on the controller (replay-cache.ts).
 */
import type { ShellCommand } from '../lib/sh.js';

/** What one run leaves the next on this host to ask with its lock (HostSession.replayRecord); command texts, never a secret. */
export interface ReplayRecord {
  reads: { path: string; user?: string }[];
  probes: { cmd: string; user?: string }[];
}

/** A read-only command a task will run, as the shell's user unless it names another. */
export interface Probe {
  cmd: ShellCommand;
  user?: string;
}

export function probeKey(cmd: ShellCommand, user?: string): string {
  return `${user ?? ''}\0${cmd.text}`;
}

