import { RemoteCommandError, type ExecOptions, type ExecResult } from '../lib/transport.js';
import { Secret, redact } from '../lib/secret.js';
import { asUser, sh, type ShellCommand } from '../lib/sh.js';
import { standaloneScript } from './standalone-scripts.js';

/**
 * stop / all / first: one after the other (see execBatch). parallel: every command at once, for
 * read-only commands (a turn's reads and queries); first-parallel: the first alone (the run lock),
 * then the rest at once. Answers come back in order either way.
 */
export type BatchMode = 'stop' | 'all' | 'first' | 'parallel' | 'first-parallel';

/**
 * A batch is one command line: batch.sh and every command, each quoted. One argument may be 128 KiB
 * on Linux (a long-lived shell pipes longer ones, a single channel cannot), so a batch that can
 * leave commands for later keeps under this.
 */
export const MAX_BATCH_BYTES = 120 * 1024;

/** What a batch needs of its host's shell (HostShell: which imports this, so only its shape here). */
export interface BatchShell {
  readonly effectiveUser: string;
  exec(cmd: ShellCommand, opts?: ExecOptions): Promise<ExecResult>;
}

/** A batch runs as its shell's user: another user's command in it goes through runuser (root runs the batch). */
export function asUserInBatch(shell: Pick<BatchShell, 'effectiveUser'>, cmd: ShellCommand, user?: string): ShellCommand {
  return user === undefined || user === shell.effectiveUser ? cmd : asUser(cmd, user, false);
}

/**
 * A query sent ahead of the task that will ask it (replayed, declared): as its user, its stdin and
 * limit along; okCodes [] so that every answer comes back, as an error object, and the query's own
 * okCodes decide when it is asked.
 */
export function queryInBatch(shell: Pick<BatchShell, 'effectiveUser'>, q: { cmd: ShellCommand; user?: string; stdin?: ExecOptions['stdin']; timeoutMs?: number }): BatchCommand {
  return { cmd: asUserInBatch(shell, q.cmd, q.user), okCodes: [], ...(q.stdin === undefined ? {} : { stdin: q.stdin }), ...(q.timeoutMs === undefined ? {} : { timeoutMs: q.timeoutMs }) };
}

/** What a command adds to a batch's command line (quoted, with its separator). */
export function batchBytes(cmd: ShellCommand): number {
  return sh`${cmd.text}`.text.length + 1;
}

/** What the batch script itself takes of the line. */
export function batchScriptBytes(): number {
  return sh`sh -c ${standaloneScript('batch')} pgtls-batch first -`.text.length;
}

/** One command of a batch: `okCodes` as for HostShell.exec (default [0]); `stdin` reaches it through the batch's own stdin, never argv. */
export interface BatchCommand {
  cmd: ShellCommand;
  okCodes?: number[];
  stdin?: ExecOptions['stdin'];
  /** How long it may take (the batch's limit is the sum; default as for HostShell.exec). */
  timeoutMs?: number;
}

/** No single command's limit: as HostShell.exec's. */
const COMMAND_TIMEOUT_MS = 120_000;

const inputBytes = (stdin: NonNullable<ExecOptions['stdin']>): Buffer =>
  Buffer.isBuffer(stdin) ? stdin : Buffer.from(stdin instanceof Secret ? stdin.reveal() : stdin, 'utf8');

/** batch.sh's INPUTS argument and its stdin: one base64 line per command that has stdin. */
function batchInput(cmds: readonly BatchCommand[]): { inputs: string; stdin?: Secret } {
  if (!cmds.some((c) => c.stdin !== undefined)) return { inputs: '-' };
  const lines = cmds.flatMap((c) => (c.stdin === undefined ? [] : [`${inputBytes(c.stdin).toString('base64')}\n`]));
  // a Secret: what it carries is the commands' stdin (passwords among it); only their own Secrets are remembered
  return { inputs: cmds.map((c) => (c.stdin === undefined ? '0' : '1')).join(''), stdin: Secret.of(lines.join('')) };
}

/**
 * Several independent commands in ONE round trip (batch.sh), as the same user, in order: the run
 * lock with the first reads, the rollback copies' cleanup with the unlock. Each result is checked
 * as HostShell.exec checks one (a RemoteCommandError for an exit code not in okCodes). In `stop`
 * mode the first failure ends the batch: the commands after it did not run (undefined here, and
 * the caller throws the failure's error before using them); in `first` mode only the first
 * command's failure does (the run lock, then what it guards).
 */
export async function execBatch(shell: Pick<BatchShell, 'exec'>, cmds: readonly BatchCommand[], mode: BatchMode, user?: string): Promise<(ExecResult | RemoteCommandError | undefined)[]> {
  // one command needs no batch.sh around it (its temp directory, frames and parse: five processes)
  if (cmds.length === 1) return oneByOne(shell, cmds, mode, user);
  const started = Date.now();
  const { inputs, stdin } = batchInput(cmds);
  const timeoutMs = cmds.some((c) => c.timeoutMs !== undefined) ? cmds.reduce((t, c) => t + (c.timeoutMs ?? COMMAND_TIMEOUT_MS), 0) : undefined;
  const res = await shell.exec(sh`sh -c ${standaloneScript('batch')} pgtls-batch ${mode} ${inputs} ${cmds.map((c) => c.cmd.text)}`, {
    ...(user === undefined ? {} : { user }),
    ...(stdin === undefined ? {} : { stdin }),
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  });
  if (res.stdout.toString('latin1') === 'pgtls-batch-unavailable\n') return oneByOne(shell, cmds, mode, user);
  const parts = parseBatch(res.stdout, cmds.length);
  return cmds.map((c, i) => {
    const p = parts[i];
    if (!p) return undefined;
    const r: ExecResult = { command: c.cmd.text, exitCode: p.exitCode, signal: null, stdout: p.stdout, stderr: p.stderr, timedOut: false, durationMs: Date.now() - started };
    if ((c.okCodes ?? [0]).includes(p.exitCode)) return r;
    // as HostShell.exec: a failure's stderr never shows the stdin it was given
    const secrets = c.stdin instanceof Secret ? [c.stdin] : [];
    return new RemoteCommandError({ ...r, stderr: Buffer.from(redact(r.stderr.toString('utf8'), secrets)) });
  });
}

/** The batch's commands one round trip each (the host could not make batch.sh's temp files), with the same results. */
async function oneByOne(shell: Pick<BatchShell, 'exec'>, cmds: readonly BatchCommand[], mode: BatchMode, user?: string): Promise<(ExecResult | RemoteCommandError | undefined)[]> {
  const out: (ExecResult | RemoteCommandError | undefined)[] = [];
  for (const c of cmds) {
    const opts = { okCodes: c.okCodes ?? [0], ...(user === undefined ? {} : { user }), ...(c.stdin === undefined ? {} : { stdin: c.stdin }), ...(c.timeoutMs === undefined ? {} : { timeoutMs: c.timeoutMs }) };
    const r = await shell.exec(c.cmd, opts).catch((e: unknown) => {
      if (e instanceof RemoteCommandError) return e;
      throw e;
    });
    out.push(r);
    // as batch.sh: `stop` ends at the first exit code other than 0 (okCodes only decide what is an error)
    const failed = (r instanceof RemoteCommandError ? r.result.exitCode : r.exitCode) !== 0;
    if (failed && (mode === 'stop' || (mode.startsWith('first') && out.length === 1))) break;
  }
  while (out.length < cmds.length) out.push(undefined);
  return out;
}

/** batch.sh's frames; a frame that is cut or malformed ends the parse (nothing after it is trusted). */
export function parseBatch(out: Buffer, max: number): { exitCode: number; stdout: Buffer; stderr: Buffer }[] {
  const parts: { exitCode: number; stdout: Buffer; stderr: Buffer }[] = [];
  let at = 0;
  while (parts.length < max) {
    const nl = out.indexOf(0x0a, at);
    if (nl < 0) break;
    const m = /^pgtls-cmd (\d+) (\d+) (\d+)$/.exec(out.subarray(at, nl).toString('latin1'));
    if (!m) break;
    const [rc, outLen, errLen] = [Number(m[1]), Number(m[2]), Number(m[3])];
    const end = nl + 1 + outLen + errLen;
    if (end > out.length) break;
    parts.push({ exitCode: rc, stdout: Buffer.from(out.subarray(nl + 1, nl + 1 + outLen)), stderr: Buffer.from(out.subarray(nl + 1 + outLen, end)) });
    at = end;
  }
  return parts;
}
