import type { z } from 'zod';
import type { ExecOptions, ExecResult } from '../remote/connection.js';
import type { FileState } from '../remote/files.js';
import type { ShellCommand } from '../remote/sh.js';
import type { Secret } from './secret.js';

export type { FileState };

/** What pgtls learns about a host once, at the start of its first play. */
export interface HostFacts {
  hostname: string;
  fqdn: string;
  addresses: string[];
  loginUser: string;
}

/**
 * The read-only view of a host that a module plans from. It has no way to
 * write: planning is the same code in --check and in a real run.
 * In --check, readFile sees the files as earlier tasks of this run would have left them.
 */
export interface PlanContext {
  readonly host: string;
  readonly vars: Readonly<Record<string, unknown>>;
  readonly facts: HostFacts;
  readonly check: boolean;
  readFile(path: string, opts?: { user?: string }): Promise<FileState | null>;
  /**
   * Runs a probe that must not change the host (psql -c 'show …', openssl x509 …). Writes that
   * earlier tasks planned are committed first, since the probe may read those files; unless the probe
   * says it reads none of them (`independentOfFiles`: the process table, SQL against the running server).
   */
  query(cmd: ShellCommand, opts?: QueryOptions): Promise<ExecResult>;
  /** Per-host cache for expensive facts; forgotten after any change on the host. */
  memo<T>(key: string, compute: () => Promise<T>): Promise<T>;
  /** Per-host cache kept for the whole run, for facts no task changes (paths, versions). */
  memoStable<T>(key: string, compute: () => Promise<T>): Promise<T>;
  warn(message: string): void;
  /** The login/effective user for commands on this host. */
  readonly effectiveUser: string;
  /** This run's id (names its temp files and rollback copies on hosts); absent in test fakes. */
  readonly runId?: string;
}

export interface QueryOptions extends ExecOptions {
  /** The probe reads no file a pending write could change (so those writes can wait). */
  independentOfFiles?: boolean;
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
  /** Follow-up actions computed from the command's output (e.g. sign the CSR a host printed). */
  then?: (stdout: Buffer) => Promise<Action[]> | Action[];
}

/**
 * Checks that what was just done took effect (a reload really switched certificates).
 * When it fails, the executor puts back every file this run changed on the host,
 * runs `recover` (e.g. reload again) and fails the host: the service keeps the old, working state.
 */
export interface VerifyAction {
  kind: 'verify';
  description: string;
  check: (ctx: PlanContext) => Promise<void>;
  recover?: ExecAction;
}

export type Action = WriteAction | RemoveAction | RenameAction | ExecAction | VerifyAction;

export type Diff =
  | { kind: 'file'; path: string; before: string; after: string }
  | { kind: 'redacted'; path?: string; note: string };

export interface Change {
  summary: string;
  diff?: Diff;
  actions: Action[];
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
}

/** Identity helper so TypeScript infers the args type from the schema (citty's defineCommand). */
export function defineModule<S extends z.ZodType>(def: ModuleDef<S>): ModuleDef<S> {
  return def;
}

export type TaskStatus = 'ok' | 'changed' | 'failed' | 'skipped' | 'unreachable';

export interface TaskResult {
  task: string;
  module: string;
  status: TaskStatus;
  changed: boolean;
  summaries: string[];
  diffs: Diff[];
  warnings: string[];
  error?: string;
  durationMs: number;
  handler?: boolean;
  /** The play the task belongs to (JUnit groups tasks by play and host). */
  play?: string;
}
