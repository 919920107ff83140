import { hostname } from 'node:os';
import { TaskError } from '../lib/errors.js';
import { RemoteCommandError, type ExecResult } from '../lib/transport.js';
import type { HostShell } from './host-shell.js';
import { diropScript, hostScript } from './scripts.js';
import { sh, type ShellCommand } from '../lib/sh.js';

/** How the lock names this run to another one: the controller's host and process. */
export function lockHolderName(): string {
  return `${hostname()}:pid${process.pid}`;
}

export interface LockTaken {
  /** What lock.sh printed (records a killed run left unsigned: the caller signs them). */
  stdout: Buffer;
  /** The dead run whose lock was taken over (lock.sh printed it), if any. */
  stale?: string;
  /** Runs whose leftovers (rollback copies, temp files) were removed. */
  cleaned: string[];
}

/**
 * One pgtls run at a time per host (lock.sh): a lock in the state directory naming the run, its
 * controller, and the host process that lives as long as the run's connection; a lock whose process
 * is gone is stale and taken over, and the dead run's rollback copies are removed, never restored.
 */
export async function lockHost(shell: HostShell, stateDir: string, runId: string, who = lockHolderName()): Promise<LockTaken> {
  try {
    return lockTaken(await shell.exec(lockCommand(stateDir, runId, who)));
  } catch (e) {
    throw lockError(e);
  }
}

/** lock.sh's command line (also sent in a batch with the run's first reads: HostSession.begin). */
export function lockCommand(stateDir: string, runId: string, who = lockHolderName()): ShellCommand {
  return sh`sh -c ${hostScript('lock')} pgtls-lock ${diropScript()} ${stateDir} ${runId} ${who}`;
}

/** What lock.sh's output says. */
export function lockTaken(res: ExecResult): LockTaken {
  const out = res.stdout.toString('utf8');
  const stale = /^stale-lock (.*)$/m.exec(out)?.[1];
  return { stdout: res.stdout, ...(stale ? { stale } : {}), cleaned: [...out.matchAll(/^cleaned (.*)$/gm)].map((m) => m[1]!) };
}

/** lock.sh's refusal (another live run, a state directory refused) as the error the report shows. */
export function lockError(e: unknown): unknown {
  if (e instanceof RemoteCommandError) {
    const why = /pgtls: (.*)/.exec(e.result.stderr.toString('utf8'))?.[1];
    if (why) return new TaskError(why);
  }
  return e;
}

export async function unlockHost(shell: HostShell, stateDir: string, runId: string): Promise<void> {
  await shell.exec(unlockCommand(stateDir, runId));
}

export function unlockCommand(stateDir: string, runId: string): ShellCommand {
  return sh`sh -c ${hostScript('unlock')} pgtls-unlock ${stateDir} ${runId}`;
}
