import type * as z from 'zod';
import type { ExecOptions, ExecResult } from './transport.js';
import type { ShellCommand } from './sh.js';
import type { Secret } from './secret.js';

/** A file as read from a host (or as the executor's overlay holds it). */
export interface FileState {
  content: Buffer;
  mode: string; // octal, e.g. "600"
  owner: string;
  group: string;
}

/** What pgtls learns about a host once, at the start of its first play. */
export interface HostFacts {
  hostname: string;
  fqdn: string;
  addresses: string[];
  loginUser: string;
}

/**
 * The read-only view of a host that a module plans from. It has no way to
 * write, and it does not say whether this is --check: planning is the same code in both modes.
 * readFile and stat answer from the executor's overlay first (what earlier tasks of this run
 * planned and is not on the host yet: everything in --check, nothing once written in a real run),
 * so both modes give the same answers for the same host. query() asks the host itself.
 */
export interface PlanContext {
  readonly host: string;
  readonly vars: Readonly<Record<string, unknown>>;
  readonly facts: HostFacts;
  readFile(path: string, opts?: { user?: string }): Promise<FileState | null>;
  /**
   * Modification/change times, sizes (and with `sha256`, sums) of paths, following links; a path that
   * does not exist (or is planned to be removed) is absent from the map. A path with planned content not
   * yet on the host is `pending` with times +Infinity (it will be newer than anything on the host).
   */
  stat(paths: string[], opts?: { user?: string; sha256?: boolean }): Promise<Map<string, PathStat>>;
  /**
   * Runs a probe that must not change the host (psql -c 'show …', openssl x509 …). Writes that
   * earlier tasks planned are committed first, since the probe may read those files; unless the probe
   * says it reads none of them (`independentOfFiles`: the process table, SQL against the running server).
   */
  query(cmd: ShellCommand, opts?: QueryOptions): Promise<ExecResult>;
  /** Per-host cache for facts about the running server; forgotten after a command or a verify ran on the host (file writes change no running process). */
  memo<T>(key: string, compute: () => Promise<T>): Promise<T>;
  /** Per-host cache kept for the whole run, for facts no task changes (paths, versions). */
  memoStable<T>(key: string, compute: () => Promise<T>): Promise<T>;
  /**
   * Per-host cache forgotten at this run's next change of the host (a commit, a command, a rollback):
   * what a passed check proved, while nothing has changed since. Absent in test fakes (nothing kept).
   */
  memoUntilChange?<T>(key: string, compute: () => Promise<T>): Promise<T>;
  /**
   * Resolves once every other host of this play (its batch) has finished the task running now, or
   * waits here too, or has stopped: a standby's roles come from its primary (reset_password). Absent
   * outside a play's tasks (nothing to wait for).
   */
  peersDone?(): Promise<void>;
  warn(message: string): void;
  /** The login/effective user for commands on this host. */
  readonly effectiveUser: string;
  /** This run's id (names its temp files and rollback copies on hosts); absent in test fakes. */
  readonly runId?: string;
  /**
   * What a command of this task printed (ExecAction.output), in the planning rounds after it ran;
   * undefined before, and always in --check (which runs no command).
   */
  output(name: string): Buffer | undefined;
  /** The run's state of controller-side code (read-only use while planning: the CA cache, a simulated rotation). */
  readonly runState: RunState;
}

export interface QueryOptions extends ExecOptions {
  /** The probe reads no file a pending write could change (so those writes can wait). */
  independentOfFiles?: boolean;
}

export interface PathStat {
  /** epoch seconds (fractional where the host's stat prints nanoseconds) */
  mtime: number;
  ctime: number;
  size: number;
  sha256?: string;
  /** planned by this run and not on the host yet */
  pending?: boolean;
}

export interface WriteAction {
  kind: 'write';
  path: string;
  content: Buffer;
  mode?: string;
  owner?: string;
  group?: string;
  validate?: string;
  backup?: boolean;
}

export interface RemoveAction {
  kind: 'remove';
  path: string;
}

/**
 * A file this run made on the host under a temp name in the same directory (a private key generated
 * there, whose bytes never leave the host) replaces `path`. Committed with the run's other pending
 * writes, so a new key and the certificate for it arrive together.
 */
export interface RenameAction {
  kind: 'rename';
  from: string;
  path: string;
}

export interface ExecAction {
  kind: 'exec';
  /** What the recap and --check say, e.g. "reload PostgreSQL". */
  description: string;
  cmd: ShellCommand;
  stdin?: string | Secret;
  user?: string;
  okCodes?: number[];
  timeoutMs?: number;
  /**
   * Files the command creates or changes (e.g. a private key generated on the host): the
   * executor keeps their previous content for a rollback and their original for an uninstall.
   */
  touches?: string[];
  /**
   * The command's stdout is kept under this name for the task's next planning round (ctx.output): a step
   * that needs it (sign the CSR a host printed) is planned again after the command ran, so a plan holds
   * no code. The change holding such a command is `replan`.
   */
  output?: string;
  /**
   * Paths the command or its follow-up actions write, with content known only when applied (a certificate
   * signed from the CSR the command prints): --check, which runs neither, marks them changed in its overlay
   * so later tasks see that they change.
   */
  writesWhenApplied?: string[];
  /**
   * What the command cannot change, so what the run found out about it still holds after it:
   * 'files': no file the run reads (but `touches`): it writes the database, or temp files of its own;
   * 'server': the running server's identity (its postmaster: no restart, no stop). Say only what is sure.
   */
  leavesAlone?: readonly ('files' | 'server')[];
}

/**
 * Checks that what was just done took effect (a reload really switched certificates).
 * When it fails, the executor puts back every file this run changed on the host,
 * runs `recover` (e.g. reload again) and fails the host: the service keeps the old, working state.
 */
export interface VerifyAction {
  kind: 'verify';
  description: string;
  /** The check, by name: a Verifier its module declares (ModuleDef.verifiers). A plan holds no code. */
  verifier: string;
  /** The verifier's data (facts and arguments the module planned from; secrets as Secret). */
  params: unknown;
  recover?: ExecAction;
  /**
   * When it passes, the run's files stay unproven: their rollback copies are kept for a later verify
   * (a check BEFORE the step it guards, or a login that says nothing about the files changed so far).
   */
  keepRollback?: boolean;
  /**
   * Proves something about the host, not about this run's changes (every walsender is TLS): passing
   * proves nothing, failing fails the host without putting files back.
   */
  readOnly?: boolean;
}

/** A check a module declares once, by name; verify actions name it and give it their data. */
export interface Verifier<P = unknown> {
  readonly name: string;
  run(ctx: PlanContext, params: P): Promise<void>;
}

export function defineVerifier<P>(name: string, run: (ctx: PlanContext, params: P) => Promise<void>): Verifier<P> {
  return { name, run };
}

/** A verify action of `v` with its data, type-checked against what the verifier takes. */
export function verifyWith<P>(v: Verifier<P>, params: P, step: Omit<VerifyAction, 'kind' | 'verifier' | 'params'>): VerifyAction {
  return { kind: 'verify', ...step, verifier: v.name, params };
}

/**
 * A change on the controller (its CA directory, fetched certificates), run by the executor after the
 * host actions before it: never during planning. Plain data: the operation by name (a LocalOp its module
 * declares in ModuleDef.localOps) and its data. In --check the operation is asked to simulate: it records in
 * the run's state what later tasks of the --check run should see, and changes nothing.
 */
export interface LocalAction {
  kind: 'local';
  description: string;
  op: string;
  /** The operation's data (secrets as Secret). */
  params: unknown;
  /**
   * A run-level step several hosts may ask for (its key, e.g. the CA directory): run once at the end of the
   * play, only when every host that asked for it ended the play ok (core/shared-steps.ts).
   */
  shared?: string;
}

/**
 * The controller as the executor gives it to a local operation: the run's state (one per run, never
 * module-level) and a file writer whose writes are journaled with the host's changes: put back when the
 * host rolls back, kept when a verify proves the host's new state.
 */
export interface ControllerTarget {
  readonly runState: RunState;
  /** Writes `path` atomically with exactly `mode` (never through a symlink), its previous content journaled. */
  writeFile(path: string, content: Buffer, mode: number): Promise<void>;
}

/** Per-run state of controller-side code (the CA cache, a --check run's simulated CA rotation), by key. */
export interface RunState {
  get<T>(key: string, init: () => T): T;
}

/**
 * A controller-side operation, by name. Returns what was done (that text replaces the change's summary), null
 * when nothing was (another host did it first), or nothing (the summary stands). With `simulate` it changes
 * nothing and says what it would do.
 */
export interface LocalOp<P = unknown> {
  readonly name: string;
  run(target: ControllerTarget, params: P, simulate: boolean): Promise<string | null | void>;
  /**
   * It neither depends on the host's files nor tells the host anything (gencert's new CA): the writes
   * held before it need not reach the host first, and what the run read from the host still holds after it.
   * Without it, a local step waits for the held writes (a CA rotation step follows the hosts' new files).
   */
  readonly independentOfHost?: boolean;
}

export function defineLocalOp<P>(
  name: string,
  run: (target: ControllerTarget, params: P, simulate: boolean) => Promise<string | null | void>,
  opts: { independentOfHost?: boolean } = {},
): LocalOp<P> {
  return { name, run, ...(opts.independentOfHost ? { independentOfHost: true } : {}) };
}

/** A local action of `op` with its data, type-checked against what the operation takes. */
export function localWith<P>(op: LocalOp<P>, params: P, step: Omit<LocalAction, 'kind' | 'op' | 'params'>): LocalAction {
  return { kind: 'local', ...step, op: op.name, params };
}

export type Action = WriteAction | RemoveAction | RenameAction | ExecAction | VerifyAction | LocalAction;

export type Diff =
  | { kind: 'file'; path: string; before: string; after: string }
  | { kind: 'redacted'; path?: string; note: string };

/** One hunk of a unified diff: its line ranges and its lines (' ', '-', '+' or '\', one per line). */
export interface DiffHunk {
  oldStart: number;
  oldLines: number;
  newStart: number;
  newLines: number;
  /** The hunk's lines joined by '\n' (one string: a copy, not slices of the file's text). */
  text: string;
}

/**
 * What a task's result keeps of a file change (lib/task-diff.ts makes it from a Diff): the hunks
 * (3 lines of context, what --diff shows) and the counts the JSON report gives, never the whole text.
 */
export type TaskDiff =
  | { kind: 'patch'; path: string; hunks: DiffHunk[]; added: number; removed: number }
  | { kind: 'redacted'; path?: string; note: string };

export interface Change {
  /** What is done, in the imperative ("reload PostgreSQL …"); --check output is phrased by the reporter. */
  summary: string;
  diff?: Diff;
  actions: Action[];
  /** Its outcome is known only when applied (a login that may fail, a step another host may do first): "conditional change" in --check. */
  conditional?: boolean;
  /** Changes nothing itself: its actions only verify (a login works); when they pass the task stays ok. */
  verifyOnly?: boolean;
  /**
   * The changes after this one depend on its outcome (a CA that must exist before it can sign): a real run
   * applies up to this change and plans the task again; --check applies the rest (as conditional changes).
   */
  replan?: boolean;
}

/** A module: declared arguments and one read-only planning function. No apply: the executor applies. */
export interface ModuleDef<S extends z.ZodType = z.ZodType> {
  name: string;
  description: string;
  args: S;
  plan(ctx: PlanContext, args: z.infer<S>): Promise<Change[]>;
  /**
   * Checks of the arguments against the controller alone (its files: a CA directory), run before any
   * connection for every host that would run the task; each problem is bad input (exit 2).
   */
  preflight?(args: z.infer<S>): { field: string; message: string }[];
  /**
   * The module can change how a PostgreSQL backend authenticates clients (rules, stored verifiers):
   * a run holding such a task must not change some backends of a Pgpool-II node and not the others.
   */
  changesAuthentication?: boolean;
  /**
   * What it plans and changes depends on this host alone (its files, its certificate from the run's
   * one CA): it may run while the play before its own still runs on other hosts (runner.ts runAhead).
   */
  hostLocal?: boolean;
  /**
   * It changes what other hosts' tasks read on the controller (the CA directory): a play holding it
   * is never run alongside a later play's tasks.
   */
  changesFleetState?: boolean;
  /**
   * Files plan() reads (as the task's default user), known from the arguments alone: the executor
   * reads them with the run lock, all in one round trip, before the first task plans. Only a hint:
   * nothing depends on it, and a file left out is read when asked. Never a secret (a key).
   */
  reads?(args: z.infer<S>): string[];
  /**
   * Read-only probes of the host's own files plan() runs with ctx.query (as the task's default user,
   * no stdin), known from the arguments alone: run in the same round trip as the lock, their answers
   * kept until this host changes anything (as cached reads are: what other hosts change cannot change
   * them) and given to the first identical query. Only a hint. Anything else is `sql` (or undeclared).
   */
  probes?(args: z.infer<S>): ShellCommand[];
  /**
   * Read-only SQL plan() (or a read-only verify it names) asks the host's own PostgreSQL server,
   * known from the arguments and the server's facts, each exactly as it is asked: sent with the lock
   * like probes, and given to that query while no host of the run has changed anything (a Pgpool-II
   * restart elsewhere changes the sessions seen here). Only a hint: SQL left out is asked when asked.
   */
  sql?(args: z.infer<S>, server: ServerFacts): string[];
  /**
   * Read-only password logins (psql, the password on stdin) plan() or a read-only verify it names
   * will make, each exactly as made: from the arguments and the files the run has already read
   * (`cached`: no round trip; undefined when not read yet). Sent with the lock like probes, the
   * password only ever on the batch's stdin; an answer counts for the identical login (same command,
   * same password) while no host of the run has changed anything. Only a hint.
   */
  logins?(args: z.infer<S>, cached: (path: string) => Promise<FileState | null> | undefined): Promise<DeclaredLogin[]>;
  /**
   * Controller-side work a real run starts before the host is connected, so that it is done by the
   * time plan() or an action needs it (gencert: a missing CA's key pair, generated in memory while the
   * hosts are connected and locked). From the arguments alone; it must change nothing anyone could see
   * (no file, no host): a run that ends before using it has done nothing. Never called in --check.
   */
  warm?(args: z.infer<S>, env: { vars: Readonly<Record<string, unknown>>; runState: RunState; host: string }): void;
  /** The checks its verify actions name (by Verifier.name, unique over all modules). */
  verifiers?: readonly Verifier[];
  /** The controller-side operations its local actions name (by LocalOp.name, unique over all modules). */
  localOps?: readonly LocalOp[];
}

/** A login a task will make (ModuleDef.logins): its command, and the password its stdin carries. */
export interface DeclaredLogin {
  cmd: ShellCommand;
  password: Secret;
  timeoutMs?: number;
}

/** What a module's declared SQL may depend on: the host's running server, as discovery found it. */
export interface ServerFacts {
  readonly version: number;
  readonly versionNum: number;
  readonly inRecovery: boolean;
}

/** Identity helper so TypeScript infers the args type from the schema (citty's defineCommand). */
export function defineModule<S extends z.ZodType>(def: ModuleDef<S>): ModuleDef<S> {
  return def;
}

/** An action as --check --json lists it: never content or secrets, only what and where (a hash and length for writes). */
export interface PlannedAction {
  kind: Action['kind'];
  description: string;
  /** the summary of the change the action belongs to */
  change: string;
  path?: string;
  sha256?: string;
  bytes?: number;
  mode?: string;
  owner?: string;
  group?: string;
  user?: string;
  touches?: string[];
  /** the verifier (verify) or controller operation (local) the action names */
  name?: string;
  conditional?: boolean;
}

export type TaskStatus = 'ok' | 'changed' | 'failed' | 'skipped' | 'unreachable';

export interface TaskResult {
  task: string;
  module: string;
  status: TaskStatus;
  changed: boolean;
  summaries: string[];
  /** The file changes as hunks and counts (lib/task-diff.ts), not the files' text: results live until the run ends. */
  diffs: TaskDiff[];
  warnings: string[];
  error?: string;
  durationMs: number;
  handler?: boolean;
  /** What the task did (or, in --check, would do), action by action: kind, path, description; no content. */
  planned?: PlannedAction[];
  /** The play the task belongs to (JUnit groups tasks by play and host). */
  play?: string;
  /** It ran while the play before its own still ran on other hosts (runner.ts runAhead). */
  ranAhead?: boolean;
}
