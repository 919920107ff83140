import { Secret, redactKnown } from '../core/secret.js';

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

/** `password=value` anywhere in the line (a conninfo): everything after it is masked (a value may hold spaces). */
function maskConninfoPassword(line: string): string {
  const at = line.toLowerCase().search(/\bpassword\s*=/);
  if (at < 0) return line;
  const eq = line.indexOf('=', at);
  const tail = line.slice(eq + 1).trim();
  const closing = tail.endsWith("'") && tail !== "'" ? "'" : '';
  return `${line.slice(0, eq + 1)}${Secret.MASK}${closing}`;
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
