/**
 * A host made of data for module and executor tests (pyinfra's test layout: facts in, actions out).
 * FakeTransport answers the commands the executor and the facts send: a file read (read.sh), stat,
 * sha256sum, and whatever a test lists in `answers` (matched on the command text or its stdin);
 * anything else fails loudly (exit 99), so a module that starts asking something new shows up.
 * fakeSession() puts the REAL executor (HostSession, --check or not) on top of it: the PlanContext a
 * module sees is the one a run gives it, overlay included; `memos` seed the per-host facts (pgServer …)
 * that would otherwise take a dozen scripted probes.
 */
import { createHash } from 'node:crypto';
import { HostSession } from '../../src/core/host-session.js';
import { actionRegistry } from '../../src/core/run-state.js';
import { modules } from '../../src/modules/index.js';
import type { Change, FileState, PlanContext } from '../../src/lib/plan-types.js';
import type { ExecResult, Transport } from '../../src/lib/transport.js';
import { quote, type ShellCommand } from '../../src/lib/sh.js';

export interface FakeFile {
  content: string | Buffer;
  mode?: string;
  owner?: string;
  group?: string;
  /** epoch seconds (default 1000) */
  mtime?: number;
  ctime?: number;
}

export interface Answer {
  /** matched against the command text (after unwrapping runuser), or its stdin */
  match: RegExp;
  stdin?: RegExp;
  stdout?: string | ((cmd: string, stdin: string) => string);
  stderr?: string;
  exitCode?: number;
  /** only as this user (runuser -u USER) */
  user?: string;
}

export interface FakeHostSpec {
  files?: Record<string, string | FakeFile>;
  answers?: Answer[];
}

/** Shell words of a command line as sh.ts quotes them (bare words, '…' with '\'' inside, backslash escapes). */
export function shellWords(text: string): string[] {
  const words: string[] = [];
  let cur: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === "'") {
      const end = text.indexOf("'", i + 1);
      cur = (cur ?? '') + text.slice(i + 1, end < 0 ? text.length : end);
      i = end < 0 ? text.length : end;
    } else if (c === '\\' && i + 1 < text.length) {
      cur = (cur ?? '') + text[++i];
    } else if (/\s/.test(c)) {
      if (cur !== null) words.push(cur);
      cur = null;
    } else cur = (cur ?? '') + c;
  }
  if (cur !== null) words.push(cur);
  return words;
}

const result = (command: string, stdout: string | Buffer, exitCode = 0, stderr = ''): ExecResult => ({
  command,
  exitCode,
  signal: null,
  stdout: Buffer.isBuffer(stdout) ? stdout : Buffer.from(stdout),
  stderr: Buffer.from(stderr),
  timedOut: false,
  durationMs: 0,
});

export class FakeTransport implements Transport {
  readonly files = new Map<string, Required<FakeFile> & { content: Buffer }>();
  /** the host's clock (epoch seconds): a commit stamps the files it writes with it, then it advances */
  now = 10_000;
  /** every command as run (unwrapped), with its user */
  readonly log: { cmd: string; user: string; stdin: string }[] = [];

  constructor(spec: FakeHostSpec = {}, readonly answers: Answer[] = spec.answers ?? []) {
    for (const [p, f] of Object.entries(spec.files ?? {})) this.put(p, f);
  }

  put(path: string, f: string | FakeFile): void {
    const o = typeof f === 'string' ? { content: f } : f;
    this.files.set(path, {
      content: Buffer.isBuffer(o.content) ? o.content : Buffer.from(o.content),
      mode: o.mode ?? '644',
      owner: o.owner ?? 'root',
      group: o.group ?? 'root',
      mtime: o.mtime ?? 1000,
      ctime: o.ctime ?? o.mtime ?? 1000,
    });
  }

  async run(cmd: ShellCommand, stdin: Buffer | undefined, _timeoutMs: number): Promise<ExecResult> {
    return this.answer(cmd.text, 'root', stdin?.toString('utf8') ?? '');
  }

  async close(): Promise<void> {}

  /** commit.sh's effect (its own behaviour is tested in write-path.test.ts): 12 words per change, contents on stdin in order. */
  private commit(text: string, args: string[], stdin: Buffer): ExecResult {
    let at = 0;
    const t = this.now++;
    for (let i = 0; i + 11 < args.length; i += 12) {
      const [op, path, from, len, , mode, owner, group] = args.slice(i, i + 8) as string[];
      if (op === 'write') {
        const prev = this.files.get(path!);
        this.put(path!, { content: stdin.subarray(at, at + Number(len)), mode: mode || prev?.mode, owner: owner || prev?.owner, group: group || prev?.group, mtime: t, ctime: t });
        at += Number(len);
      } else if (op === 'remove') this.files.delete(path!);
      else if (op === 'rename') {
        const f = this.files.get(from!);
        if (f) this.files.set(path!, { ...f, ctime: t });
        this.files.delete(from!);
      }
    }
    return result(text, '');
  }

  private answer(text: string, user: string, stdin: string): ExecResult {
    const w = shellWords(text);
    // runuser -u USER -- sh -c CMD: the command as that user
    if (w[0] === 'runuser' && w[1] === '-u' && w[3] === '--' && w[4] === 'sh' && w[5] === '-c' && w.length === 7) return this.answer(w[6]!, w[2]!, stdin);
    // (before the test's answers: a batch is its commands, each answered as the test says)
    if (w[0] === 'sh' && w[1] === '-c' && w[3] === 'pgtls-batch') {
      // batch.sh: each command answered as if sent alone, length-framed; `stop` ends at a failure
      this.log.push({ cmd: text, user, stdin });
      const frames: Buffer[] = [];
      // INPUTS: '-', or a 1 for each command that reads one base64 line of the batch's stdin
      const inputs = w[5]!;
      const lines = stdin.split('\n');
      for (const [i, c] of w.slice(6).entries()) {
        const own = inputs !== '-' && inputs[i] === '1' ? Buffer.from(lines.shift() ?? '', 'base64').toString('utf8') : '';
        const r = this.answer(c, user, own);
        frames.push(Buffer.from(`pgtls-cmd ${r.exitCode} ${r.stdout.length} ${r.stderr.length}\n`), r.stdout, r.stderr);
        if (r.exitCode !== 0 && (w[4] === 'stop' || (w[4]!.startsWith('first') && i === 0))) break;
      }
      return result(text, Buffer.concat(frames));
    }
    // several SQL reads in one psql session (src/remote/sql-merge.ts): each answered as if asked alone
    if (w[0] === 'sh' && w[1] === '-c' && w[3] === 'pgtls-sql-many') {
      this.log.push({ cmd: text, user, stdin });
      const psqlLine = /\n(.*) -v ON_ERROR_STOP=0 "\$@"/.exec(w[2]!)![1]!;
      const sqls = w.slice(5).filter((_, i) => i % 10 === 3);
      // sqlManyCommand's answer: the headers, then the outputs in order (and no stderr)
      const heads: Buffer[] = [];
      const outs: Buffer[] = [];
      for (const q of sqls) {
        const r = this.answer(`cd / && exec ${psqlLine} -c ${quote(q)}`, user, '');
        heads.push(Buffer.from(`pgtls-sql ${r.exitCode === 0 ? 'false' : 'true'} ${r.stdout.length}\n`));
        outs.push(r.stdout);
      }
      heads.push(Buffer.from('pgtls-sql-end 0 0\n'));
      return result(text, Buffer.concat([...heads, ...outs]));
    }
    // read-only SQL as the OS user comes as psql's -c argument (sqlReadInvocation): matched as its stdin would be
    const bin = w.findIndex((x) => x === 'psql' || x.endsWith('/psql'));
    const c = bin >= 0 ? w.indexOf('-c', bin) : -1;
    if (c > 0 && stdin === '' && w[c + 1] !== undefined) stdin = w[c + 1]!;
    this.log.push({ cmd: text, user, stdin });
    for (const a of this.answers) {
      if (a.user && a.user !== user) continue;
      if (!a.match.test(text) || (a.stdin && !a.stdin.test(stdin))) continue;
      const out = typeof a.stdout === 'function' ? a.stdout(text, stdin) : (a.stdout ?? '');
      return result(text, out, a.exitCode ?? 0, a.stderr ?? '');
    }
    if (w[0] === 'sh' && w[1] === '-c' && w[3] === 'pgtls-read-many') {
      // read-many.sh: one length-framed read.sh answer per path
      const frames = w.slice(6).map((p) => {
        const f = this.files.get(p);
        const out = f ? Buffer.concat([Buffer.from(`${f.mode} ${f.owner} ${f.group}\n`), f.content]) : Buffer.alloc(0);
        return Buffer.concat([Buffer.from(`pgtls-file ${f ? 0 : 3} ${out.length} 0\n`), out]);
      });
      return result(text, Buffer.concat(frames));
    }
    if (w[0] === 'sh' && w[1] === '-c' && w[3] === 'pgtls-read') {
      const f = this.files.get(w[5]!);
      if (!f) return result(text, '', 3);
      return result(text, Buffer.concat([Buffer.from(`${f.mode} ${f.owner} ${f.group}\n`), f.content]));
    }
    if (w[0] === 'sh' && w[1] === '-c' && w[3] === 'pgtls-commit') return this.commit(text, w.slice(10), Buffer.from(stdin, 'utf8'));
    if (w[0] === 'stat' && w[1] === '-L' && w[2] === '-c' && w[4] === '--') {
      const fine = w[3]!.includes('%.9');
      const lines = w.slice(5).flatMap((p) => {
        const f = this.files.get(p);
        if (!f) return [];
        const t = (x: number) => (fine ? x.toFixed(9) : String(Math.floor(x)));
        return [`${t(f.mtime)} ${t(f.ctime)} ${f.content.length} ${p}`];
      });
      return result(text, lines.map((l) => l + '\n').join(''), lines.length === w.length - 5 ? 0 : 1);
    }
    if (w[0] === 'sha256sum' && w[1] === '--') {
      const lines = w.slice(2).flatMap((p) => {
        const f = this.files.get(p);
        return f ? [`${createHash('sha256').update(f.content).digest('hex')}  ${p}`] : [];
      });
      return result(text, lines.map((l) => l + '\n').join(''), lines.length === w.length - 2 ? 0 : 1);
    }
    return result(text, '', 99, `fake host: no answer for: ${text.slice(0, 300)}`);
  }
}

export interface FakeSession {
  session: HostSession;
  transport: FakeTransport;
  ctx: PlanContext;
  warnings: string[];
}

const REGISTRY = actionRegistry(modules.values());

/** The real executor (check or not) on a fake host; `memos` answer ctx.memo/memoStable keys without probing. */
export function fakeSession(
  spec: FakeHostSpec,
  o: { check?: boolean; vars?: Record<string, unknown>; memos?: Record<string, unknown>; host?: string; transport?: FakeTransport; runId?: string } = {},
): FakeSession {
  const transport = o.transport ?? new FakeTransport(spec);
  const host = o.host ?? 'pg1';
  const session = new HostSession(host, transport, 'root', { hostname: host, fqdn: `${host}.example`, addresses: ['10.0.0.11'], loginUser: 'root' }, o.check ?? false, o.runId ?? 'testrun-1');
  session.registry = REGISTRY;
  const warnings: string[] = [];
  const vars = { inventory_hostname: host, ansible_check_mode: o.check ?? false, ...(o.vars ?? {}) };
  const base = session.context(vars, (m) => warnings.push(m));
  const seeded = <T>(k: string, c: () => Promise<T>, fall: (k: string, c: () => Promise<T>) => Promise<T>) =>
    o.memos && k in o.memos ? Promise.resolve(o.memos[k] as T) : fall(k, c);
  const ctx: PlanContext = {
    ...base,
    memo: (k, c) => seeded(k, c, base.memo),
    memoStable: (k, c) => seeded(k, c, base.memoStable),
  };
  return { session, transport, ctx, warnings };
}

/**
 * A plan as data, for comparing: contents become their hash and length, secrets stay masked (Secret
 * serialises masked). A plan holds no code (verifiers and controller operations are named): a function
 * anywhere in it fails the test.
 */
export function planData(changes: Change[]): unknown {
  return JSON.parse(
    JSON.stringify(changes, (_k, v: unknown) => {
      if (typeof v === 'function') throw new Error(`a plan holds a function (${_k}): plans are data`);
      if (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) {
        const b = Buffer.from((v as { data: number[] }).data);
        return `sha256:${createHash('sha256').update(b).digest('hex')} (${b.length} bytes)`;
      }
      if (v && typeof v === 'object' && 'text' in v && Object.keys(v).length === 1) return `sh: ${(v as { text: string }).text}`;
      return v;
    }),
  );
}

export type { FileState };
