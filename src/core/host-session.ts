import { randomBytes } from 'node:crypto';
import { TaskError, errorMessage } from './errors.js';
import type { Action, ExecAction, FileState, HostFacts, LocalAction, PlanContext, VerifyAction } from './types.js';
import { statOnHost, statWithOverlay } from './path-stat.js';
import { DEFAULT_STATE_DIR, stateDirOf } from '../lib/state-dir.js';
import type { ExecOptions, ExecResult } from '../remote/connection.js';
import { dropRollback, readRemoteFile, removeRemoteFile, restoreFromRollback, writeRemoteFile } from '../remote/files.js';
import { HostShell, type BecomeSettings } from '../remote/host-shell.js';
import { lockHost, unlockHost } from '../remote/lock.js';
import { preparePaths, recordPaths, signerFor, signLeftovers, type StateStore } from '../remote/state.js';
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
  /** Files changed on the host in this run (since the last proven state), in order; their rollback copies carry runId. */
  private readonly journal: string[] = [];
  /** The host's run lock, taken before the first change (its shell can write the state directory). */
  private lock: { shell: HostShell; dir: string } | null = null;

  private shell: HostShell;
  /** Where a run-level step (LocalAction.shared) goes instead of running here; set by the runner. */
  shareStep?: (key: string, action: LocalAction) => boolean;

  constructor(
    readonly name: string,
    private readonly transport: Transport,
    readonly loginUser: string,
    readonly facts: HostFacts,
    readonly check: boolean,
    /** Names this run's rollback copies and its lock on the host: never reused by another run. */
    readonly runId: string = newRunId(),
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
      effectiveUser: this.shell.effectiveUser,
      runId: this.runId,
      readFile: (path, opts) => this.readFile(path, opts?.user),
      query: (cmd, opts) => this.query(cmd, opts),
      stat: (paths, opts) => statWithOverlay(this.overlay, paths, (rest) => statOnHost((c, o) => this.query(c, o), rest, opts)),
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

  /**
   * The one place that changes a host. Resolves with what the change's controller-side (local) actions
   * reported (null: they found nothing to do), or undefined when it has none.
   */
  async apply(actions: Action[], ctx: PlanContext): Promise<{ outcome?: string | null }> {
    const result: { outcome?: string | null } = {};
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
          const state = await this.prepareChange(ctx);
          this.remember(action.path);
          await writeRemoteFile(this.shell, action.path, action.content, { ...action, runId: this.runId, state });
          break;
        }
        case 'remove':
          if (this.check) {
            this.overlay.set(action.path, null);
            break;
          }
          {
            const state = await this.prepareChange(ctx);
            this.remember(action.path);
            await removeRemoteFile(this.shell, action.path, this.runId, state);
          }
          break;
        case 'exec': {
          if (this.check) {
            // cannot be simulated; the plan already says what would run. What it writes is not known, only that it changes.
            for (const p of action.writesWhenApplied ?? []) {
              const prev = await this.readFile(p);
              this.overlay.set(p, { content: UNKNOWN_CONTENT, mode: prev?.mode ?? '600', owner: prev?.owner ?? this.shell.effectiveUser, group: prev?.group ?? this.shell.effectiveUser });
            }
            break;
          }
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
          if (action.readOnly) await action.check(ctx);
          else await this.verify(action.description, action.check, action.recover, ctx, action.keepRollback);
          break;
        case 'local': {
          const said = await this.runLocal(action);
          if (said !== undefined) result.outcome = result.outcome ?? said;
          break;
        }
      }
    }
    return result;
  }

  /** A controller-side step: run in a real run, simulated (in memory, when it can be) in --check. */
  private async runLocal(action: LocalAction): Promise<string | null | undefined> {
    if (action.shared && this.shareStep) {
      // the first host to ask reports the change; the others join the same step
      return this.shareStep(action.shared, action) ? undefined : null;
    }
    const said = this.check ? (action.simulate ? await action.simulate() : undefined) : await action.run();
    return said ?? (said === null ? null : undefined);
  }

  private async runExec(action: ExecAction, ctx: PlanContext): Promise<void> {
    let res: ExecResult;
    const touches = action.touches ?? [];
    const store = await this.prepareChange(ctx);
    for (const p of touches) this.remember(p);
    await preparePaths(this.shell, store, this.runId, touches);
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
    keepRollback = false,
  ): Promise<void> {
    try {
      await check(ctx);
      if (keepRollback) return; // it proves nothing about the run's changes (a check before the step it guards)
      // The new state is proven good: it becomes the state a later failure rolls back to.
      await dropRollback(this.shell, this.journal, this.runId);
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

  private remember(path: string): void {
    if (!this.journal.includes(path)) this.journal.push(path);
  }

  /**
   * Before the first change on the host: the run lock (one run at a time; a dead run's lock is taken
   * over and its leftovers removed). Returns where this change keeps its records.
   */
  private async prepareChange(ctx: PlanContext): Promise<StateStore> {
    const store = stateStore(ctx.vars, this.name, this.check);
    if (!this.lock) {
      const taken = await lockHost(this.shell, store.dir, this.runId);
      this.lock = { shell: this.shell, dir: store.dir };
      await signLeftovers(this.shell, store, taken.stdout);
      if (taken.stale) ctx.warn(`took over the lock of a run that is gone (${taken.stale}); its rollback copies were removed, not restored`);
    }
    return store;
  }

  /** Restores every file changed in this run (since its last proven state), newest first. */
  async rollback(): Promise<void> {
    await restoreFromRollback(this.shell, [...this.journal].reverse(), this.runId);
    this.journal.length = 0;
    this.memos.clear();
  }

  /** At the end of a run the rollback copies are no longer needed, and the host is free for another run. */
  async finish(): Promise<void> {
    if (!this.check && this.lock) {
      const { shell, dir } = this.lock;
      await dropRollback(shell, this.journal, this.runId).catch(() => undefined);
      await unlockHost(shell, dir, this.runId).catch(() => undefined);
    }
    await this.shell.close();
  }
}

/** What --check's overlay holds for a file whose new content is known only when applied. */
const UNKNOWN_CONTENT = Buffer.from('# pgtls --check: this file is written when applied; its content is not known yet\n');

/** A run id: time and randomness, so that no two runs ever share one (it names files on hosts). */
export function newRunId(): string {
  return `${Date.now().toString(36)}-${randomBytes(5).toString('hex')}`;
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

/**
 * pgtls's directory on a host (pgtls_state_dir: the lock, journals, and, unless pgtls_track_originals
 * is false, the originals an uninstall restores, signed with the controller's key).
 */
export function stateStore(vars: Readonly<Record<string, unknown>>, host: string, check: boolean): StateStore {
  const t = vars.pgtls_track_originals;
  const track = !(t === false || t === 'false' || t === 'no');
  const dir = stateDirOf(vars);
  return { dir, track, signer: check ? null : signerFor(vars, host, track) };
}

export { DEFAULT_STATE_DIR };
