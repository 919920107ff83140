/**
 * Several read-only SQL queries of one server in ONE psql session. A batch of a host's questions
 * holds up to a dozen `psql -c` reads as the server's OS user (sqlReadInvocation's shape: the
 * server's state, its sessions, walsenders, roles), each a psql process, a runuser and a backend:
 * most of what such a round trip costs the host. Those of one user and one connection are asked in
 * one session instead, and each query gets back the answer it would have had alone:
 *  - each query's output goes to its own file (psql's `\o`, in a private temp directory), and
 *    whether it failed (`:ERROR`) to another: nothing is told apart by markers in the output, which
 *    may hold what a database user wrote (an application_name);
 *  - ON_ERROR_STOP=0, so a failing query does not stop the next; RESET ALL after each, so a SET in
 *    one (standard_conforming_strings) is not seen by the next;
 *  - a failed query gets exit code 1 (psql's own for a failed -c) and the session's stderr; when the
 *    session itself fails (no server, a refused login), every query gets psql's exit code and stderr.
 */
import { RemoteCommandError, type ExecResult } from '../lib/transport.js';
import { ShellCommand, sh } from '../lib/sh.js';

/** A command sqlReadInvocation built: `cd / && exec PSQL… -c SQL` (SQL single-quoted, as sh quotes). */
const SQL_READ = /^cd \/ && exec ((?:[^'\s]+|'[^']*')(?: (?:[^'\s]+|'[^']*'))*) -c ((?:'[^']*'|\\')+)$/;

/** The psql invocation (without -c) and the SQL of a read as the server's OS user, or null for any other command. */
export function parseSqlRead(text: string): { psql: string; sql: string } | null {
  const m = SQL_READ.exec(text);
  if (!m || !/(^|\/)psql'? -X -A -t -q -w -v ON_ERROR_STOP=1 /.test(m[1]!)) return null;
  return { psql: m[1]!, sql: unquote(m[2]!) };
}

function unquote(word: string): string {
  let out = '';
  for (const m of word.matchAll(/'([^']*)'|\\'/g)) out += m[1] ?? "'";
  return out;
}

/**
 * The queries in one session (see above). It prints a header per query, "pgtls-sql FAILED OUTLEN\n",
 * then "pgtls-sql-end RC ERRLEN\n", then every query's output in order and the session's stderr: all
 * the lengths from ONE wc and all the bytes from ONE cat, whatever the number of queries.
 */
export function sqlManyCommand(psql: string, sqls: readonly string[]): ShellCommand {
  const args = sqls.flatMap((q, i) => ['-c', `\\o ${i + 1}`, '-c', q, '-c', `\\o ${i + 1}.e`, '-c', '\\qecho :ERROR', '-c', 'RESET ALL']);
  const script =
    `d=$(mktemp -d) || exit 97\ntrap 'rm -rf -- "$d"' EXIT\ncd "$d" || exit 97\nn=$1\nshift\nrc=0\n` +
    // (psql's own words, then ours: a later -v wins)
    `${psql} -v ON_ERROR_STOP=0 "$@" >/dev/null 2>err || rc=$?\n` +
    `i=0\nset --\nwhile [ "$i" -lt "$n" ]; do\n  i=$((i + 1))\n  [ -e "$i" ] || : >"$i"\n  set -- "$@" "$i"\ndone\n` +
    // "SIZE NAME" per file (the names are ours: 1..n and err), then the total
    `sizes=$(wc -c -- "$@" err) || exit 97\nset -- $sizes\ni=0\n` +
    `while [ "$i" -lt "$n" ]; do\n  i=$((i + 1))\n  f=''\n  { IFS= read -r f <"$i.e"; } 2>/dev/null\n  printf 'pgtls-sql %s %s\\n' "\${f:-none}" "$1"\n  shift 2\ndone\n` +
    `printf 'pgtls-sql-end %s %s\\n' "$rc" "$1"\ni=0\nset --\nwhile [ "$i" -lt "$n" ]; do\n  i=$((i + 1))\n  set -- "$@" "$i"\ndone\ncat -- "$@" err\n`;
  return sh`sh -c ${script} pgtls-sql-many ${String(sqls.length)} ${args}`;
}

/** Each query's result, as if it had run alone (`command`: its own command line). */
export function splitSqlMany(res: ExecResult, commands: readonly string[]): ExecResult[] {
  const out = res.stdout;
  const heads: { failed: string; len: number }[] = [];
  let at = 0;
  let end: { rc: number; errLen: number } | null = null;
  while (at < out.length) {
    const nl = out.indexOf(0x0a, at);
    if (nl < 0) break;
    const head = out.subarray(at, nl).toString('latin1');
    at = nl + 1;
    const q = /^pgtls-sql (true|false|none) (\d+)$/.exec(head);
    const e = /^pgtls-sql-end (\d+) (\d+)$/.exec(head);
    if (q && heads.length < commands.length) heads.push({ failed: q[1]!, len: Number(q[2]) });
    else if (e) {
      end = { rc: Number(e[1]), errLen: Number(e[2]) };
      break;
    } else break;
  }
  // the outputs follow the headers, in order, then the stderr; an answer cut short is none
  const parts: { failed: string; output: Buffer }[] = [];
  let err: Buffer | null = null;
  if (end) {
    for (const h of heads) {
      if (at + h.len > out.length) break;
      parts.push({ failed: h.failed, output: Buffer.from(out.subarray(at, at + h.len)) });
      at += h.len;
    }
    err = Buffer.from(out.subarray(at, at + end.errLen));
  }
  return commands.map((command, i) => {
    const p = parts[i];
    const base = { command, signal: null, timedOut: res.timedOut, durationMs: res.durationMs };
    // the session never got this far (no server, a refused login, a cut answer): psql's own exit code
    if (!p || !end || p.failed === 'none') return { ...base, exitCode: end?.rc || res.exitCode || 2, stdout: Buffer.alloc(0), stderr: err ?? res.stderr };
    return p.failed === 'true' ? { ...base, exitCode: 1, stdout: p.output, stderr: err! } : { ...base, exitCode: 0, stdout: p.output, stderr: Buffer.alloc(0) };
  });
}

/** What a batch unit needs for this: its command, the user it runs as, and no stdin. */
export interface MergeableUnit {
  cmd: ShellCommand;
  user?: string;
  stdin?: unknown;
}

/** The one session that stands for several reads. */
export interface MergedUnit {
  cmd: ShellCommand;
  user?: string;
  okCodes: number[];
}

/**
 * The units to send, with the SQL reads of one user and one connection (two or more) replaced by
 * one session at the place of the first; `expand` gives back one result per original unit, in
 * order (a failed read: a RemoteCommandError, as HostShell.exec would give for its okCodes).
 */
export function mergeSqlReads<U extends MergeableUnit>(
  units: readonly U[],
  okCodes: (u: U) => number[],
): { send: (U | MergedUnit)[]; expand: (results: readonly (ExecResult | Error | undefined)[]) => (ExecResult | Error | undefined)[] } {
  const groups = new Map<string, number[]>();
  const parsed = units.map((u) => (u.stdin === undefined ? parseSqlRead(u.cmd.text) : null));
  parsed.forEach((p, i) => {
    if (!p) return;
    const key = `${units[i]!.user ?? ''}\0${p.psql}`;
    groups.set(key, [...(groups.get(key) ?? []), i]);
  });
  const merged = [...groups.values()].filter((g) => g.length > 1);
  if (merged.length === 0) return { send: [...units], expand: (r) => [...r] };
  const leader = new Map(merged.map((g) => [g[0]!, g]));
  const inGroup = new Set(merged.flat());
  const send: (U | MergedUnit)[] = [];
  const slot: number[] = []; // original index -> index in send (a group's members share their leader's)
  units.forEach((u, i) => {
    const g = leader.get(i);
    if (g) {
      const p = parsed[i]!;
      slot[i] = send.length;
      send.push({ cmd: sqlManyCommand(p.psql, g.map((j) => parsed[j]!.sql)), ...(u.user === undefined ? {} : { user: u.user }), okCodes: [] });
    } else if (!inGroup.has(i)) {
      slot[i] = send.length;
      send.push(u);
    }
  });
  for (const g of merged) for (const j of g) slot[j] = slot[g[0]!]!;
  return {
    send,
    expand: (results) => {
      const split = new Map<number, ExecResult[]>();
      for (const g of merged) {
        const r = results[slot[g[0]!]!];
        const res = r instanceof RemoteCommandError ? r.result : r;
        if (res && !(res instanceof Error)) split.set(g[0]!, splitSqlMany(res, g.map((j) => units[j]!.cmd.text)));
      }
      return units.map((u, i) => {
        if (!inGroup.has(i)) return results[slot[i]!];
        const g = merged.find((x) => x.includes(i))!;
        const mine = split.get(g[0]!)?.[g.indexOf(i)];
        if (!mine) return results[slot[i]!] instanceof Error ? results[slot[i]!] : undefined;
        return okCodes(u).includes(mine.exitCode ?? -1) ? mine : new RemoteCommandError(mine);
      });
    },
  };
}
