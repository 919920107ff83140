// A PlanContext on THIS machine: commands run through `sh -c` locally with the product's HostShell
// (so `user` switches with runuser exactly as on a host logged in as root). For unit tests that need
// real programs (psql against a throwaway cluster) without a lab.
import { spawn } from 'node:child_process';
import type { PlanContext } from '../../src/core/types.js';
import type { ExecResult, Transport } from '../../src/remote/connection.js';
import { HostShell } from '../../src/remote/host-shell.js';
import type { ShellCommand } from '../../src/remote/sh.js';

export class LocalTransport implements Transport {
  readonly commands: string[] = [];
  run(cmd: ShellCommand, stdin: Buffer | undefined, timeoutMs: number): Promise<ExecResult> {
    this.commands.push(cmd.text);
    const started = Date.now();
    return new Promise((resolve, reject) => {
      const child = spawn('sh', ['-c', cmd.text], { stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, timeoutMs);
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.on('error', reject);
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ command: cmd.text, exitCode: code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err), timedOut, durationMs: Date.now() - started });
      });
      child.stdin.on('error', () => {});
      child.stdin.end(stdin ?? Buffer.alloc(0));
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
    check: false,
    effectiveUser: 'root',
    readFile: async () => null,
    query: (cmd, opts) => shell.exec(cmd, opts),
    memo,
    memoStable: memo,
    warn: (m) => warnings.push(m),
  };
  return { ctx, warnings, transport };
}
