// A Transport that runs commands on this machine (sh -c), for tests of the host scripts through the
// real executor-level code (HostShell, writeRemoteFile…). `cutStdinAfter` sends only that many bytes
// of stdin and then destroys the channel (stdin closed, the process group killed), as a dropped
// connection or a killed controller does. `localContext()` is a read-only PlanContext on this machine
// through the product's HostShell (so `user` switches with runuser exactly as on a host logged in as
// root), for unit tests that need real programs (psql against a throwaway cluster) without a lab.
import { MapRunState } from '../../src/core/run-state.js';
import { statOnHost } from '../../src/core/path-stat.js';
import { spawn } from 'node:child_process';
import type { PlanContext } from '../../src/lib/plan-types.js';
import type { ExecResult, Transport } from '../../src/lib/transport.js';
import { HostShell } from '../../src/remote/host-shell.js';
import type { ShellCommand } from '../../src/lib/sh.js';

export interface Cut {
  /** Bytes of stdin that arrive before the cut. */
  bytes: number;
  /** After the cut: 'eof' just closes stdin (the channel looks finished), 'kill' also kills the process group. */
  how: 'eof' | 'kill';
}

export class LocalTransport implements Transport {
  cut: Cut | null = null;
  /** The controller dies once all of stdin is sent: nothing reads the command's output any more (EPIPE). */
  deafAfterStdin = false;
  readonly commands: string[] = [];
  /** Environment of the commands (e.g. a PATH with an attacker's hook in front). */
  env: NodeJS.ProcessEnv = process.env;

  run(cmd: ShellCommand, stdin: Buffer | undefined, timeoutMs: number): Promise<ExecResult> {
    this.commands.push(cmd.text);
    const started = Date.now();
    const cut = this.cut;
    return new Promise((resolve) => {
      const child = spawn('sh', ['-c', cmd.text], { stdio: ['pipe', 'pipe', 'pipe'], detached: true, env: this.env });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          /* gone */
        }
      }, timeoutMs);
      child.stdout.on('data', (d: Buffer) => out.push(d));
      child.stderr.on('data', (d: Buffer) => err.push(d));
      child.stdin.on('error', () => undefined);
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ command: cmd.text, exitCode: timedOut ? null : code, signal: signal ?? null, stdout: Buffer.concat(out), stderr: Buffer.concat(err), timedOut, durationMs: Date.now() - started });
      });
      if (!cut || stdin === undefined) {
        child.stdin.end(stdin, () => {
          if (!this.deafAfterStdin) return;
          child.stdout.destroy();
          child.stderr.destroy();
        });
        return;
      }
      child.stdin.write(stdin.subarray(0, Math.min(cut.bytes, stdin.length)), () => {
        if (cut.how === 'kill') {
          // the controller dies: nothing more is sent and everything it started on the channel goes
          setTimeout(() => {
            try {
              process.kill(-child.pid!, 'SIGKILL');
            } catch {
              /* gone */
            }
          }, Math.floor(Math.random() * 20));
        } else child.stdin.end();
      });
    });
  }

  async close(): Promise<void> {}
}

/** A read-only context on this machine, as root (the tests that use it need root for runuser). */
export function localContext(vars: Record<string, unknown> = {}): { ctx: PlanContext; warnings: string[]; transport: LocalTransport } {
  const transport = new LocalTransport();
  const shell = new HostShell(transport, 'root', false);
  const warnings: string[] = [];
  const memos = new Map<string, Promise<unknown>>();
  const memo = <T>(k: string, f: () => Promise<T>): Promise<T> => {
    if (!memos.has(k)) memos.set(k, f());
    return memos.get(k) as Promise<T>;
  };
  const ctx: PlanContext = {
    host: 'local',
    vars,
    facts: { hostname: 'local', fqdn: 'local', addresses: [], loginUser: 'root' },

    effectiveUser: 'root',
    output: () => undefined,
    runState: new MapRunState(),
    readFile: async () => null,
    query: (cmd, opts) => shell.exec(cmd, opts),
    stat: (paths, opts) => statOnHost((c, o) => shell.exec(c, o), paths, opts),
    memo,
    memoStable: memo,
    warn: (m) => warnings.push(m),
  };
  return { ctx, warnings, transport };
}
