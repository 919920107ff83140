import { hostname } from 'node:os';
import { TaskError } from '../lib/errors.js';
import { RemoteCommandError } from '../lib/transport.js';
import type { HostShell } from './host-shell.js';
import { diropScript, hostScript } from './scripts.js';
import { sh } from '../lib/sh.js';

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
    const res = await shell.exec(sh`sh -c ${hostScript('lock')} pgtls-lock ${diropScript()} ${stateDir} ${runId} ${who}`);
    const out = res.stdout.toString('utf8');
    const stale = /^stale-lock (.*)$/m.exec(out)?.[1];
    return { stdout: res.stdout, ...(stale ? { stale } : {}), cleaned: [...out.matchAll(/^cleaned (.*)$/gm)].map((m) => m[1]!) };
  } catch (e) {
    if (e instanceof RemoteCommandError) {
      const why = /pgtls: (.*)/.exec(e.result.stderr.toString('utf8'))?.[1];
      if (why) throw new TaskError(why);
    }
    throw e;
  }
}

export async function unlockHost(shell: HostShell, stateDir: string, runId: string): Promise<void> {
  await shell.exec(sh`sh -c ${hostScript('unlock')} pgtls-unlock ${stateDir} ${runId}`);
}
