/**
 * The pure text logic of the `pg_hba` module: no I/O. It turns every password
 * rule of pg_hba.conf into a TLS-only SCRAM rule and makes sure remote clients
 * have one, while keeping the file recognisable (comments, column layout,
 * order) so that a human diff review stays easy.
 *
 * PostgreSQL picks the FIRST rule whose type/database/user/address match, and
 * does not fall through when authentication then fails. So the order of the
 * file is its meaning, and we never reorder: rules are rewritten in place,
 * the catch-all rules are appended at the END (an earlier `reject` or narrower
 * rule keeps winning, exactly as before), and `cert` rules for `cert_users`
 * go directly ABOVE the first password rule (otherwise that rule would match
 * the cert user first and ask for a password). With `rejectPlaintext`,
 * `hostnossl … reject` rules for every remote address go directly above the
 * first rule for a remote (non-loopback) address: whatever follows can then
 * only be reached over TLS, while loopback rules above keep working as before.
 */
import { isLoopbackAddress } from './address.js';

/** Methods that send a password (or a proof of one) and therefore need TLS + SCRAM. */
const PASSWORD_METHODS = new Set(['md5', 'password', 'scram-sha-256']);
/** Rule types we rewrite. `hostnossl` too: the goal is that no password login ever happens without TLS. */
const TCP_TYPES = new Set(['host', 'hostssl', 'hostnossl']);
const RULE_TYPES = new Set(['local', 'host', 'hostssl', 'hostnossl', 'hostgssenc', 'hostnogssenc']);
/** Every network rule type (the reject rules go above the first remote one of these). */
const NET_TYPES = new Set(['host', 'hostssl', 'hostnossl', 'hostgssenc', 'hostnogssenc']);

export interface HbaRewriteOptions {
  /** Append `hostssl all all 0.0.0.0/0 scram-sha-256` and `::/0` unless an equivalent catch-all exists. Default true. */
  catchAll?: boolean;
  /** Users that log in with a client certificate: `hostssl all USER 0.0.0.0/0 cert` (+ ::/0) above the password rules. */
  certUsers?: readonly string[];
  /** `hostnossl all all 0.0.0.0/0 reject` and `::/0` above the first remote rule. Default false. */
  rejectPlaintext?: boolean;
  /** With rejectPlaintext: the same for `replication` (which `all` does not match). Default true; pool_hba has none. */
  rejectReplication?: boolean;
}

export const REJECT_MARK = '# pgtls: no remote connection without TLS (pgtls_reject_plaintext)';

export interface HbaRewriteResult {
  text: string;
  changed: boolean;
  /** One human line per change, for the task summary. */
  changes: string[];
  /** Things the operator should look at (rules we deliberately leave alone). */
  warnings: string[];
}

interface Field {
  text: string;
  start: number;
  end: number;
}

interface ParsedLine {
  raw: string;
  /** Fields of a rule line; empty for blank/comment lines. */
  fields: Field[];
  /** Index of a trailing `#` comment, or -1. */
  commentAt: number;
}

/** Splits a line into whitespace-separated fields, honouring "double quotes" and `#` comments (PostgreSQL's tokenizer). */
export function parseHbaLine(raw: string): ParsedLine {
  const fields: Field[] = [];
  let i = 0;
  let commentAt = -1;
  while (i < raw.length) {
    const c = raw[i]!;
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
      continue;
    }
    if (c === '#') {
      commentAt = i;
      break;
    }
    const start = i;
    let quoted = false;
    while (i < raw.length) {
      const d = raw[i]!;
      if (d === '"') quoted = !quoted;
      else if (!quoted && (d === ' ' || d === '\t' || d === '\r' || d === '#')) break;
      i++;
    }
    fields.push({ text: raw.slice(start, i), start, end: i });
  }
  return { raw, fields, commentAt };
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;
const isIpNoMask = (s: string) => IPV4.test(s) || (s.includes(':') && !s.includes('/'));

/** Index of the auth method field of a host* rule: 4, or 5 when the address is followed by a separate netmask. */
function methodIndex(f: Field[]): number {
  const addr = f[3]?.text ?? '';
  const next = f[4]?.text ?? '';
  return isIpNoMask(addr) && isIpNoMask(next) && f.length > 5 ? 5 : 4;
}

/** Whether a network rule's address is loopback only (127.0.0.0/8, ::1, localhost, samehost). */
function loopbackRule(f: Field[]): boolean {
  const mask = methodIndex(f) === 5 ? f[4]?.text : undefined;
  return isLoopbackAddress(f[3]?.text, mask);
}

type Family = 'v4' | 'v6';

/** Which address families a rule's address covers completely (0.0.0.0/0, "0.0.0.0 0.0.0.0", ::/0, `all`). */
function coversAll(f: Field[]): Set<Family> {
  const addr = f[3]?.text ?? '';
  const mask = methodIndex(f) === 5 ? (f[4]?.text ?? '') : '';
  const out = new Set<Family>();
  if (addr === 'all') return new Set(['v4', 'v6']);
  if (addr === '0.0.0.0/0' || (addr === '0.0.0.0' && mask === '0.0.0.0')) out.add('v4');
  if (addr === '::/0' || addr === '::0/0' || (addr === '::' && mask === '::')) out.add('v6');
  return out;
}

/**
 * Rebuilds a line with some fields replaced, keeping the columns that follow
 * where they were: when a field grows, the spaces after it shrink (down to one),
 * and any growth that could not be absorbed is absorbed by later gaps.
 * Tab-separated files need nothing: a tab already re-aligns to the next stop.
 */
function replaceFields(p: ParsedLine, repl: Map<number, string>): string {
  let out = p.raw.slice(0, p.fields[0]?.start ?? 0);
  let debt = 0; // columns we are ahead of the original layout
  p.fields.forEach((f, i) => {
    const text = repl.get(i) ?? f.text;
    out += text;
    debt += text.length - f.text.length;
    const gapEnd = p.fields[i + 1]?.start ?? (p.commentAt >= 0 ? p.commentAt : p.raw.length);
    let gap = p.raw.slice(f.end, gapEnd);
    if (debt > 0 && /^ +$/.test(gap) && gap.length > 1) {
      const take = Math.min(debt, gap.length - 1);
      gap = gap.slice(take);
      debt -= take;
    } else if (debt < 0 && /^ +$/.test(gap) && i + 1 < p.fields.length) {
      gap += ' '.repeat(-debt);
      debt = 0;
    }
    out += gap;
  });
  if (p.commentAt >= 0) out += p.raw.slice(p.commentAt);
  return out;
}

/** Quotes a user name for pg_hba.conf when it is not a plain identifier or is a keyword. */
export function hbaQuote(name: string): string {
  const keyword = ['all', 'sameuser', 'samerole', 'samegroup', 'replication'].includes(name);
  if (/^[A-Za-z0-9_.-]+$/.test(name) && !keyword) return name;
  return `"${name.replace(/"/g, '""')}"`;
}

/** Column start positions to imitate for new rules: taken from the last TCP rule of the file, or Debian's default widths. */
function layoutFrom(lines: ParsedLine[]): { cols: number[] } | { sep: string } {
  for (let i = lines.length - 1; i >= 0; i--) {
    const p = lines[i]!;
    if (p.fields.length >= 5 && TCP_TYPES.has(p.fields[0]!.text)) {
      const head = p.raw.slice(0, p.fields[4]!.start);
      if (head.includes('\t')) return { sep: '\t' };
      // A file written with single spaces gets single spaces, not columns copied from one line.
      if (p.fields.slice(0, 4).every((f, j) => p.fields[j + 1]!.start - f.end === 1)) return { sep: ' ' };
      return { cols: p.fields.slice(0, 5).map((f) => f.start) };
    }
  }
  return { cols: [0, 8, 24, 40, 64] }; // Debian's pg_hba.conf: type 8, database 16, user 16, address 24
}

function formatRule(fields: string[], layout: ReturnType<typeof layoutFrom>): string {
  if ('sep' in layout) return fields.join(layout.sep);
  let out = '';
  fields.forEach((f, i) => {
    if (i > 0) out += ' '.repeat(Math.max(1, (layout.cols[i] ?? out.length + 1) - out.length));
    out += f;
  });
  return out;
}

/**
 * Inserts the missing `hostnossl DB all ADDR reject` rules (IPv4, IPv6; `all` and, when asked,
 * `replication`) directly above the first network rule for a remote address, or at the end when
 * there is none. `out` and `parsed` are the file's lines so far (kept in step).
 */
function addRejectRules(out: string[], parsed: ParsedLine[], layout: ReturnType<typeof layoutFrom>, replication: boolean, changes: string[], warnings: string[]): void {
  const isNet = (p: ParsedLine) => p.fields.length >= 4 && NET_TYPES.has(p.fields[0]!.text);
  const has = (db: string, addr: string) =>
    parsed.some((p) => isNet(p) && p.fields[0]!.text === 'hostnossl' && p.fields[1]!.text === db && p.fields[2]!.text === 'all' && p.fields[3]!.text === addr && p.fields[4]?.text === 'reject');
  const add: string[] = [];
  for (const db of replication ? ['all', 'replication'] : ['all'])
    for (const addr of ['0.0.0.0/0', '::/0'])
      if (!has(db, addr)) {
        add.push(formatRule(['hostnossl', db, 'all', addr, 'reject'], layout));
        changes.push(`added hostnossl ${db} all ${addr} reject`);
      }
  const first = parsed.findIndex((p) => isNet(p) && !loopbackRule(p.fields));
  const at = first >= 0 ? first : out.length;
  // Loopback rules below the reject rules are shadowed for connections without TLS: say so (every run).
  parsed.forEach((p, i) => {
    if (i > at && isNet(p) && p.fields[0]!.text !== 'hostssl' && loopbackRule(p.fields))
      warnings.push(`'${p.fields.map((x) => x.text).join(' ')}' (loopback) is below the first remote rule: connections to it without TLS meet the reject rules first; move it above them`);
  });
  if (add.length === 0) return;
  const lines = parsed.some((p) => p.raw === REJECT_MARK) ? add : [REJECT_MARK, ...add];
  out.splice(at, 0, ...lines);
  parsed.splice(at, 0, ...lines.map(parseHbaLine));
}

export function rewriteHba(input: string, opts: HbaRewriteOptions = {}): HbaRewriteResult {
  const catchAll = opts.catchAll ?? true;
  const certUsers = opts.certUsers ?? [];
  // Keep the file's line ending; a missing final newline is added (PostgreSQL does not care, diffs look saner).
  const eol = input.includes('\r\n') ? '\r\n' : '\n';
  const rawLines = input.length === 0 ? [] : input.replace(/\r?\n$/, '').split(/\r?\n/);
  const changes: string[] = [];
  const warnings: string[] = [];
  const out: string[] = [];
  const parsed: ParsedLine[] = [];
  let continued = false;

  rawLines.forEach((raw, n) => {
    const p = parseHbaLine(raw);
    const lineNo = n + 1;
    const wasContinued = continued;
    continued = p.commentAt < 0 && /\\\s*$/.test(raw);
    const type = p.fields[0]?.text ?? '';
    if (wasContinued || continued) {
      // PostgreSQL 16 continuation lines: too rare to rewrite safely; leave them and say so.
      if (!wasContinued && p.fields.length > 0) warnings.push(`line ${lineNo}: continued rule left unchanged, check it by hand`);
      out.push(raw);
      parsed.push(parseHbaLine(''));
      return;
    }
    if (type.startsWith('include')) {
      warnings.push(`line ${lineNo}: ${type} ${p.fields[1]?.text ?? ''}: included files are not rewritten`);
    }
    if (TCP_TYPES.has(type) && p.fields.length >= 5) {
      const mi = methodIndex(p.fields);
      const method = p.fields[mi]?.text ?? '';
      if (PASSWORD_METHODS.has(method)) {
        const repl = new Map<number, string>();
        if (type !== 'hostssl') repl.set(0, 'hostssl');
        if (method !== 'scram-sha-256') repl.set(mi, 'scram-sha-256');
        if (repl.size > 0) {
          const next = replaceFields(p, repl);
          changes.push(`line ${lineNo}: ${type} … ${method} -> hostssl … scram-sha-256`);
          out.push(next);
          parsed.push(parseHbaLine(next));
          return;
        }
      } else if (type !== 'hostssl' && method !== 'reject' && !loopbackRule(p.fields) && !opts.rejectPlaintext) {
        // loopback traffic never leaves the host; with rejectPlaintext the reject rules above it win
        warnings.push(`line ${lineNo}: '${type} … ${method}' still accepts connections without TLS from remote addresses (left unchanged)`);
      }
    } else if (type && !RULE_TYPES.has(type) && !type.startsWith('include')) {
      warnings.push(`line ${lineNo}: unknown rule type '${type}' left unchanged`);
    }
    out.push(raw);
    parsed.push(p);
  });

  const layout = layoutFrom(parsed);
  const isRule = (p: ParsedLine) => p.fields.length >= 5 && TCP_TYPES.has(p.fields[0]!.text);

  // cert rules above the first password rule (or at the end, before the catch-alls, when there is none)
  const certLines: string[] = [];
  for (const user of certUsers) {
    const u = hbaQuote(user);
    for (const addr of ['0.0.0.0/0', '::/0']) {
      const exists = parsed.some(
        (p) => isRule(p) && p.fields[0]!.text === 'hostssl' && p.fields[1]!.text === 'all' && p.fields[2]!.text === u &&
          p.fields[3]!.text === addr && p.fields[methodIndex(p.fields)]?.text === 'cert',
      );
      if (!exists) {
        certLines.push(formatRule(['hostssl', 'all', u, addr, 'cert'], layout));
        changes.push(`added hostssl all ${u} ${addr} cert`);
      }
    }
  }
  if (certLines.length > 0) {
    const firstPw = parsed.findIndex((p) => isRule(p) && PASSWORD_METHODS.has(p.fields[methodIndex(p.fields)]?.text ?? ''));
    const at = firstPw >= 0 ? firstPw : out.length;
    out.splice(at, 0, ...certLines);
    parsed.splice(at, 0, ...certLines.map(parseHbaLine));
  }

  if (opts.rejectPlaintext) addRejectRules(out, parsed, layout, opts.rejectReplication ?? true, changes, warnings);

  if (catchAll) {
    // An existing host/hostssl rule for all databases and users that covers the whole family makes
    // ours unreachable (first match wins), whatever its method: then we add nothing.
    const covered = new Set<Family>();
    for (const p of parsed) {
      if (isRule(p) && p.fields[0]!.text !== 'hostnossl' && p.fields[1]!.text === 'all' && p.fields[2]!.text === 'all') {
        for (const fam of coversAll(p.fields)) covered.add(fam);
      }
    }
    const add: string[] = [];
    for (const [fam, addr] of [['v4', '0.0.0.0/0'], ['v6', '::/0']] as const) {
      if (!covered.has(fam)) {
        add.push(formatRule(['hostssl', 'all', 'all', addr, 'scram-sha-256'], layout));
        changes.push(`added hostssl all all ${addr} scram-sha-256`);
      }
    }
    if (add.length > 0) {
      if (out.length > 0 && out[out.length - 1]!.trim() !== '') out.push('');
      out.push('# pgtls: remote clients need TLS and SCRAM-SHA-256', ...add);
    }
  }

  // Nothing to do: hand back the input byte for byte (even a missing final newline stays missing).
  if (changes.length === 0) return { text: input, changed: false, changes, warnings };
  const text = out.join(eol) + eol;
  return { text, changed: text !== input, changes, warnings };
}
