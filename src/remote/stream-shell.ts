import { randomBytes } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import type { ExecResult, ShellLaunch, ShellSpec } from '../lib/transport.js';

// the shell types live with the Transport interface (the leaf of the remote layer); re-exported for callers
export type { ShellLaunch, ShellSpec };
import { ShellCommand, sh } from '../lib/sh.js';
import { standaloneScript } from './standalone-scripts.js';

/**
 * One long-lived remote shell (src/remote/scripts/agent.sh) that runs many commands, one at a time,
 * over a single channel: what a command costs is then the host's own work, not a channel, a login
 * shell and a sudo each. Framing is exact (see agent.sh): a header with the command's and its stdin's
 * byte lengths, and each output stream cut at a random per-command nonce.
 *
 * Any doubt about the framing (bytes outside a command, a bad marker, the channel closing, a timeout)
 * kills the shell: the command in flight gets an honest result (timedOut, or the channel's end) and
 * the owner opens a fresh shell for the next command. Secrets only travel on stdin, as before.
 */

/** A remote process with its three streams (an ssh2 exec channel, or a local child in tests). */
export interface ShellChannel {
  stdin: Writable;
  stdout: Readable;
  stderr: Readable;
  /** Resolves once the remote process has ended and its streams are closed. */
  closed: Promise<{ code: number | null; signal: string | null }>;
  /** Ends the process and the channel now (timeout, framing doubt). */
  kill(): void;
}

export type ChannelOpener = (cmd: ShellCommand) => Promise<ShellChannel>;

/** How the shell is started: its command line (the agent inside the user's wrapper) and what leads its stdin. */

/** The agent's command line; `wrap` puts it inside runuser/sudo exactly as a single command was. */
export function agentCommand(readyToken: string): ShellCommand {
  return sh`sh -c ${standaloneScript('agent')} pgtls-agent ${readyToken}`;
}

/** Why a shell could not be started: the caller then runs the command the old way (one channel). */
export class ShellStartError extends Error {
  constructor(message: string, readonly stderr: string) {
    super(message);
    this.name = 'ShellStartError';
  }
}

interface Pending {
  nonce: Buffer;
  command: string;
  started: number;
  out: Collector;
  err: Collector;
  rc: number | null;
  resolve(r: ExecResult): void;
  timer: NodeJS.Timeout;
}

/** Collects one stream's bytes until the marker line that begins with the nonce (linear in the output). */
class Collector {
  private chunks: Buffer[] = [];
  private length = 0;
  /** The last bytes seen, so a nonce split across two chunks is found. */
  private tail = Buffer.alloc(0);
  /** Absolute offset where the nonce begins, once seen. */
  private markerAt: number | null = null;
  /** Bytes after the marker line (must stay empty: anything there is a framing doubt). */
  extra: Buffer | null = null;
  markerLine: string | null = null;
  constructor(private readonly nonce: Buffer) {}

  /** Returns true once the marker line is complete. */
  push(chunk: Buffer): boolean {
    this.chunks.push(chunk);
    const before = this.length;
    this.length += chunk.length;
    if (this.markerAt === null) {
      const window = Buffer.concat([this.tail, chunk]);
      const at = window.indexOf(this.nonce);
      if (at < 0) {
        this.tail = Buffer.from(window.subarray(Math.max(0, window.length - this.nonce.length + 1)));
        return false;
      }
      this.markerAt = before - this.tail.length + at;
    }
    const all = this.flatten();
    const nl = all.indexOf(0x0a, this.markerAt);
    if (nl < 0) return false;
    this.markerLine = all.subarray(this.markerAt, nl).toString('latin1');
    this.extra = all.subarray(nl + 1);
    this.chunks = [all.subarray(0, this.markerAt)];
    this.length = this.markerAt;
    return true;
  }

  private flatten(): Buffer {
    if (this.chunks.length !== 1) this.chunks = [Buffer.concat(this.chunks, this.length)];
    return this.chunks[0]!;
  }

  get bytes(): Buffer {
    return this.flatten();
  }
}

export class StreamShell {
  private current: Pending | null = null;
  private dead = false;
  private channelClosed = false;
  private queue: Promise<unknown> = Promise.resolve();
  /** Commands run by this shell (for tests and -vv). */
  commands = 0;

  private constructor(private readonly channel: ShellChannel) {
    channel.stdout.on('data', (d: Buffer) => this.onData(d, 'out'));
    channel.stderr.on('data', (d: Buffer) => this.onData(d, 'err'));
    channel.stdin.on('error', () => this.kill('stdin error'));
    void channel.closed.then(() => {
      this.channelClosed = true;
      this.kill('closed');
    });
  }

  /** Starts the agent and waits for its ready line; rejects with ShellStartError (never a secret in it). */
  static async open(opener: ChannelOpener, wrap: (agent: ShellCommand) => ShellLaunch, startTimeoutMs: number): Promise<StreamShell> {
    const token = randomBytes(8).toString('hex');
    const launch = wrap(agentCommand(token));
    const channel = await opener(launch.cmd);
    const ready = Buffer.from(`pgtls-agent-ready ${token}\n`);
    return new Promise<StreamShell>((resolve, reject) => {
      let out = Buffer.alloc(0);
      let err = '';
      let settled = false;
      const finish = (e?: ShellStartError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        channel.stdout.removeListener('data', onOut);
        channel.stderr.removeListener('data', onErr);
        if (e) {
          channel.kill();
          reject(e);
          return;
        }
        resolve(new StreamShell(channel));
      };
      const onOut = (d: Buffer) => {
        out = Buffer.concat([out, d]);
        if (out.length > ready.length || !ready.subarray(0, out.length).equals(out)) finish(new ShellStartError('unexpected output before the shell was ready', err));
        else if (out.length === ready.length) finish();
      };
      // Anything on stderr before ready (sudo's "Sorry, try again", a password prompt, a missing
      // tool) means this wrapper does not simply work: the caller falls back to one channel per
      // command, which reports the real error as it always did.
      const onErr = (d: Buffer) => {
        err += d.toString('utf8');
        finish(new ShellStartError('the shell wrote to stderr before it was ready', err));
      };
      const timer = setTimeout(() => finish(new ShellStartError(`the shell was not ready within ${startTimeoutMs} ms`, err)), startTimeoutMs);
      channel.stdout.on('data', onOut);
      channel.stderr.on('data', onErr);
      void channel.closed.then((c) => finish(new ShellStartError(`the shell ended before it was ready (exit ${c.code ?? c.signal})`, err)));
      channel.stdin.on('error', () => finish(new ShellStartError('cannot write to the shell', err)));
      if (launch.preamble) channel.stdin.write(launch.preamble);
    });
  }

  get alive(): boolean {
    return !this.dead;
  }

  /** Runs one command (commands queue: one at a time per shell). */
  run(cmd: ShellCommand, stdin: Buffer | undefined, timeoutMs: number): Promise<ExecResult> {
    const next = this.queue.then(() => this.runNow(cmd, stdin, timeoutMs));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private runNow(cmd: ShellCommand, stdin: Buffer | undefined, timeoutMs: number): Promise<ExecResult> {
    const started = Date.now();
    if (this.dead) return Promise.resolve(lost(cmd.text, started));
    const nonceText = randomBytes(16).toString('hex');
    const nonce = Buffer.from(nonceText, 'latin1');
    const text = Buffer.from(cmd.text, 'utf8');
    const input = stdin ?? Buffer.alloc(0);
    return new Promise<ExecResult>((resolve) => {
      const timer = setTimeout(() => {
        if (this.current?.nonce !== nonce) return;
        this.settle({ timedOut: true });
        this.kill('timeout');
      }, timeoutMs);
      this.current = { nonce, command: cmd.text, started, out: new Collector(nonce), err: new Collector(nonce), rc: null, resolve, timer };
      this.commands++;
      this.channel.stdin.write(Buffer.concat([Buffer.from(`${nonceText} ${text.length} ${input.length}\n`, 'latin1'), text, input]));
    });
  }

  private onData(d: Buffer, which: 'out' | 'err'): void {
    const p = this.current;
    if (!p) {
      this.kill('output outside a command');
      return;
    }
    const c = which === 'out' ? p.out : p.err;
    if (c.markerLine !== null) {
      this.kill('output after a command ended');
      return;
    }
    if (!c.push(d)) return;
    const expected = p.nonce.toString('latin1');
    const m = which === 'out' ? new RegExp(`^${expected} (\\d+)$`).exec(c.markerLine!) : c.markerLine === expected ? [] : null;
    if (!m || (c.extra && c.extra.length > 0)) {
      this.settle({ broken: true });
      this.kill('bad marker');
      return;
    }
    if (which === 'out') p.rc = Number(m[1]);
    if (p.out.markerLine !== null && p.err.markerLine !== null) this.settle({});
  }

  /** Resolves the command in flight: complete, timed out, or cut off by a broken shell. */
  private settle(how: { timedOut?: boolean; broken?: boolean }): void {
    const p = this.current;
    if (!p) return;
    this.current = null;
    clearTimeout(p.timer);
    const complete = !how.timedOut && !how.broken;
    p.resolve({
      command: p.command,
      exitCode: complete ? p.rc : null,
      signal: null,
      stdout: p.out.bytes,
      stderr: complete ? p.err.bytes : Buffer.concat([p.err.bytes, Buffer.from(how.timedOut ? '' : '\npgtls: the remote shell ended during this command\n')]),
      timedOut: how.timedOut ?? false,
      durationMs: Date.now() - p.started,
    });
  }

  /** Ends the shell; a command in flight resolves as cut off. The owner opens a new shell for the next one. */
  kill(_why: string): void {
    if (this.dead) return;
    this.dead = true;
    this.settle({ broken: true });
    if (!this.channelClosed) this.channel.kill();
  }

  /** Ends the shell politely (EOF on its stdin: the agent's loop ends). */
  async close(): Promise<void> {
    if (this.dead) return;
    this.dead = true;
    this.channel.stdin.end();
    await Promise.race([this.channel.closed, new Promise((r) => setTimeout(r, 2000).unref())]);
    if (!this.channelClosed) this.channel.kill();
  }
}

function lost(command: string, started: number): ExecResult {
  return {
    command,
    exitCode: null,
    signal: null,
    stdout: Buffer.alloc(0),
    stderr: Buffer.from('pgtls: the remote shell ended\n'),
    timedOut: false,
    durationMs: Date.now() - started,
  };
}

/** Which long-lived shell a command runs in, how to start it, and how to run it without one. */

/** How long a new shell may take to say it is ready (sudo and PAM on a loaded host are slow). */
const START_TIMEOUT_MS = 60_000;

/**
 * The long-lived shells of one host, one per key, opened on first use and reopened after a shell
 * died (timeout, framing doubt, a lost channel). A key whose shell cannot be started (sudo wants a
 * password it did not get, a missing `head`, …) runs its commands the old way for the rest of the
 * run, so what the user sees is the real command's real error.
 */
export class ShellPool {
  private readonly shells = new Map<string, Promise<StreamShell | null>>();
  private readonly unusable = new Set<string>();
  constructor(
    private readonly opener: ChannelOpener,
    private readonly runSingle: (cmd: ShellCommand, stdin: Buffer | undefined, timeoutMs: number) => Promise<ExecResult>,
    /** Told of every shell started (PGTLS_COMMAND_LOG logs it as the remote command it is). */
    private readonly onLaunch: (cmd: ShellCommand) => void = () => undefined,
  ) {}

  /** Shells open now (they hold a channel each). */
  get size(): number {
    return this.shells.size;
  }

  /** `beforeStream` is called when the command goes to a shell (not when it falls back to its own channel). */
  async run(spec: ShellSpec, cmd: ShellCommand, stdin: Buffer | undefined, timeoutMs: number, beforeStream: () => void = () => undefined): Promise<ExecResult> {
    const shell = await this.shellFor(spec);
    if (!shell) {
      const f = spec.fallback();
      return this.runSingle(f.cmd, f.stdin, timeoutMs);
    }
    beforeStream();
    return shell.run(cmd, stdin, timeoutMs);
  }

  /** Chained per key, so concurrent callers share one shell and a dead one is replaced once. */
  private shellFor(spec: ShellSpec): Promise<StreamShell | null> {
    if (this.unusable.has(spec.key)) return Promise.resolve(null);
    const prev = this.shells.get(spec.key);
    const next = prev
      ? prev.then(
          (s) => (s?.alive ? s : this.unusable.has(spec.key) ? null : this.start(spec)),
          () => this.start(spec),
        )
      : this.start(spec);
    this.shells.set(spec.key, next);
    return next;
  }

  private async start(spec: ShellSpec): Promise<StreamShell | null> {
    try {
      return await StreamShell.open(
        (c) => {
          this.onLaunch(c);
          return this.opener(c);
        },
        (agent) => spec.launch(agent),
        START_TIMEOUT_MS,
      );
    } catch (e) {
      if (!(e instanceof ShellStartError)) throw e;
      this.unusable.add(spec.key);
      return null;
    }
  }

  async close(): Promise<void> {
    const all = [...this.shells.values()];
    this.shells.clear();
    await Promise.all(all.map(async (p) => (await p.catch(() => null))?.close()));
  }
}
