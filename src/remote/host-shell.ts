import { Secret, redact } from '../lib/secret.js';
import { RemoteCommandError, type ExecOptions, type ExecResult, type Transport } from '../lib/transport.js';
import { asRoot, asUser, asUserWithPassword, type ShellCommand } from '../lib/sh.js';
import type { ShellSpec } from './stream-shell.js';

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

  async exec(cmd: ShellCommand, opts: ExecOptions = {}): Promise<ExecResult> {
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
