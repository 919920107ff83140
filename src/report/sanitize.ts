import { Secret, redactKnown } from '../lib/secret.js';

/**
 * The one sanitizer of the report layer: every text pgtls prints or writes (terminal, JSON,
 * command log) passes here last. Two jobs:
 *  - text from hosts (role names, stderr, a served certificate's CN, file content in a diff) may
 *    carry terminal control sequences (clear screen, retitle the window, hide a line, bidi
 *    overrides): they are removed, so a host cannot draw on the operator's terminal;
 *  - any secret's text that got this far anyway is masked (redactKnown: every Secret ever made).
 * Newlines and tabs are kept in multi-line text (diffs, tables); `oneLine` turns them into spaces.
 */
export function safeText(text: string, opts: { oneLine?: boolean } = {}): string {
  const clean = text.replace(opts.oneLine ? ONE_LINE_CONTROLS : CONTROLS, (c) => (c === '\n' || c === '\t' || c === '\r' ? ' ' : ''));
  return redactKnown(clean);
}

/** C0 (but tab and newline), DEL, C1, and the Unicode bidi / line separator controls. */
const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const ONE_LINE_CONTROLS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** safeText applied to every string inside a JSON-able value (keys included), for the JSON reports. */
export function safeJson(v: unknown): unknown {
  if (typeof v === 'string') return safeText(v);
  if (v instanceof Secret) return Secret.MASK;
  if (Array.isArray(v)) return v.map(safeJson);
  if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype)
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [safeText(k), safeJson(x)]));
  return v;
}

/**
 * Masks the values of lines that look like they hold a password, in diff context lines too:
 * `sr_check_password = 'x'` (pgpool.conf, postgresql.conf: any key containing password, secret or
 * passphrase, commented or not; not password_encryption or pool_passwd, which name a method and a file), `password=x` inside a conninfo (`primary_conninfo = '… password=x …'`)
 * and `scheme://user:x@host` URIs. Linear in the line length (no backtracking regexps: a host's
 * file may hold a pathological line).
 */
export function maskPasswordLines(text: string): string {
  return text.split('\n').map(maskLine).join('\n');
}

const SECRET_KEY = /password|passwd|secret|passphrase/i;
/** Keys that name a password's method or place, not a password: `password_encryption`, pgpool's `pool_passwd` file. */
const NOT_SECRET_KEY = /(?:_encryption|_file|_path|_dir|_type|_method)$|^pool_passwd$/i;

function maskLine(line: string): string {
  // A unified diff line starts with ' ', '+' or '-'; file headers (---/+++) hold paths.
  if (line.startsWith('---') || line.startsWith('+++')) return line;
  let out = line;
  const eq = out.indexOf('=');
  if (eq > 0) {
    const key = out.slice(0, eq).replace(/^[-+ ]/, '').trim().replace(/^#\s*/, '');
    if (/^[A-Za-z0-9_.-]+$/.test(key) && SECRET_KEY.test(key) && !NOT_SECRET_KEY.test(key)) return `${out.slice(0, eq + 1)} ${Secret.MASK}`;
  }
  out = maskConninfoPassword(out);
  return maskUriPassword(out);
}

/**
 * `password=value` anywhere in the line (a conninfo): the value is masked, the keywords after it stay
 * (`sslmode=verify-full` is what a reviewer wants to see). The value ends at whitespace when bare;
 * quoted (`'…'`, or `''…''` inside a postgresql.conf string) at its closing quote followed by a space
 * or the end; when no end is found, everything up to the end of the line is masked.
 */
function maskConninfoPassword(line: string): string {
  let out = line;
  let from = 0;
  for (;;) {
    const at = out.toLowerCase().indexOf('password', from);
    if (at < 0) return out;
    let eq = at + 8;
    while (out[eq] === ' ') eq++;
    if (out[eq] !== '=' || (at > 0 && /[A-Za-z0-9_]/.test(out[at - 1]!))) {
      from = at + 8;
      continue;
    }
    let start = eq + 1;
    while (out[start] === ' ') start++;
    const end = valueEnd(out, start);
    const tailStart = end < 0 ? out.length : end;
    const closing = end < 0 && out.trimEnd().endsWith("'") ? "'" : '';
    out = `${out.slice(0, start)}${Secret.MASK}${end < 0 ? closing : out.slice(tailStart)}`;
    from = start + Secret.MASK.length;
  }
}

/** Where a conninfo value starting at `i` ends (index after it), or -1 when it cannot be told. */
function valueEnd(s: string, i: number): number {
  // already masked (the conninfo-aware masker of src/pgconf kept the other keywords): keep them too
  if (s.startsWith(Secret.MASK, i)) return i + Secret.MASK.length;
  if (s.startsWith(`'${Secret.MASK}'`, i)) return i + Secret.MASK.length + 2;
  const quote = s.startsWith("''", i) ? "''" : s[i] === "'" ? "'" : '';
  if (!quote) {
    let j = i;
    while (j < s.length && s[j] !== ' ' && s[j] !== "'") j++;
    return j;
  }
  for (let j = s.indexOf(quote, i + quote.length); j >= 0; j = s.indexOf(quote, j + 1)) {
    if (quote === "'" && s[j - 1] === '\\') continue;
    const after = s[j + quote.length];
    if (after === undefined || after === ' ' || (quote === "''" && after === "'")) return j + quote.length;
  }
  return -1;
}

/** `postgresql://user:secret@host`: the password part is masked. */
function maskUriPassword(line: string): string {
  let out = line;
  let from = 0;
  for (;;) {
    const scheme = out.indexOf('://', from);
    if (scheme < 0) return out;
    const start = scheme + 3;
    const at = out.indexOf('@', start);
    const slash = out.indexOf('/', start);
    const space = out.slice(start).search(/\s/);
    const end = [slash, space < 0 ? -1 : start + space].filter((i) => i >= 0).reduce((a, b) => Math.min(a, b), out.length);
    if (at < 0 || at > end) {
      from = start;
      continue;
    }
    const colon = out.indexOf(':', start);
    if (colon >= 0 && colon < at) out = `${out.slice(0, colon + 1)}${Secret.MASK}${out.slice(at)}`;
    from = out.indexOf('@', start) + 1;
  }
}
