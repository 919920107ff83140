import type { Secret } from './secret.js';
import type { ShellCommand } from './sh.js';

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

/** How a long-lived shell is started (stream-shell.ts): its command line inside the user's wrapper. */
export interface ShellLaunch {
  cmd: ShellCommand;
  /** e.g. the become password line for `sudo -S`: written once, before the protocol starts. */
  preamble?: Buffer;
}

/** Which long-lived shell runs a command (stream-shell.ts), and how to run it without one. */
export interface ShellSpec {
  /** One shell per key (the effective user, and how it is reached). */
  key: string;
  /** The agent inside the user's wrapper (runuser / sudo -n / sudo -S and its password line). */
  launch(agent: ShellCommand): ShellLaunch;
  /** The command as one channel would run it: used when this shell cannot be started. */
  fallback(): { cmd: ShellCommand; stdin: Buffer | undefined };
}
