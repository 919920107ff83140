import type { Secret } from '../core/secret.js';
import type { ShellCommand } from './sh.js';
import type { ShellSpec } from './stream-shell.js';

export interface ExecOptions {
  /** Data for the command's stdin: the only way secrets reach a host. */
  stdin?: string | Buffer | Secret;
  timeoutMs?: number;
  /** Exit codes that count as success (default [0]). */
  okCodes?: number[];
  /** Run as this OS user (e.g. the database's). Default: root when become is on, else the login user. */
  user?: string;
}

/** One shape for success and failure (execa's model): the error carries the result. */
export interface ExecResult {
  command: string;
  exitCode: number | null;
  signal: string | null;
  stdout: Buffer;
  stderr: Buffer;
  timedOut: boolean;
  durationMs: number;
}

export class RemoteCommandError extends Error {
  constructor(readonly result: ExecResult, what?: string) {
    const err = result.stderr.toString('utf8').trim().split('\n').slice(-3).join(' | ');
    const why = result.timedOut ? 'timed out' : `exited with ${result.exitCode ?? `signal ${result.signal}`}`;
    super(`${what ?? 'remote command'} ${why}${err ? `: ${err}` : ''}`);
    this.name = 'RemoteCommandError';
  }
}

/** A transport that runs a command line on one host. */
export interface Transport {
  run(cmd: ShellCommand, stdin: Buffer | undefined, timeoutMs: number): Promise<ExecResult>;
  /**
   * Runs `cmd` in the host's long-lived shell for `shell.key` (src/remote/stream-shell.ts), opened
   * once with the user's wrapper; when that shell cannot be started, as `shell.fallback()` over run().
   * Optional: a transport without it gets every command wrapped, one run() each.
   */
  runIn?(shell: ShellSpec, cmd: ShellCommand, stdin: Buffer | undefined, timeoutMs: number): Promise<ExecResult>;
  close(): Promise<void>;
}
