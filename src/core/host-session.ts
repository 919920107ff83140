import { Secret } from '../lib/secret.js';
import { randomBytes } from 'node:crypto';
import { TaskError, errorMessage } from '../lib/errors.js';
import type { Action, ControllerTarget, DeclaredLogin, ExecAction, FileState, HostFacts, LocalAction, PlanContext, QueryOptions, RunState, VerifyAction } from '../lib/plan-types.js';
import { JournaledController } from './controller-target.js';
import { sleep } from '../lib/retry.js';
import { EMPTY_REGISTRY, MapRunState, type ActionRegistry } from './run-state.js';
import { statOnHost, statWithOverlay } from './path-stat.js';
import { DEFAULT_STATE_DIR, stateDirOf } from '../lib/state-dir.js';
import { RemoteCommandError, type ExecOptions, type ExecResult } from '../lib/transport.js';
import { commitChanges, dropRollbackCommand, dropTempFiles, parseReadMany, readManyCommand, restoreFromRollback, type FileChange } from '../remote/files.js';
import { mergeSqlReads } from '../remote/sql-merge.js';
import { MAX_BATCH_BYTES, asUserInBatch, batchBytes, batchScriptBytes, execBatch, queryInBatch } from '../remote/batch.js';
import { HostShell, type BecomeSettings } from '../remote/host-shell.js';
import { lockCommand, lockError, lockHost, lockTaken, unlockCommand, unlockHost, type LockTaken } from '../remote/lock.js';
import { preparePaths, recordPaths, signerFor, signLeftovers, type StateStore } from '../remote/state.js';
import type { Transport } from '../lib/transport.js';
import type { FirstTrip } from './first-trip.js';
import { probeKey, type Probe, type ReplayRecord } from './probe.js';
import { KeptAnswers } from './kept-answers.js';
import { MAX_PREFETCH_SIZE, ReadCache, TurnTrips, memoize, readKey, readsByUser, type ReadSetEntry } from './turn-trips.js';
import type { ShellCommand } from '../lib/sh.js';

/**
 * A commit whose files add up to more than this goes in a round trip of its own: in a batch its content
 * is one base64 line of the batch's stdin, which the host's shell reads a byte at a time.
 */
const MAX_RIDING_COMMIT_BYTES = 256 * 1024;
/** How often a failed check's recovery is tried, and the pause before the next try (times the attempts so far). */
const RECOVER_ATTEMPTS = 3;
const RECOVER_PAUSE_MS = 1000;

/**
 * Everything pgtls holds for one host during a run: its shell, its facts and
 * the single executor that changes it. In --check the executor writes into an
 * in-memory overlay instead of the host, so later tasks plan against the state
 * earlier tasks would have left, and the host is never touched.
 */
export class HostSession {
  private readonly overlay = new Map<string, FileState | null>();
  private readonly memos = new Map<string, Promise<unknown>>();
  private readonly reads = new ReadCache();
  /**
   * Every file this run has read or expects to read (by user\0path): a read that misses the cache
   * reads them all again in one round trip (read-many.sh), so a task after a command or a commit
   * costs one round trip for all its files, not one per file.
   */
  private readonly readSet = new Map<string, ReadSetEntry>();
  /** The round trip of each turn of the event loop: a plan's reads and probes together. */
  private readonly trips = new TurnTrips({ shell: () => this.shell, readSet: this.readSet, reads: this.reads, takeAhead: () => this.takeAhead() });
  /** Changes made on this host in this run (commits, commands, rollbacks): an answer fetched before does not count. */
  private changes = 0;
  /**
   * Answers fetched ahead (the first round trip, the lock's) for the probes tasks declare and the
   * replay record: given to the identical query while no host of the run has changed anything.
   */
  private readonly kept = new KeptAnswers(() => ({ host: this.changes, run: runChanges(this.runState).count }));
  /** Commits run one at a time: a probe that waits for the held writes waits for a commit in flight too. */
  private committing: Promise<void> = Promise.resolve();
  private readonly stableMemos = new Map<string, Promise<unknown>>();
  /** ctx.memoUntilChange: answers with the change count they were given at. */
  private readonly untilChange = new Map<string, { at: number; answer: Promise<unknown> }>();
  /** Files changed on the host in this run (since the last proven state), in order; their rollback copies carry runId. */
  private readonly journal: string[] = [];
  /**
   * Changes planned but not yet made (a real run): held until something depends on them (a command,
   * a verify, a probe that may read the files, the end of the play) and then committed together.
   * So each file is written once per such point (not once per lineinfile task), and settings that
   * only make sense together (`ssl = on` and the key it names) reach the disk together.
   */
  private readonly pending: { change: FileChange; store: StateStore }[] = [];
  /** The host's run lock (taken before the first task: begin()) and the shell that holds it. */
  private lock: { shell: HostShell; dir: string } | null = null;

  private shell: HostShell;
  /** Where a run-level step (LocalAction.shared) goes instead of running here; set by the runner. */
  shareStep?: (key: string, action: LocalAction) => boolean;
  /** The verifiers and controller operations that plans name; set by the runner (from the modules). */
  registry: ActionRegistry = EMPTY_REGISTRY;
  /** The run's state (shared by every host of the run); set by the runner. */
  runState: RunState = new MapRunState();
  /** Controller files written by this host's local actions since its last proven state. */
  private controllerTarget?: JournaledController;
  /** What the commands of the current task printed (ExecAction.output), for its next planning round. */
  private readonly outputs = new Map<string, Buffer>();

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
      this.shell = new HostShell(this.transport, this.loginUser, become, settings).succeed(this.shell);
  }

  /** The context one task plans in (a new task: the outputs of the previous task's commands are forgotten). */
  context(vars: Record<string, unknown>, warn: (m: string) => void): PlanContext {
    this.outputs.clear();
    return {
      host: this.name,
      vars,
      facts: this.facts,
      effectiveUser: this.shell.effectiveUser,
      runId: this.runId,
      runState: this.runState,
      output: (name) => this.outputs.get(name),
      readFile: (path, opts) => this.readFile(path, opts?.user),
      query: (cmd, opts) => this.query(cmd, opts),
      stat: (paths, opts) => statWithOverlay(this.overlay, paths, (rest) => statOnHost((c, o) => this.query(c, o), rest, opts)),
      memo: <T>(key: string, compute: () => Promise<T>) => memoize(this.memos, key, compute),
      memoStable: <T>(key: string, compute: () => Promise<T>) => memoize(this.stableMemos, key, compute),
      memoUntilChange: <T>(key: string, compute: () => Promise<T>) => {
        const kept = this.untilChange.get(key);
        if (kept && kept.at === this.changes) return kept.answer as Promise<T>;
        const answer = compute();
        this.untilChange.set(key, { at: this.changes, answer });
        return answer;
      },
      warn,
    };
  }

  private async readFile(path: string, user?: string): Promise<FileState | null> {
    if (this.pending.some(({ change: c }) => c.op === 'rename' && c.path === path)) await this.commit();
    if (!this.overlay.has(path)) return this.readHost(path, user);
    const planned = this.overlay.get(path);
    if (!planned) return null;
    if (planned.mode && planned.owner && planned.group) return planned;
    // owner and mode not given by the write: those of the file it replaces (still on the host), else defaults
    const prev = await this.readHost(path, user);
    const full = {
      content: planned.content,
      mode: planned.mode || prev?.mode || '644',
      owner: planned.owner || prev?.owner || this.shell.effectiveUser,
      group: planned.group || prev?.group || this.shell.effectiveUser,
    };
    this.overlay.set(path, full);
    return full;
  }

  /**
   * A file as the host has it, read once until something may have changed it (a commit, a command,
   * a verify, a local step): the tasks of a play read the same config files again and again.
   */
  private readHost(path: string, user?: string): Promise<FileState | null> {
    const key = readKey(path, user);
    const entry: { path: string; user?: string; size?: number } = user === undefined ? { path } : { path, user };
    this.readSet.set(key, entry);
    const read = this.reads.memo(key, () => this.trips.read(path, user));
    // its size decides whether it comes along with later misses (a big file is read only when asked)
    read.then((f) => void (entry.size = f?.content.length ?? 0), () => undefined);
    return read;
  }

  /** A task's plan() runs (again: after a step of its own): see KeptAnswers.planRound. */
  planRound(again: boolean): void {
    this.kept.planRound(again);
  }

  /** Logins a task declares, for the next run's replay record (not asked now). */
  recordLogins(logins: readonly DeclaredLogin[]): void {
    for (const l of logins) this.kept.noteAsked(l.cmd, { stdin: l.password, ...(l.timeoutMs === undefined ? {} : { timeoutMs: l.timeoutMs }) }, this.secretVarOf?.(l.password));
  }

  /** A file as this run has read it already (by the shell's user), or undefined: never a round trip. */
  cachedFile(path: string): Promise<FileState | null> | undefined {
    return this.overlay.has(path) ? undefined : this.reads.get(readKey(path));
  }

  /**
   * Files the run's tasks will read (the config files discovery names): the first read that misses
   * the cache reads them in the same round trip. Nothing is read now.
   */
  expectReads(files: readonly { path: string; user?: string }[]): void {
    for (const f of files) this.readSet.set(readKey(f.path, f.user), f.user === undefined ? { path: f.path } : { path: f.path, user: f.user });
  }

  /** The host variable whose value a login's password is (the replay record names it, never the value). */
  secretVarOf?: (password: Secret) => string | undefined;

  private async query(cmd: ShellCommand, opts: QueryOptions = {}): Promise<ExecResult> {
    const { independentOfFiles, ...exec } = opts;
    this.kept.noteAsked(cmd, exec, exec.stdin instanceof Secret ? this.secretVarOf?.(exec.stdin) : undefined);
    // (async: it still puts the question in the trip at once, before its first await)
    const ask = async (): Promise<ExecResult> => {
      const user = this.shell.effectiveUser;
      const kept = this.kept.take(cmd, exec, user);
      if (kept) return kept;
      const stamp = this.kept.stamp();
      const answer = await this.trips.probe(cmd, exec);
      this.kept.keepForLater(cmd, exec, exec.user ?? user, answer, stamp);
      return answer;
    };
    if (independentOfFiles) return ask();
    // the held writes first; the question rides in the commit's round trip when it can
    const { answer } = await this.commitRiding(ask, () => this.trips.joins(exec));
    return answer ?? ask();
  }

  /**
   * Commits the held writes; when there are some and `joins` (what `ask` sends would go in the turn's
   * round trip, not at once before the commit), `ask` rides the commit's round trip: the commit first
   * and alone on the host, the rest only if it worked. Resolves once the commit is made (a failure is
   * the commit's), with the answer of `ask` when it rode.
   */
  private async commitRiding<T>(ask: () => Promise<T>, joins: () => boolean): Promise<{ answer?: Promise<T> }> {
    let answer: Promise<T> | undefined;
    await this.commit(() => {
      if (!joins()) return;
      answer = ask();
      answer.catch(() => undefined); // (the caller awaits it, unless the commit failed first)
    });
    return answer ? { answer } : {};
  }

  /** The run lock, taken in the connection's first round trip (src/core/first-trip.ts), for begin() to adopt; or why it was refused there. */
  private earlyLock?: { shell: HostShell; dir: string; taken: LockTaken };
  /** Where what went wrong after the last task is told (begin's warn). */
  private warnAtEnd?: (m: string) => void;
  private lockRefused?: unknown;

  /**
   * What the connection's first round trip brought besides discovery: the lock (when it was taken
   * there) and the replayed reads and probes (as `shell` ran them), kept like the lock batch's.
   */
  keepFirstTrip(trip: Pick<FirstTrip, 'locked' | 'lockRefused' | 'reads' | 'replayed'>, shell: HostShell, lockDir: string): void {
    if (trip.locked) this.earlyLock = { shell, dir: lockDir, taken: trip.locked };
    if (trip.lockRefused !== undefined) this.lockRefused = trip.lockRefused;
    for (const { user, files } of trip.reads)
      for (const [path, f] of files) {
        this.readSet.set(readKey(path, user), user === undefined ? { path, size: f?.content.length ?? 0 } : { path, user, size: f?.content.length ?? 0 });
        this.reads.memo(readKey(path, user), () => Promise.resolve(f));
      }
    for (const { probe, result } of trip.replayed) this.kept.keep(probe, probe.user ?? shell.effectiveUser, result);
  }

  /** Answers of probes run before the session existed (the connection's first round trip: discovery), as `as` ran them. */
  keepAnswers(answers: readonly { cmd: ShellCommand; result: ExecResult }[], as: string): void {
    for (const a of answers) this.kept.keep({ cmd: a.cmd }, as, a.result, 1, true);
  }

  /**
   * What the next run on this host may ask with its lock, before any task plans: the files this run
   * read and the read-only, stdin-free queries it asked, declared or not (those no task can declare
   * depend on an earlier answer: the files a server's state names). Only a hint: an answer counts
   * only for the identical query, under the same rules as a declared one. A private file (a key,
   * postgresql.auto.conf, pool_passwd) is in it too, by path: the record never holds content, and
   * the next run reads it over the same connection, as the same user, that its task would, and only
   * because the last run's task on this host read it.
   */
  replayRecord(): ReplayRecord {
    const reads = [...this.readSet.values()]
      .filter((f) => f.size !== undefined && f.size <= MAX_PREFETCH_SIZE)
      .map((f) => (f.user === undefined ? { path: f.path } : { path: f.path, user: f.user }));
    return { reads, probes: this.kept.recorded() };
  }

  /** The next tasks' declared queries, asked along with this task's next round trip (askAhead). */
  private aheadQueries: readonly Probe[] = [];

  /**
   * The next task's declared queries (no stdin), asked in the next round trip this host makes for
   * the task now running, their answers kept under the usual rules: fresh only while nothing has
   * changed since. Two checks in a row (the walsenders, then the sessions) ask in one round trip.
   */
  askAhead(probes: readonly Probe[]): void {
    const once = new Map(probes.filter((p) => p.stdin === undefined).map((p) => [probeKey(p.cmd, p.user), p] as const));
    this.aheadQueries = [...once.values()];
  }

  /** TripHost.takeAhead: taken by the next round trip, stamped as it is sent. */
  takeAhead(): { cmd: ShellCommand; user?: string; done: (r: ExecResult | Error) => void }[] {
    const as = this.shell.effectiveUser;
    // (not what is still answered: the lock's round trip asked every declared query)
    const probes = this.aheadQueries.filter((p) => !this.kept.holds(p, as));
    this.aheadQueries = [];
    if (probes.length === 0) return [];
    const stamp = this.kept.stamp();
    return probes.map((probe) => ({
      cmd: probe.cmd,
      ...(probe.user === undefined ? {} : { user: probe.user }),
      done: (r: ExecResult | Error) => {
        const result = r instanceof RemoteCommandError ? r.result : r instanceof Error ? undefined : r;
        if (result) this.kept.keepAhead(probe, probe.user ?? as, result, stamp);
      },
    }));
  }

  /** Probes the run's tasks will run (read-only, no stdin; as the default user unless they name one): sent with the lock (begin). */
  expectQueries(probes: readonly Probe[]): void {
    this.kept.expect(probes);
  }

  /** A change on this host: what was asked before it no longer answers a query, here or on any host of the run. */
  private changed(): void {
    this.changes++;
    runChanges(this.runState).count++;
  }

  /**
   * Before the first task of a real run: the host's run lock (one run at a time), taken over from a
   * run that is gone, whose leftovers (rollback copies, temp files, a half-received content) are
   * removed, never restored, and whose unsigned records are signed. Done before any planning, so a
   * re-run that changes nothing still cleans what a killed run left.
   */
  async begin(vars: Readonly<Record<string, unknown>>, warn: (m: string) => void): Promise<void> {
    this.warnAtEnd = warn;
    if (this.check || this.lock) return;
    if (this.lockRefused !== undefined) throw this.lockRefused;
    // the key that signs records is loaded, never created here: a run that changes nothing makes none
    const store = { ...stateStore(vars, this.name, true, this.runState), signer: signerFor(vars, this.name, false, stateKeys(this.runState)) };
    const early = this.earlyLock?.dir === store.dir ? this.earlyLock : undefined;
    // (the first round trip locked another directory: pgtls_state_dir differs once the facts are known)
    if (this.earlyLock && !early) await unlockHost(this.earlyLock.shell, this.earlyLock.dir, this.runId);
    this.earlyLock = undefined;
    const taken = early ? early.taken : await this.lockAndRead(store.dir);
    this.lock = { shell: early ? early.shell : this.shell, dir: store.dir };
    // taken in the first round trip: what the tasks declared and the replay did not bring is read now
    if (early) await this.lockAndRead(store.dir, false);
    await signLeftovers(this.shell, store, taken.stdout);
    if (taken.stale) warn(`took over the lock of a run that is gone (${taken.stale}); its rollback copies and temp files were removed, not restored`);
  }

  /**
   * The lock, and in the same round trip (batch.sh) the files the run expects to read (its read set:
   * the config files discovery named, the files its tasks declare) and the probes its tasks declare,
   * so the first task finds them answered. They run only once the lock is taken (a dead run's
   * leftovers cleaned first), and their answers count only until something may change the host.
   * `lock` false: the lock is held already (the first round trip took it); only what that round
   * trip did not answer is read, and nothing when it answered everything.
   */
  private async lockAndRead(dir: string, lock = true): Promise<LockTaken> {
    // reads and probes as another user run in the batch only where root can switch to it (runuser), as queueProbe does
    const runAs = this.shell.effectiveUser;
    const reachable = (user?: string) => (user ?? runAs) === runAs || (runAs === 'root' && this.shell.loginUser === 'root');
    const as = (cmd: ShellCommand, user?: string) => asUserInBatch(this.shell, cmd, user);
    const reads = readsByUser([...this.readSet].filter(([key, f]) => !this.reads.has(key) && (f.size ?? 0) <= MAX_PREFETCH_SIZE && reachable(f.user)).map(([, f]) => f));
    // (the batch is one command line: probes that would not fit it are asked when a task asks them)
    let room = MAX_BATCH_BYTES - batchScriptBytes() - batchBytes(lockCommand(dir, this.runId)) - reads.reduce((n, r) => n + batchBytes(as(readManyCommand(r.paths), r.user)), 0);
    const probes = this.kept.unanswered(reachable).filter(({ probe: p }) => {
      const size = batchBytes(as(p.cmd, p.user));
      return size <= room && (room -= size) >= 0;
    });
    const taken: LockTaken = { stdout: Buffer.alloc(0), cleaned: [] };
    if (reads.length === 0 && probes.length === 0) return lock ? lockHost(this.shell, dir, this.runId) : taken;
    const generation = this.reads.generation;
    // (the SQL reads of one server: one psql session, src/remote/sql-merge.ts)
    const merged = mergeSqlReads(probes.map(({ probe }) => probe), () => []);
    const batch = [
      ...(lock ? [{ cmd: lockCommand(dir, this.runId) }] : []),
      ...reads.map((r) => ({ cmd: as(readManyCommand(r.paths), r.user) })),
      ...merged.send.map((p) => queryInBatch(this.shell, p)),
    ];
    // only the lock's failure ends the batch (what it guards does not run); a read or probe that fails is asked again when a task asks it
    // (after the lock: reads and queries, at once on the host)
    const rest = await execBatch(this.shell, batch, lock ? 'first-parallel' : 'parallel').catch((e: unknown) => {
      throw lockError(e);
    });
    if (lock) {
      const locked = rest.shift();
      if (!locked || locked instanceof Error) throw lockError(locked ?? new Error('the lock script did not answer'));
      Object.assign(taken, lockTaken(locked));
    }
    if (this.reads.generation === generation) {
      for (const { user, paths } of reads) {
        const read = rest.shift();
        if (read && !(read instanceof Error))
          for (const [p, f] of parseReadMany(read.stdout, paths)) this.reads.memo(readKey(p, user), () => Promise.resolve(f));
      }
      const answered = merged.expand(rest);
      for (const [i, { probe, askers }] of probes.entries()) {
        const r = answered[i];
        if (r instanceof RemoteCommandError) this.kept.keep(probe, probe.user ?? runAs, r.result, askers);
        // asked, so the next run's record has it: in its first round trip, not a round trip of its own
        const exec = { ...(probe.user === undefined ? {} : { user: probe.user }), ...(probe.stdin ? { stdin: probe.stdin } : {}) };
        this.kept.noteAsked(probe.cmd, exec, probe.stdin ? this.secretVarOf?.(probe.stdin) : undefined);
      }
    }
    return taken;
  }

  /**
   * The one place that changes a host. Resolves with what the change's controller-side (local) actions
   * reported (null: they found nothing to do), or undefined when it has none.
   */
  async apply(actions: Action[], ctx: PlanContext): Promise<{ outcome?: string | null }> {
    const result: { outcome?: string | null } = {};
    /** The verify that execThenVerify already ran with the command it guards. */
    let checkedEarly: VerifyAction | undefined;
    for (const [i, action] of actions.entries()) {
      // The running server's facts (ctx.memo) change only when a command may restart it. A write, held
      // or committed, changes files, not a running process; a verify's checks only ask (one that fails
      // rolls back, which forgets them); a controller-side step changes nothing on the host.
      if (action.kind === 'exec' && !action.leavesAlone?.includes('server')) this.memos.clear();
      switch (action.kind) {
        case 'write': {
          // owner and mode: the write's, else an earlier planned write's, else (when read) the host file's
          const earlier = this.overlay.get(action.path);
          this.overlay.set(action.path, {
            content: action.content,
            mode: action.mode ?? earlier?.mode ?? '',
            owner: action.owner ?? earlier?.owner ?? '',
            group: action.group ?? earlier?.group ?? '',
          });
          const { kind: _, ...write } = action;
          await this.hold({ op: 'write', ...write }, ctx);
          break;
        }
        case 'remove':
          this.overlay.set(action.path, null);
          await this.hold({ op: 'remove', path: action.path }, ctx);
          break;
        case 'rename':
          this.overlay.delete(action.path);
          await this.hold({ op: 'rename', path: action.path, from: action.from }, ctx);
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
          // the held writes first (a failure there is the commit's, not the command's); the command
          // rides in the commit's round trip when it can
          const { sent } = await this.commitAndSend(action, ctx);
          if (!action.leavesAlone?.includes('files') || (action.touches ?? []).length > 0) this.reads.clear();
          // An exec that a verify guards (a reload, a restart) is part of what the verify checks:
          // when the command itself fails, roll back and recover exactly as a failed check would.
          const guard = actions.slice(i + 1).find((a): a is VerifyAction => a.kind === 'verify');
          if (!sent && guard && actions[i + 1] === guard && !guard.readOnly && !guard.keepRollback && (await this.execThenVerify(action, guard, ctx))) {
            checkedEarly = guard;
            break;
          }
          if (!guard) {
            await this.runExec(action, ctx, sent);
            break;
          }
          try {
            await this.runExec(action, ctx, sent);
          } catch (e) {
            await this.verify(guard.description, () => Promise.reject(e), guard.recover, ctx);
          }
          break;
        }
        case 'verify':
          if (this.check || action === checkedEarly) break;
          // the held writes first; what the run read still holds (a check only asks; one that fails
          // rolls back, which forgets every read)
          await this.commit();
          if (action.readOnly) await this.verifierOf(action)(ctx);
          else await this.verify(action.description, this.verifierOf(action), action.recover, ctx, action.keepRollback);
          break;
        case 'local': {
          if (!this.registry.localOps.get(action.op)?.independentOfHost) await this.settle();
          const said = await this.runLocal(action);
          if (said !== undefined) result.outcome = result.outcome ?? said;
          break;
        }
      }
    }
    return result;
  }

  /** The check a verify action names, with its data. */
  private verifierOf(action: VerifyAction): (ctx: PlanContext) => Promise<void> {
    const v = this.registry.verifiers.get(action.verifier);
    if (!v) throw new TaskError(`bug: no verifier named ${action.verifier} (${action.description})`);
    return (ctx) => v.run(ctx, action.params);
  }

  /** A controller-side step: run in a real run, simulated (in memory, when it can be) in --check. */
  private async runLocal(action: LocalAction): Promise<string | null | undefined> {
    if (action.shared && this.shareStep) {
      // the first host to ask reports the change; the others join the same step
      return this.shareStep(action.shared, action) ? undefined : null;
    }
    this.controllerTarget ??= new JournaledController(this.runState);
    const said = await runLocalOp(this.registry, this.controllerTarget, action, this.check);
    return said ?? (said === null ? null : undefined);
  }

  /** Before a local step that may depend on the host: the held writes are made, and no cached read is trusted after it. */
  private async settle(): Promise<void> {
    await this.commit();
    this.reads.clear();
  }

  /**
   * A change planned: in --check it stays in the overlay; in a real run it waits for commit().
   * "Certificates before settings" at the file level (README "Ordering constraints"): held changes
   * reach the host together, in one commit, and a key generated on the host is a rename held with
   * its certificate, so `ssl = on` is never on disk without the certificate and key it names.
   */
  private async hold(change: FileChange, ctx: PlanContext): Promise<void> {
    if (this.check) return;
    const store = await this.lockedStore(ctx);
    const at = this.pending.findIndex((p) => p.change.path === change.path);
    // a later change of the same file replaces the earlier one (one write per file per commit)
    const before = at >= 0 ? this.pending[at]! : undefined;
    if (before && change.op !== 'rename' && before.change.op !== 'rename' && sameStore(before.store, store)) {
      this.pending.splice(at, 1);
      // what the earlier write asked for (owner, mode, a backup) still holds unless this one says otherwise
      if (change.op === 'write' && before.change.op === 'write') {
        const e = before.change;
        change = { ...change, mode: change.mode ?? e.mode, owner: change.owner ?? e.owner, group: change.group ?? e.group, backup: change.backup || e.backup, validate: change.validate ?? e.validate };
      }
    }
    this.pending.push({ change, store });
  }

  /**
   * Makes every pending change, in one round trip (commit.sh): after it the host holds what the
   * overlay said. A failure names the files; nothing of a commit that failed on receipt is installed.
   */
  async commit(ride?: () => void): Promise<void> {
    // Questions asked in the same turn (a plan's Promise.all) all ride the one commit they wait for,
    // not the first alone (the others would wait for it and go in a round trip of their own).
    const forming = this.formingCommit;
    if (forming) {
      if (ride) forming.rides.push(ride);
      return forming.done;
    }
    const rides: (() => void)[] = ride ? [ride] : [];
    const mine = { rides, done: Promise.resolve() };
    this.formingCommit = mine;
    const next = this.committing.then(() => {
      if (this.formingCommit === mine) this.formingCommit = undefined;
      return this.commitHeld(rides.length ? () => rides.forEach((r) => r()) : undefined);
    });
    mine.done = next;
    this.committing = next.catch(() => undefined);
    return next;
  }

  /** The commit queued and not started yet: later callers join it (and their questions its round trip). */
  private formingCommit?: { rides: (() => void)[]; done: Promise<void> };

  private async commitHeld(ride?: () => void): Promise<void> {
    if (this.check || this.pending.length === 0) return;
    const held = this.pending.splice(0);
    this.changed();
    for (const { change } of held) this.remember(change.path);
    // the files as this run read them (unchanged since: nothing was committed or run after the read):
    // what the host will record as their originals, signed in the commit's own round trip
    const expected = new Map<string, FileState | null>();
    for (const { change } of held) {
      const read = this.reads.peekPath(change.path);
      if (read) await read.then((f) => expected.set(change.path, f), () => undefined);
    }
    // A commit changes the files it writes and no other: only those are read again, and one whose
    // whole state the run knows (content, owner, mode) is known without reading it back.
    const after = new Map<string, FileState | null | undefined>();
    for (const { change } of held) {
      const o = change.op === 'write' ? this.overlay.get(change.path) : undefined;
      const known = this.shell.effectiveUser === 'root' && (change.op === 'remove' || Boolean(o && o.mode && o.owner && o.group)); // (as read by root)
      after.set(change.path, !known ? undefined : change.op === 'remove' ? null : { ...o! });
    }
    this.reads.forgetPaths(new Set(after.keys()));
    try {
      // (one round trip unless tasks keep their records in different places)
      for (let i = 0; i < held.length; ) {
        let j = i + 1;
        while (j < held.length && sameStore(held[j]!.store, held[i]!.store)) j++;
        const last = j === held.length;
        const changes = held.slice(i, j).map((h) => h.change);
        await commitChanges(this.shell, changes, this.runId, held[i]!.store, expected, last && ride ? this.leadingTrip(changes, ride) : undefined);
        i = j;
      }
      for (const [path, f] of after) if (f !== undefined) this.reads.memo(readKey(path), () => Promise.resolve(f));
    } catch (e) {
      throw new TaskError(`writing ${[...new Set(held.map((h) => h.change.path))].join(', ')}: ${errorMessage(e)}`);
    } finally {
      for (const { change } of held) this.overlay.delete(change.path);
    }
  }

  /**
   * The commit sent at the head of the current turn's round trip, and `ride` (the question waiting for
   * it) put in the same trip right after: one round trip for both. A commit too big to go through a
   * batch's stdin line goes alone (`ride` is not called: the question is asked after it).
   */
  private leadingTrip(changes: readonly FileChange[], ride: () => void) {
    const bytes = changes.reduce((n, c) => n + (c.op === 'write' ? c.content.length : 0), 0);
    if (bytes > MAX_RIDING_COMMIT_BYTES) return undefined;
    return (cmd: ShellCommand, stdin?: Buffer): Promise<ExecResult> => {
      const led = this.trips.lead(cmd, stdin);
      if (!led) return this.shell.exec(cmd, stdin === undefined ? {} : { stdin });
      ride();
      return led;
    };
  }

  /**
   * Commits the held writes before a command. A command that needs nothing prepared on the host first
   * (no `touches`) is sent in the commit's own round trip, after it (and only if it worked): the
   * promise of its result; undefined when it was not sent (runExec sends it).
   */
  private async commitAndSend(action: ExecAction, ctx: PlanContext): Promise<{ sent?: Promise<ExecResult> }> {
    if (this.pending.length === 0 || (action.touches ?? []).length > 0) {
      await this.commit();
      return {};
    }
    await this.lockedStore(ctx);
    const opts = execOptions(action);
    const send = async (): Promise<ExecResult> => {
      this.changed();
      return this.trips.probe(action.cmd, opts);
    };
    const { answer } = await this.commitRiding(send, () => this.trips.joins(opts));
    return answer ? { sent: answer } : {};
  }

  private async runExec(action: ExecAction, ctx: PlanContext, sent?: Promise<ExecResult>): Promise<void> {
    let res: ExecResult;
    const touches = action.touches ?? [];
    const store = await this.lockedStore(ctx);
    this.changed();
    for (const p of touches) this.remember(p);
    await preparePaths(this.shell, store, this.runId, touches);
    try {
      res = await (sent ?? this.shell.exec(action.cmd, execOptions(action)));
    } catch (e) {
      throw new TaskError(`${action.description}: ${errorMessage(e)}`);
    }
    await recordPaths(this.shell, store, touches);
    if (action.output) this.outputs.set(action.output, res.stdout);
  }

  /**
   * A command (a reload) and the first questions of the check that guards it (is the new load time
   * visible?) in ONE round trip: the command leads, the check's first turn runs after it on the host,
   * and only if it worked. Later questions of the check wait for the command's answer; after a
   * failed command they are never sent (the command's failure is what the check reports, as
   * runExec + verify would). False: it cannot lead the round trip (another user's shell, something
   * leads already); nothing was sent.
   */
  private async execThenVerify(action: ExecAction, guard: VerifyAction, ctx: PlanContext): Promise<boolean> {
    if ((action.touches ?? []).length > 0 || action.stdin !== undefined || action.output || !this.trips.joins({ ...(action.user === undefined ? {} : { user: action.user }) })) return false;
    await this.lockedStore(ctx);
    const led = this.trips.lead(asUserInBatch(this.shell, action.cmd, action.user), undefined, { okCodes: action.okCodes ?? [0], ...(action.timeoutMs === undefined ? {} : { timeoutMs: action.timeoutMs }) });
    if (!led) return false;
    // (before the check asks anything: what was fetched ahead no longer holds)
    this.changed();
    const failed = led.then(
      () => undefined,
      (e: unknown) => new TaskError(`${action.description}: ${errorMessage(e)}`),
    );
    let firstTurn = true;
    setImmediate(() => (firstTurn = false));
    // after the first turn: only once the command worked (a check of a failed reload would poll for its whole wait)
    const gate = async <T>(ask: () => Promise<T>): Promise<T> => (firstTurn || !(await failed) ? ask() : new Promise<T>(() => undefined));
    const early: PlanContext = {
      ...ctx,
      readFile: (path, opts) => gate(() => ctx.readFile(path, opts)),
      query: (cmd, opts) => gate(() => ctx.query(cmd, opts)),
      stat: (paths, opts) => gate(() => ctx.stat(paths, opts)),
    };
    const checking = this.verifierOf(guard)(early);
    checking.catch(() => undefined); // (judged below, once the command's answer is in)
    const error = await failed;
    await this.verify(guard.description, () => (error ? Promise.reject(error) : checking), guard.recover, ctx);
    return true;
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
      // The new state is proven good: it becomes the state a later failure rolls back to. Its rollback
      // copies go in the host's next round trip (before anything else runs there)
      if (this.journal.length) this.shell.beforeNext(dropRollbackCommand([...this.journal], this.runId), 'removing rollback copies a passed check made useless');
      this.journal.length = 0;
      this.controllerTarget?.proven();
      return;
    } catch (e) {
      const why = errorMessage(e);
      await this.rollback();
      let recovered = 'previous files restored';
      if (recover) recovered += await this.recover(recover, ctx);
      throw new TaskError(`${description} failed: ${why} (${recovered})`);
    }
  }

  /**
   * The recovery after a failed check (the service started again with the previous files), tried up to
   * RECOVER_ATTEMPTS times: what kept the new start from working is often gone a moment later (a port
   * still held by an exiting process, or by one that grabbed it), and with the previous files back a
   * second start is safe. Says how it went, for the host's error.
   */
  private async recover(recover: ExecAction, ctx: PlanContext): Promise<string> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.runExec(recover, ctx);
        return `, ${recover.description} done${attempt > 1 ? ` (attempt ${attempt})` : ''}`;
      } catch (re) {
        if (attempt >= RECOVER_ATTEMPTS) return `, but ${recover.description} failed ${attempt} times: ${errorMessage(re)}`;
        await sleep(RECOVER_PAUSE_MS * attempt);
      } finally {
        this.memos.clear(); // (a recovery may be a restart)
      }
    }
  }

  private remember(path: string): void {
    if (!this.journal.includes(path)) this.journal.push(path);
  }

  /** Where this change keeps its records, with the run lock held (the runner takes it before the first task). */
  private async lockedStore(ctx: PlanContext): Promise<StateStore> {
    if (!this.lock) await this.begin(ctx.vars, ctx.warn);
    return stateStore(ctx.vars, this.name, false, this.runState);
  }

  /** What was planned and not yet written is dropped; the new keys it would have installed are removed. */
  private async dropPending(): Promise<number> {
    const dropped = this.pending.splice(0);
    const temps = dropped.flatMap(({ change: c }) => (c.op === 'rename' ? [c.from] : []));
    await dropTempFiles(this.shell, temps, this.runId);
    return dropped.length;
  }

  /** Restores every file changed in this run (since its last proven state), newest first. */
  async rollback(): Promise<void> {
    this.changed();
    await this.dropPending();
    try {
      await restoreFromRollback(this.shell, [...this.journal].reverse(), this.runId);
    } finally {
      // the controller's files too, whatever became of the host's (one does not wait for the other)
      await this.controllerTarget?.rollback();
    }
    this.journal.length = 0;
    this.memos.clear();
    this.reads.clear();
    this.overlay.clear();
  }

  /**
   * The run was interrupted between tasks: what was planned and not yet written is dropped, and what
   * was written since the host's last proven state (a verify, or the start of the run) is put back,
   * so the host is as it was when it last worked. Says which, for the report.
   */
  async abandon(): Promise<string> {
    if (this.check) return 'nothing was changed (check mode)';
    const dropped = await this.dropPending().catch(() => 0);
    const put = [...this.journal, ...(this.controllerTarget?.changed.map((p) => `${p} (on the controller)`) ?? [])];
    if (put.length === 0)
      return `nothing was written since its last proven state${dropped ? ` (${dropped} planned change(s) dropped)` : ''}: it is as it was`;
    try {
      await this.rollback();
      return `rolled back to its last proven state: ${put.join(', ')} put back`;
    } catch (e) {
      return `could not roll back ${put.join(', ')}: ${errorMessage(e)} (each file is whole: written atomically)`;
    }
  }

  /** At the end of a run the rollback copies are no longer needed, and the host is free for another run. */
  async finish(): Promise<void> {
    // (a lock taken in the first round trip of a host that never began: its facts failed, or the run stopped first)
    const lock = this.lock ?? this.earlyLock;
    if (!this.check && lock) {
      const { dir } = lock;
      // the session's own shell when it runs as the lock's user: what it still owes (signatures,
      // rollback copies) goes in the same round trip
      const shell = this.shell.effectiveUser === lock.shell.effectiveUser ? this.shell : (await this.shell.flush(), lock.shell);
      // one round trip: the rollback copies go, then (whatever became of them) the lock
      const cmds = [...(this.journal.length ? [{ cmd: dropRollbackCommand(this.journal, this.runId) }] : []), { cmd: unlockCommand(dir, this.runId) }];
      await execBatch(shell, cmds, 'all').catch(() => undefined);
    } else await this.shell.flush().catch(() => undefined);
    for (const f of new Set([...this.shell.allOwedFailures, ...(lock?.shell.allOwedFailures ?? [])])) this.warnAtEnd?.(`${f}; the next run on this host finishes it`);
    await this.shell.close();
  }
}

/** The run's record-signing keys, by key file (loaded or created once per run, read again by the next run). */
const stateKeys = (run: RunState) => run.get('state-keys', () => new Map<string, Buffer>());

/** Runs the controller operation a local action names (simulating it in --check). */
export function runLocalOp(registry: ActionRegistry, target: ControllerTarget, action: LocalAction, simulate: boolean): Promise<string | null | void> {
  const op = registry.localOps.get(action.op);
  if (!op) throw new TaskError(`bug: no controller operation named ${action.op} (${action.description})`);
  return op.run(target, action.params, simulate);
}

/** What --check's overlay holds for a file whose new content is known only when applied. */
const UNKNOWN_CONTENT = Buffer.from('# pgtls --check: this file is written when applied; its content is not known yet\n');

/** A run id: time and randomness, so that no two runs ever share one (it names files on hosts). */
export function newRunId(): string {
  return `${Date.now().toString(36)}-${randomBytes(5).toString('hex')}`;
}

function sameStore(a: StateStore, b: StateStore): boolean {
  return a.dir === b.dir && a.track === b.track && (a.signer === null) === (b.signer === null);
}

/** How many changes the run's hosts have made (one counter per run, in its state). */
const runChanges = (run: RunState) => run.get('host-changes', () => ({ count: 0 }));

/**
 * pgtls's directory on a host (pgtls_state_dir: the lock, journals, and, unless pgtls_track_originals
 * is false, the originals an uninstall restores, signed with the controller's key).
 */
export function stateStore(vars: Readonly<Record<string, unknown>>, host: string, check: boolean, run: RunState): StateStore {
  const t = vars.pgtls_track_originals;
  const track = !(t === false || t === 'false' || t === 'no');
  const dir = stateDirOf(vars);
  return { dir, track, signer: check ? null : signerFor(vars, host, track, stateKeys(run)) };
}

export { DEFAULT_STATE_DIR };

/** How an exec action is run: its stdin, user, exit codes and limit. */
function execOptions(a: ExecAction): ExecOptions {
  return { stdin: a.stdin, user: a.user, okCodes: a.okCodes, timeoutMs: a.timeoutMs };
}
