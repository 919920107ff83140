import { Secret, redact } from '../lib/secret.js';
import { RemoteCommandError, type ExecOptions, type ExecResult, type Transport } from '../lib/transport.js';
import { asRoot, asUser, asUserWithPassword, type ShellCommand } from '../lib/sh.js';
import type { ShellSpec } from './stream-shell.js';
import { asUserInBatch, execBatch, type BatchCommand } from './batch.js';

/** PGTLS_STREAM=0: one channel (and one sudo) per command, as before the long-lived shells (for comparison). */
const STREAM = process.env.PGTLS_STREAM !== '0';

const DEFAULT_TIMEOUT_MS = 120_000;

/** How privileges are raised on a host (ansible_become*). Only sudo is implemented. */
export interface BecomeSettings {
  /** ansible_become_user (default root). */
  user: string;
  /** ansible_become_password: sent on stdin to `sudo -S`, never on a command line. */
  password?: Secret;
}

/**
 * A host as the tasks see it: runs commands with the right privileges
 * (ansible_become → `sudo -n`, or `sudo -S` with the become password on stdin; another OS user →
 * runuser/sudo -u) and turns a failing exit code into a RemoteCommandError whose text never
 * contains a secret.
 */
export class HostShell {
  constructor(
    private readonly transport: Transport,
    readonly loginUser: string,
    readonly become: boolean,
    readonly becomeSettings: BecomeSettings = { user: 'root' },
  ) {}

  /** The user commands run as when no `user` is given. */
  get effectiveUser(): string {
    return this.become ? this.becomeSettings.user : this.loginUser;
  }

  /** The command line for `cmd` as `user`, and whether the become password leads its stdin. */
  private wrapped(cmd: ShellCommand, user?: string): { cmd: ShellCommand; password?: Secret } {
    const target = user ?? this.effectiveUser;
    if (target === this.loginUser) return { cmd };
    if (this.loginUser === 'root') return { cmd: asUser(cmd, target, false) };
    const password = this.becomeSettings.password;
    if (password) return { cmd: asUserWithPassword(cmd, target), password };
    return { cmd: target === 'root' ? asRoot(cmd) : asUser(cmd, target, true) };
  }

  wrap(cmd: ShellCommand, user?: string): ShellCommand {
    return this.wrapped(cmd, user).cmd;
  }

  /**
   * Commands that must run before any later command of this host, but whose answer nothing waits
   * for: a commit's record signatures, the rollback copies a passed verify made useless. They go in
   * front of the next command, in its round trip (batch.sh) when it can share one (no stdin, as this
   * shell's user or one root switches to), else just before it. So the order on the host is always
   * the order they were asked in; what a dead controller never sent is the next run's to finish
   * (lock.sh signs unsigned records and removes a dead run's rollback copies).
   */
  private readonly before: { cmd: ShellCommand; what: string }[] = [];
  /** What an owed command that failed was for, and why (the session warns at its end). */
  readonly owedFailures: string[] = [];
  /** The shell this one replaced (another become for the next task): what it still owes runs first. */
  private predecessor?: HostShell;
  /** Failures of owed commands, this shell's and its predecessors'. */
  get allOwedFailures(): string[] {
    return [...(this.predecessor?.allOwedFailures ?? []), ...this.owedFailures];
  }

  beforeNext(cmd: ShellCommand, what: string): void {
    this.before.push({ cmd, what });
  }

  /** This shell replaces `prev` for the host's next commands (what prev still owes runs first). */
  succeed(prev: HostShell): this {
    this.predecessor = prev;
    return this;
  }

  /** The owed commands' round trip in flight: a command asked meanwhile goes after it. */
  private owing: Promise<unknown> = Promise.resolve();
  /** This shell without the owed commands (what their own round trip is sent through). */
  private readonly direct = { exec: (cmd: ShellCommand, opts?: ExecOptions) => this.execNow(cmd, opts ?? {}) };

  /** Runs what is owed now, in one round trip (the end of the run; a command that cannot share its round trip). */
  async flush(): Promise<void> {
    await this.settlePredecessor();
    await this.owing;
    const owed = this.before.splice(0);
    if (owed.length > 0) await this.sendOwed(owed, []);
  }

  /** The owed commands, then `mine` (when given), in one batch; an owed command's failure is noted. */
  private async sendOwed(owed: { cmd: ShellCommand; what: string }[], mine: BatchCommand[]): Promise<(ExecResult | RemoteCommandError | undefined)[]> {
    const sent = execBatch(this.direct, [...owed.map((o) => ({ cmd: o.cmd })), ...mine], 'all');
    this.owing = sent.catch(() => undefined);
    const results = await sent.catch((e: unknown) => owed.map(() => (e instanceof Error ? e : new Error(String(e)))));
    for (const [i, o] of owed.entries()) {
      const r = results[i];
      if (!r || r instanceof Error) this.owedFailures.push(`${o.what}: ${r ? r.message : 'the host did not run it'}`);
    }
    return results.slice(owed.length) as (ExecResult | RemoteCommandError | undefined)[];
  }

  /** What the replaced shell owes, sent once (a command asked meanwhile waits for it: `owing`). */
  private settlePredecessor(): Promise<unknown> {
    const prev = this.predecessor;
    if (!prev) return this.owing;
    this.predecessor = undefined;
    const settled = prev.flush().then(() => void this.owedFailures.push(...prev.allOwedFailures));
    this.owing = settled.catch(() => undefined);
    return this.owing;
  }

  async exec(cmd: ShellCommand, opts: ExecOptions = {}): Promise<ExecResult> {
    await this.settlePredecessor();
    await this.owing;
    if (this.before.length === 0) return this.execNow(cmd, opts);
    const sharable = opts.stdin === undefined && (opts.user === undefined || opts.user === this.effectiveUser || this.loginUser === 'root');
    if (!sharable) {
      await this.flush();
      return this.execNow(cmd, opts);
    }
    const owed = this.before.splice(0);
    const [mine] = await this.sendOwed(owed, [{ cmd: asUserInBatch(this, cmd, opts.user), okCodes: opts.okCodes ?? [0], ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }) }]);
    if (mine instanceof RemoteCommandError) throw mine;
    if (!mine || mine instanceof Error) throw new RemoteCommandError({ command: cmd.text, exitCode: null, signal: null, stdout: Buffer.alloc(0), stderr: Buffer.from('the host did not answer this command of its batch'), timedOut: false, durationMs: 0 });
    return mine;
  }

  private async execNow(cmd: ShellCommand, opts: ExecOptions): Promise<ExecResult> {
    const stdin =
      opts.stdin === undefined
        ? undefined
        : Buffer.isBuffer(opts.stdin)
          ? opts.stdin
          : Buffer.from(opts.stdin instanceof Secret ? opts.stdin.reveal() : opts.stdin, 'utf8');
    const w = this.wrapped(cmd, opts.user);
    const withPassword = (input: Buffer | undefined, pw: Secret | undefined) =>
      pw ? Buffer.concat([Buffer.from(`${pw.reveal()}\n`, 'utf8'), input ?? Buffer.alloc(0)]) : input;
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const user = opts.user ?? this.effectiveUser;
    // Logged in as root, another user's command goes through root's own shell as `runuser … CMD`
    // (no sudo to save, so no long-lived shell of that user: one shell start less per host, and
    // no process of that user outlives its command).
    const viaLogin = this.loginUser === 'root' && user !== 'root' && !w.password;
    const result =
      STREAM && this.transport.runIn
        ? await this.transport.runIn(
            { ...this.shellSpec(viaLogin ? this.loginUser : user), fallback: () => ({ cmd: w.cmd, stdin: withPassword(stdin, w.password) }) },
            viaLogin ? w.cmd : cmd,
            stdin,
            timeoutMs,
          )
        : await this.transport.run(w.cmd, withPassword(stdin, w.password), timeoutMs);
    const ok = opts.okCodes ?? [0];
    if (result.exitCode === null || !ok.includes(result.exitCode)) {
      const secrets = [...(opts.stdin instanceof Secret ? [opts.stdin] : []), ...(w.password ? [w.password] : [])];
      const safe = { ...result, stderr: Buffer.from(redact(result.stderr.toString('utf8'), secrets)) };
      throw new RemoteCommandError(safe);
    }
    return result;
  }

  /**
   * The long-lived shell of `user` on this host: the agent inside exactly the wrapper one command
   * would get, so sudo (and its password, on stdin) happens once per shell instead of per command.
   */
  private shellSpec(user: string): Omit<ShellSpec, 'fallback'> {
    return {
      key: `${user}${this.becomeSettings.password ? ' (sudo -S)' : ''}`,
      launch: (agent) => {
        const l = this.wrapped(agent, user);
        return { cmd: l.cmd, ...(l.password ? { preamble: Buffer.from(`${l.password.reveal()}\n`, 'utf8') } : {}) };
      },
    };
  }

  close(): Promise<void> {
    return this.transport.close();
  }
}
