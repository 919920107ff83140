import { Secret, redact } from '../core/secret.js';
import { RemoteCommandError, type ExecOptions, type ExecResult, type Transport } from './connection.js';
import { asRoot, asUser, type ShellCommand } from './sh.js';

const DEFAULT_TIMEOUT_MS = 120_000;

/**
 * A host as the tasks see it: runs commands with the right privileges
 * (ansible_become → `sudo -n`, another OS user → runuser/sudo -u) and turns a
 * failing exit code into a RemoteCommandError whose text never contains a secret.
 */
export class HostShell {
  constructor(
    private readonly transport: Transport,
    readonly loginUser: string,
    readonly become: boolean,
  ) {}

  /** The user commands run as when no `user` is given. */
  get effectiveUser(): string {
    return this.become ? 'root' : this.loginUser;
  }

  wrap(cmd: ShellCommand, user?: string): ShellCommand {
    const target = user ?? this.effectiveUser;
    if (target === this.loginUser) return cmd;
    if (this.loginUser === 'root') return asUser(cmd, target, false);
    return target === 'root' ? asRoot(cmd) : asUser(cmd, target, true);
  }

  async exec(cmd: ShellCommand, opts: ExecOptions = {}): Promise<ExecResult> {
    const stdin =
      opts.stdin === undefined
        ? undefined
        : Buffer.isBuffer(opts.stdin)
          ? opts.stdin
          : Buffer.from(opts.stdin instanceof Secret ? opts.stdin.reveal() : opts.stdin, 'utf8');
    const result = await this.transport.run(this.wrap(cmd, opts.user), stdin, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const ok = opts.okCodes ?? [0];
    if (result.exitCode === null || !ok.includes(result.exitCode)) {
      const secrets = opts.stdin instanceof Secret ? [opts.stdin] : [];
      const safe = { ...result, stderr: Buffer.from(redact(result.stderr.toString('utf8'), secrets)) };
      throw new RemoteCommandError(safe);
    }
    return result;
  }

  close(): Promise<void> {
    return this.transport.close();
  }
}
