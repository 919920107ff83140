import { readFileSync, writeSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { openPrivateAppend } from '../lib/private-file.js';
import { redactKnown } from '../lib/secret.js';
import { Client, type ConnectConfig, type ServerHostKeyAlgorithm } from 'ssh2';
import { UnreachableError } from '../lib/errors.js';
import type { ExecResult, Transport } from '../lib/transport.js';
import {
  checkHostKey,
  hostKeyMessage,
  keyTypeOfBlob,
  parseKnownHosts,
  preferredHostKeyAlgorithms,
  sha256Fingerprint,
} from './known-hosts.js';
import type { ShellCommand } from '../lib/sh.js';
import { ShellPool, type ShellChannel, type ShellSpec } from './stream-shell.js';

export interface SshTarget {
  /** Inventory name, for messages. */
  name: string;
  host: string;
  port: number;
  user: string;
  privateKeyFile?: string;
  /** Path of an OpenSSH known_hosts file; null disables verification (explicit opt-out). */
  knownHostsFile: string | null;
  connectTimeoutMs: number;
  /** Bastions to go through, in order (ProxyJump): each hop's host key is verified too. */
  jumps?: { user?: string; host: string; port: number }[];
}

let commandLog: { file: string; fd: number } | undefined;

/**
 * PGTLS_COMMAND_LOG=FILE: every remote command line (never stdin), 0600, never through a symlink.
 * Secrets are never on a command line (sh refuses them); redactKnown is the belt to those braces.
 */
function logCommand(host: string, text: string): void {
  // read at each command, not once at load: a process that sets it later (a test) is logged too
  const file = process.env.PGTLS_COMMAND_LOG;
  if (!file) return;
  if (commandLog?.file !== file) commandLog = { file, fd: openPrivateAppend(file) };
  writeSync(commandLog.fd, `${host}\t${redactKnown(text).replace(/\n/g, '\\n')}\n`);
}

/**
 * -v / -vv: the CLI sets this to print each remote command line as PGTLS_COMMAND_LOG writes it
 * (host TAB command; never stdin, where secrets travel), and at -vv its exit status and time.
 */
export const commandEcho: { verbosity: number; write: (line: string) => void } = { verbosity: 0, write: () => undefined };

/** OpenSSH's default MaxSessions is 10: stay below it so channels never get refused. */
const MAX_CHANNELS = 8;

/**
 * One ssh2 connection per host, reused for every command of the run.
 * Host keys are checked against known_hosts before authentication goes on.
 */
export class SshTransport implements Transport {
  private constructor(
    private readonly client: Client,
    private readonly target: SshTarget,
    /** The jump hosts' connections, closed with this one. */
    private readonly hops: Client[] = [],
  ) {}
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  private closed = false;
  /** The run's long-lived shells on this host, one per user (each holds one channel for the run). */
  private readonly shells = new ShellPool(
    (cmd) => this.openShellChannel(cmd),
    (cmd, stdin, timeoutMs) => this.run(cmd, stdin, timeoutMs),
    (cmd) => this.log(cmd, 'shell'),
  );

  static async connect(target: SshTarget): Promise<SshTransport> {
    const hops: Client[] = [];
    let sock: Duplex | undefined;
    try {
      // ProxyJump: ssh to each bastion (over the previous hop), then a direct-tcpip channel to the next.
      const chain = [...(target.jumps ?? []).map((j) => ({ ...target, name: `${target.name} (jump host ${j.host})`, host: j.host, port: j.port, user: j.user ?? target.user })), target];
      for (const [i, hop] of chain.entries()) {
        const client = await SshTransport.open(hop, sock).catch((e: unknown) => {
          if (i === chain.length - 1 || !(e instanceof Error)) throw e;
          throw new UnreachableError(`jump host ${hop.user}@${hop.host}:${hop.port}: ${e.message}`);
        });
        if (i === chain.length - 1) {
          const transport = new SshTransport(client, target, hops);
          client.on('error', () => {
            /* errors after ready surface through the pending exec's close */
          });
          client.on('close', () => {
            transport.closed = true;
          });
          return transport;
        }
        hops.push(client);
        client.on('error', () => undefined);
        const next = chain[i + 1]!;
        sock = await new Promise<Duplex>((resolve, reject) =>
          client.forwardOut('127.0.0.1', 0, next.host, next.port, (err, stream) =>
            err ? reject(new UnreachableError(`jump host ${hop.host}:${hop.port} cannot reach ${next.host}:${next.port}: ${err.message}`)) : resolve(stream),
          ),
        );
      }
      throw new Error('internal: empty connection chain');
    } catch (e) {
      for (const h of hops) h.end();
      throw e;
    }
  }

  private static async open(target: SshTarget, sock: Duplex | undefined): Promise<Client> {
    const client = new Client();
    let hostKeyProblem: string | undefined;
    const entries = target.knownHostsFile === null ? null : loadKnownHosts(target.knownHostsFile);
    const config: ConnectConfig = {
      host: target.host,
      port: target.port,
      username: target.user,
      readyTimeout: target.connectTimeoutMs,
      ...(sock ? { sock } : {}),
      keepaliveInterval: 10_000,
      keepaliveCountMax: 3,
      // Ask first for the key types known_hosts holds for this host (as OpenSSH does), so a
      // server with several host keys is not reported as changed when only one type is known.
      ...(entries === null ? {} : { algorithms: { serverHostKey: preferredHostKeyAlgorithms(entries, target.host, target.port) as ServerHostKeyAlgorithm[] } }),
      hostVerifier: (key: Buffer) => {
        if (entries === null) {
          // Not verified, but never silently: the operator can compare this line with the host.
          process.stderr.write(
            `pgtls: WARNING: ${target.name} (${target.host}:${target.port}): host key NOT verified, accepted ${keyTypeOfBlob(key).replace(/[^\x21-\x7e]/g, '?')} ${sha256Fingerprint(key)}\n`,
          );
          return true;
        }
        const verdict = checkHostKey(entries, target.host, target.port, keyTypeOfBlob(key), key);
        if (verdict.status === 'match') return true;
        hostKeyProblem = hostKeyMessage(
          verdict,
          target.host,
          target.port,
          target.knownHostsFile ?? '',
          sha256Fingerprint(key),
        );
        return false;
      },
    };
    if (target.privateKeyFile) {
      try {
        config.privateKey = readFileSync(target.privateKeyFile);
      } catch (e) {
        throw new UnreachableError(`cannot read private key ${target.privateKeyFile}: ${(e as Error).message}`);
      }
    }
    if (process.env.SSH_AUTH_SOCK) config.agent = process.env.SSH_AUTH_SOCK;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => {
        client.removeListener('ready', onReady);
        reject(new UnreachableError(hostKeyProblem ?? describeConnectError(err, target)));
      };
      const onReady = () => {
        client.removeListener('error', onError);
        resolve();
      };
      client.once('ready', onReady);
      client.once('error', onError);
      client.connect(config);
    });
    return client;
  }

  /** PGTLS_COMMAND_LOG and -v: every command line, whether on its own channel or in a long-lived shell. */
  private log(cmd: ShellCommand, how: 'channel' | 'shell' | 'streamed'): void {
    // Debugging aid (and how the tests prove that no secret is ever on a command line):
    // PGTLS_COMMAND_LOG=FILE appends every remote command line, never its stdin. A shell's start is
    // logged as the command it is; the commands streamed to it, each as its own line.
    void how; // the log format stays "host<TAB>command line" either way
    logCommand(this.target.name, cmd.text);
    if (commandEcho.verbosity >= 1) commandEcho.write(`${this.target.name}\t${redactKnown(cmd.text).replace(/\n/g, '\\n')}`);
  }

  private echoResult(r: ExecResult): void {
    if (commandEcho.verbosity >= 2)
      commandEcho.write(`${this.target.name}\t=> ${r.timedOut ? 'timed out' : r.exitCode === null ? `signal ${r.signal}` : `exit ${r.exitCode}`} (${r.durationMs} ms)`);
  }

  async run(cmd: ShellCommand, stdin: Buffer | undefined, timeoutMs: number): Promise<ExecResult> {
    this.log(cmd, 'channel');
    await this.acquire();
    try {
      const r = await this.exec(cmd, stdin, timeoutMs);
      this.echoResult(r);
      return r;
    } finally {
      this.release();
    }
  }

  async runIn(shell: ShellSpec, cmd: ShellCommand, stdin: Buffer | undefined, timeoutMs: number): Promise<ExecResult> {
    if (this.closed) throw new UnreachableError(`connection to ${this.target.name} was lost`);
    let fellBack = false;
    const r = await this.shells.run(
      {
        ...shell,
        fallback: () => {
          fellBack = true; // run() logs and echoes it itself
          return shell.fallback();
        },
      },
      cmd,
      stdin,
      timeoutMs,
      () => this.log(cmd, 'streamed'),
    );
    if (!fellBack) this.echoResult(r);
    return r;
  }

  /** A channel that stays open for a long-lived shell (it counts against MaxSessions like any other). */
  private async openShellChannel(cmd: ShellCommand): Promise<ShellChannel> {
    if (this.closed) throw new UnreachableError(`connection to ${this.target.name} was lost`);
    await this.acquire();
    return new Promise<ShellChannel>((resolve, reject) => {
      this.client.exec(cmd.text, (err, stream) => {
        if (err) {
          this.release();
          reject(new UnreachableError(`${this.target.name}: cannot open a channel: ${err.message}`));
          return;
        }
        const closed = new Promise<{ code: number | null; signal: string | null }>((done) =>
          stream.on('close', (code: number | null, signal?: string) => {
            this.release();
            done({ code: code ?? null, signal: signal ?? null });
          }),
        );
        stream.on('error', () => undefined);
        resolve({
          stdin: stream,
          stdout: stream,
          stderr: stream.stderr,
          closed,
          kill: () => {
            try {
              stream.signal('KILL');
            } catch {
              /* servers may ignore signals; closing the channel is what matters */
            }
            stream.close();
          },
        });
      });
    });
  }

  private exec(cmd: ShellCommand, stdin: Buffer | undefined, timeoutMs: number): Promise<ExecResult> {
    const started = Date.now();
    if (this.closed) throw new UnreachableError(`connection to ${this.target.name} was lost`);
    return new Promise<ExecResult>((resolve, reject) => {
      this.client.exec(cmd.text, (err, stream) => {
        if (err) {
          reject(new UnreachableError(`${this.target.name}: cannot open a channel: ${err.message}`));
          return;
        }
        const out: Buffer[] = [];
        const errOut: Buffer[] = [];
        let timedOut = false;
        const timer = setTimeout(() => {
          timedOut = true;
          try {
            stream.signal('KILL');
          } catch {
            /* servers may ignore signals; closing the channel is what matters */
          }
          stream.close();
        }, timeoutMs);
        stream.on('data', (d: Buffer) => out.push(d));
        stream.stderr.on('data', (d: Buffer) => errOut.push(d));
        stream.on('close', (code: number | null, signal?: string) => {
          clearTimeout(timer);
          resolve({
            command: cmd.text,
            exitCode: timedOut ? null : (code ?? null),
            signal: signal ?? null,
            stdout: Buffer.concat(out),
            stderr: Buffer.concat(errOut),
            timedOut,
            durationMs: Date.now() - started,
          });
        });
        stream.end(stdin);
      });
    });
  }

  private async acquire(): Promise<void> {
    if (this.active < MAX_CHANNELS) {
      this.active++;
      return;
    }
    await new Promise<void>((r) => this.waiting.push(r));
    this.active++;
  }

  private release(): void {
    this.active--;
    this.waiting.shift()?.();
  }

  /** Drops the connection at once, as a network cut or a killed controller would (the fault tests use it). */
  destroy(): void {
    this.closed = true;
    this.client.destroy();
  }

  async close(): Promise<void> {
    await this.shells.close();
    if (this.closed) {
      for (const h of this.hops) h.end();
      return;
    }
    await new Promise<void>((resolve) => {
      this.client.once('close', () => resolve());
      this.client.end();
      setTimeout(resolve, 2000).unref();
    });
    for (const h of this.hops.reverse()) h.end();
  }
}

function loadKnownHosts(file: string) {
  try {
    return parseKnownHosts(readFileSync(file, 'utf8'));
  } catch {
    // A missing file means no host is known: every host then fails verification with a clear message.
    return [];
  }
}

function describeConnectError(err: Error & { level?: string; code?: string }, t: SshTarget): string {
  const where = `${t.user}@${t.host}:${t.port}`;
  if (err.level === 'client-authentication')
    return `authentication failed for ${where} (tried ${t.privateKeyFile ? `key ${t.privateKeyFile}` : 'no key file'}${process.env.SSH_AUTH_SOCK ? ' and ssh-agent' : ''})`;
  if (err.level === 'client-timeout') return `timed out connecting to ${where}`;
  return `cannot connect to ${where}: ${err.message}`;
}
