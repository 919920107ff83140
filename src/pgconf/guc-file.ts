/**
 * One setting in a PostgreSQL configuration file (postgresql.conf, postgresql.auto.conf, an
 * included file, recovery.conf), found and edited the way the server reads it (guc-file.l):
 * `name = value` or `name value`, names case-insensitive, `#` starts a comment, the LAST
 * assignment in a file wins; a quoted value is '…' with '' or \' for a quote, \\ for a
 * backslash, \n \t \b \f \r and \ooo octal (GUC_scanstr).
 *
 * Decoding keeps, for every decoded character, where it came from in the file, so an edit
 * of the decoded value (a new sslmode inside primary_conninfo) becomes an edit of only
 * those bytes of the file: the rest of the line, its quoting style and comments stay. Pure.
 */
import type { ConninfoEdit } from './conninfo.js';

export interface GucAssignment {
  /** 1-based line number. */
  line: number;
  /** Offsets in the file: the whole line (without its newline), and the value's literal. */
  lineStart: number;
  lineEnd: number;
  valueStart: number;
  valueEnd: number;
  quoted: boolean;
  /** The value as the server reads it. */
  value: string;
  /** map[i] = file offset of decoded character i; map[value.length] = where the value's text ends. */
  map: number[];
}

export class GucFileError extends Error {}

const ESC: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

function decodeQuoted(text: string, open: number): { value: string; map: number[]; close: number } {
  let value = '';
  const map: number[] = [];
  let i = open + 1;
  for (;;) {
    if (i >= text.length || text[i] === '\n') throw new GucFileError('unterminated quoted string');
    const c = text[i]!;
    if (c === "'") {
      if (text[i + 1] === "'") {
        map.push(i);
        value += "'";
        i += 2;
        continue;
      }
      map.push(i);
      return { value, map, close: i };
    }
    if (c === '\\') {
      const n = text[i + 1];
      if (n === undefined || n === '\n') throw new GucFileError('unterminated quoted string');
      map.push(i);
      const oct = /^[0-7]{1,3}/.exec(text.slice(i + 1, i + 4));
      if (oct) {
        value += String.fromCharCode(parseInt(oct[0], 8));
        i += 1 + oct[0].length;
      } else {
        value += ESC[n] ?? n;
        i += 2;
      }
      continue;
    }
    map.push(i);
    value += c;
    i++;
  }
}

/** The assignment of `name` that the server uses from this file (the last one), or null. */
export function findGucAssignment(text: string, name: string): GucAssignment | null {
  let found: GucAssignment | null = null;
  let lineStart = 0;
  let lineNo = 0;
  const head = new RegExp(`^([ \\t]*)(${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')})([ \\t]*=[ \\t]*|[ \\t]+)`, 'i');
  while (lineStart <= text.length) {
    lineNo++;
    const nl = text.indexOf('\n', lineStart);
    const lineEnd = nl < 0 ? text.length : nl;
    const line = text.slice(lineStart, lineEnd);
    const m = head.exec(line);
    if (m) {
      const valueStart = lineStart + m[0].length;
      if (text[valueStart] === "'") {
        try {
          const d = decodeQuoted(text, valueStart);
          found = { line: lineNo, lineStart, lineEnd, valueStart, valueEnd: d.close + 1, quoted: true, value: d.value, map: d.map };
        } catch (e) {
          throw new GucFileError(`line ${lineNo}: ${(e as Error).message} in the value of ${name}`);
        }
      } else {
        const v = /^[^\s#]*/.exec(text.slice(valueStart, lineEnd))![0];
        const map = Array.from({ length: v.length + 1 }, (_, k) => valueStart + k);
        found = { line: lineNo, lineStart, lineEnd, valueStart, valueEnd: valueStart + v.length, quoted: false, value: v, map };
      }
    }
    if (nl < 0) break;
    lineStart = nl + 1;
  }
  return found;
}

/** A value as a quoted literal of a configuration file (quotes doubled, backslashes doubled). */
export function quoteGucValue(v: string): string {
  return `'${v.replace(/'/g, "''").replace(/\\/g, '\\\\')}'`;
}

const encodeInner = (v: string) => quoteGucValue(v).slice(1, -1);

/**
 * Applies edits of the decoded value to the file: only the bytes behind the edited characters
 * change. An unquoted value is rewritten as one quoted literal (it cannot hold a space anyway).
 */
export function editGucValue(text: string, a: GucAssignment, edits: ConninfoEdit[], newValue: string): string {
  if (!a.quoted) return text.slice(0, a.valueStart) + quoteGucValue(newValue) + text.slice(a.valueEnd);
  let out = text;
  for (const e of [...edits].sort((x, y) => y.start - x.start)) {
    const from = a.map[e.start]!;
    const to = a.map[e.end]!;
    out = out.slice(0, from) + encodeInner(e.text) + out.slice(to);
  }
  return out;
}

/** The file with the assignment's whole line replaced by `line` (an original line put back). */
export function replaceGucLine(text: string, a: GucAssignment, line: string): string {
  return text.slice(0, a.lineStart) + line + text.slice(a.lineEnd);
}

/**
 * The file's text with the password inside every primary_conninfo (active or commented out)
 * replaced by ********: what a diff may show of postgresql.conf / postgresql.auto.conf / recovery.conf.
 */
export function maskConninfoPasswords(text: string, mask: (conninfo: string) => string): string {
  if (!/password/i.test(text)) return text;
  return text
    .split('\n')
    .map((line) => {
      if (!/conninfo/i.test(line) || !/password/i.test(line)) return line;
      const hash = /^([ \t]*#[ \t]*)(?=[a-z_]*conninfo)/i.exec(line);
      const body = hash ? line.slice(hash[0].length) : line;
      const name = /^[ \t]*([a-z_]*conninfo)/i.exec(body)?.[1];
      try {
        const a = name ? findGucAssignment(body, name) : null;
        if (!a) throw new GucFileError('no assignment');
        const masked = mask(a.value);
        if (/password/i.test(masked) && !masked.includes('********')) throw new GucFileError('not masked');
        return (hash?.[0] ?? '') + body.slice(0, a.valueStart) + quoteGucValue(masked) + body.slice(a.valueEnd);
      } catch {
        return line.replace(/(password)[\s\S]*$/i, '$1********');
      }
    })
    .join('\n');
}
