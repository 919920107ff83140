import { TaskError, errorMessage } from './errors.js';
import type { Action, ExecAction, FileState, HostFacts, PlanContext, VerifyAction } from './types.js';
import type { ExecOptions, ExecResult } from '../remote/connection.js';
import {
  dropRollback,
  readRemoteFile,
  removeRemoteFile,
  restoreFromRollback,
  rollbackPathFor,
  writeRemoteFile,
} from '../remote/files.js';
import { HostShell, type BecomeSettings } from '../remote/host-shell.js';
import { preparePaths, recordPaths, type StateStore } from '../remote/state.js';
import type { Transport } from '../remote/connection.js';
import type { ShellCommand } from '../remote/sh.js';

/**
 * Everything pgtls holds for one host during a run: its shell, its facts and
 * the single executor that changes it. In --check the executor writes into an
 * in-memory overlay instead of the host, so later tasks plan against the state
 * earlier tasks would have left, and the host is never touched.
 */
export class HostSession {
  private readonly overlay = new Map<string, FileState | null>();
  private readonly memos = new Map<string, Promise<unknown>>();
  private readonly stableMemos = new Map<string, Promise<unknown>>();
  /** Files changed on the host in this run, in order, with their rollback copies. */
  private readonly journal: { path: string; rollback: string }[] = [];

  private shell: HostShell;

  constructor(
    readonly name: string,
    private readonly transport: Transport,
    readonly loginUser: string,
    readonly facts: HostFacts,
    readonly check: boolean,
    private readonly becomeSettings: BecomeSettings = { user: 'root' },
  ) {
    this.shell = new HostShell(transport, loginUser, false, becomeSettings);
  }

  /** Tasks choose their privileges (become, become_user); the connection stays the same. */
  useBecome(become: boolean, user?: string): void {
    const settings = user ? { ...this.becomeSettings, user } : this.becomeSettings;
    if (this.shell.become !== become || this.shell.becomeSettings.user !== settings.user)
      this.shell = new HostShell(this.transport, this.loginUser, become, settings);
  }

  context(vars: Record<string, unknown>, warn: (m: string) => void): PlanContext {
    return {
      host: this.name,
      vars,
      facts: this.facts,
      check: this.check,
      effectiveUser: this.shell.effectiveUser,
      readFile: (path, opts) => this.readFile(path, opts?.user),
      query: (cmd, opts) => this.query(cmd, opts),
      memo: <T>(key: string, compute: () => Promise<T>) => memoize(this.memos, key, compute),
      memoStable: <T>(key: string, compute: () => Promise<T>) => memoize(this.stableMemos, key, compute),
      warn,
    };
  }

  private async readFile(path: string, user?: string): Promise<FileState | null> {
    if (this.overlay.has(path)) return this.overlay.get(path) ?? null;
    return readRemoteFile(this.shell, path, user);
  }

  private query(cmd: ShellCommand, opts?: ExecOptions): Promise<ExecResult> {
    return this.shell.exec(cmd, opts);
  }

  /** The one place that changes a host. */
  async apply(actions: Action[], ctx: PlanContext): Promise<void> {
    for (const [i, action] of actions.entries()) {
      this.memos.clear();
      switch (action.kind) {
        case 'write': {
          if (this.check) {
            const prev = await this.readFile(action.path);
            this.overlay.set(action.path, {
              content: action.content,
              mode: action.mode ?? prev?.mode ?? '644',
              owner: action.owner ?? prev?.owner ?? this.shell.effectiveUser,
              group: action.group ?? prev?.group ?? this.shell.effectiveUser,
            });
            break;
          }
          const rollback = this.remember(action.path);
          await writeRemoteFile(this.shell, action.path, action.content, {
            ...action,
            rollbackPath: rollback,
            state: stateStore(ctx.vars),
          });
          break;
        }
        case 'remove':
          if (this.check) {
            this.overlay.set(action.path, null);
            break;
          }
          await removeRemoteFile(this.shell, action.path, this.remember(action.path), stateStore(ctx.vars));
          break;
        case 'exec': {
          if (this.check) break; // cannot be simulated; the plan already says what would run
          // An exec that a verify guards (a reload, a restart) is part of what the verify checks:
          // when the command itself fails, roll back and recover exactly as a failed check would.
          const guard = actions.slice(i + 1).find((a): a is VerifyAction => a.kind === 'verify');
          if (!guard) {
            await this.runExec(action, ctx);
            break;
          }
          try {
            await this.runExec(action, ctx);
          } catch (e) {
            await this.verify(guard.description, () => Promise.reject(e), guard.recover, ctx);
          }
          break;
        }
        case 'verify':
          if (this.check) break;
          await this.verify(action.description, action.check, action.recover, ctx);
          break;
      }
    }
  }

  private async runExec(action: ExecAction, ctx: PlanContext): Promise<void> {
    let res: ExecResult;
    const touches = action.touches ?? [];
    const store = stateStore(ctx.vars);
    await preparePaths(this.shell, store, touches.map((path) => ({ path, rollback: this.remember(path) })));
    try {
      res = await this.shell.exec(action.cmd, {
        stdin: action.stdin,
        user: action.user,
        okCodes: action.okCodes,
        timeoutMs: action.timeoutMs,
      });
    } catch (e) {
      throw new TaskError(`${action.description}: ${errorMessage(e)}`);
    }
    await recordPaths(this.shell, store, touches);
    if (action.then) await this.apply(await action.then(res.stdout), ctx);
  }

  private async verify(
    description: string,
    check: (ctx: PlanContext) => Promise<void>,
    recover: ExecAction | undefined,
    ctx: PlanContext,
  ): Promise<void> {
    try {
      await check(ctx);
      // The new state is proven good: it becomes the state a later failure rolls back to.
      await dropRollback(this.shell, this.journal.map((j) => j.rollback));
      this.journal.length = 0;
      return;
    } catch (e) {
      const why = errorMessage(e);
      await this.rollback();
      let recovered = 'previous files restored';
      if (recover) {
        try {
          await this.runExec(recover, ctx);
          recovered += `, ${recover.description} done`;
        } catch (re) {
          recovered += `, but ${recover.description} failed: ${errorMessage(re)}`;
        }
      }
      throw new TaskError(`${description} failed: ${why} (${recovered})`);
    }
  }

  private remember(path: string): string {
    const existing = this.journal.find((j) => j.path === path);
    if (existing) return existing.rollback;
    const rollback = rollbackPathFor(path);
    this.journal.push({ path, rollback });
    return rollback;
  }

  /** Restores every file changed in this run, newest first. */
  async rollback(): Promise<void> {
    for (const j of [...this.journal].reverse()) await restoreFromRollback(this.shell, j.path, j.rollback);
    this.journal.length = 0;
    this.memos.clear();
  }

  /** At the end of a run the rollback copies are no longer needed. */
  async finish(): Promise<void> {
    if (!this.check) await dropRollback(this.shell, this.journal.map((j) => j.rollback)).catch(() => undefined);
    await this.shell.close();
  }
}

function memoize<T>(cache: Map<string, Promise<unknown>>, key: string, compute: () => Promise<T>): Promise<T> {
  let p = cache.get(key) as Promise<T> | undefined;
  if (!p) {
    p = compute();
    cache.set(key, p);
    p.catch(() => cache.delete(key));
  }
  return p;
}

/** Where originals are remembered for an uninstall (vars pgtls_state_dir, pgtls_state_owner, pgtls_track_originals). */
export function stateStore(vars: Readonly<Record<string, unknown>>): StateStore | null {
  const track = vars.pgtls_track_originals;
  if (track === false || track === 'false' || track === 'no') return null;
  const dir = typeof vars.pgtls_state_dir === 'string' ? vars.pgtls_state_dir : DEFAULT_STATE_DIR;
  const owner = typeof vars.pgtls_state_owner === 'string' ? vars.pgtls_state_owner : '';
  return { dir, owner };
}

export const DEFAULT_STATE_DIR = '/var/lib/pgtls/state';
