/**
 * The pure text logic of Ansible's `lineinfile` module: no I/O, no file
 * attributes, no `create`/`backup`/`validate` (the caller owns those).
 *
 * Reference: ansible/ansible lib/ansible/modules/lineinfile.py, functions
 * `present()`, `absent()` and the checks in `main()`. The control flow below
 * mirrors that code branch for branch, so that a playbook ported from Ansible
 * edits a file the same way. Deliberate deviations are marked "DEVIATION".
 *
 * Model: Ansible reads the file with `readlines()` in binary mode, i.e. it
 * splits after every "\n" and KEEPS the line endings; every regexp is searched
 * (`re.search`, not `re.match`) against the line WITH its ending; the
 * "exact line" comparison uses `line.rstrip('\r\n')`.
 */

export interface LineInFileSpec {
  /** Python `re` syntax; translated to an equivalent JS RegExp (see compilePythonRegex). */
  regexp?: string;
  /** Literal substring alternative to regexp (Ansible 2.11+). */
  search_string?: string;
  /** Required for state=present. */
  line?: string;
  state: 'present' | 'absent';
  /** 'EOF', 'BOF' (Ansible accepts it here too) or a regexp. */
  insertafter?: string;
  /** 'BOF' or a regexp. */
  insertbefore?: string;
  backrefs: boolean;
  firstmatch: boolean;
}

export interface EditResult {
  content: string;
  changed: boolean;
  /** Ansible's msg: 'line added', 'line replaced', 'N line(s) removed', 'file not present' or ''. */
  message: string;
  warnings: string[];
  /** state=absent only: how many lines matched (Ansible returns `found`). */
  found?: number;
}

// ---------------------------------------------------------------------------
// Python `re` -> JS RegExp
// ---------------------------------------------------------------------------

interface PyRegex {
  re: RegExp;
  groupCount: number;
  groupNames: ReadonlySet<string>;
}

/**
 * Translates a Python regular expression into a JS RegExp with the same
 * meaning on a single line (which is all lineinfile ever searches):
 *
 * - `$` in Python matches at the end OR just before a final "\n"; a JS `$`
 *   (no m flag) only at the very end. Since Ansible searches the line with its
 *   ending, `^ssl = on$` matches "ssl = on\n" — but NOT "ssl = on\r\n" (the
 *   "\r" is in the way). We reproduce both facts with `(?=\n?$)`.
 * - `.` in Python matches anything but "\n" (so it does match "\r"); JS `.`
 *   also refuses "\r", "\u2028", "\u2029". Hence `[^\n]`.
 * - `(?P<name>...)` -> `(?<name>...)`, `(?P=name)` -> `\k<name>`,
 *   `(?#comment)` dropped, `\A` / `\Z` -> start / end of input,
 *   `[]...]` (a leading `]` is literal in Python, an empty set in JS) -> `[\]...]`,
 *   `x{,n}` -> `x{0,n}`.
 * - Global inline flags at the start (`(?i)`, `(?m)`, `(?s)`, `(?x)`; `a`, `u`,
 *   `L` are no-ops here) are applied; scoped flags `(?i:...)` are left to the
 *   JS engine, which rejects them on Node 20.
 *
 * Known residual difference: Ansible matches bytes, so `\s` and case folding
 * are ASCII-only there, and `.` eats one byte of a multi-byte UTF-8 character.
 */
function translatePythonRegex(py: string): { source: string; flags: string } {
  let i = 0;
  let ignoreCase = false;
  let multiline = false;
  let dotAll = false;
  let verbose = false;
  for (;;) {
    const m = /^\(\?([aiLmsux]+)\)/.exec(py.slice(i));
    if (!m) break;
    for (const f of m[1] ?? '') {
      if (f === 'i') ignoreCase = true;
      else if (f === 'm') multiline = true;
      else if (f === 's') dotAll = true;
      else if (f === 'x') verbose = true;
    }
    i += m[0].length;
  }

  let out = '';
  while (i < py.length) {
    const c = py[i] as string;
    if (verbose && /\s/.test(c)) {
      i++;
      continue;
    }
    if (verbose && c === '#') {
      while (i < py.length && py[i] !== '\n') i++;
      continue;
    }
    if (c === '\\') {
      const n = py[i + 1];
      if (n === undefined) {
        out += '\\'; // let the JS engine report "\ at end of pattern"
        i++;
      } else {
        out += n === 'A' ? '(?<![\\s\\S])' : n === 'Z' ? '(?![\\s\\S])' : '\\' + n;
        i += 2;
      }
      continue;
    }
    if (c === '[') {
      let j = i + 1;
      let cls = '[';
      if (py[j] === '^') {
        cls += '^';
        j++;
      }
      if (py[j] === ']') {
        cls += '\\]';
        j++;
      }
      while (j < py.length && py[j] !== ']') {
        if (py[j] === '\\' && j + 1 < py.length) {
          cls += py.slice(j, j + 2);
          j += 2;
        } else {
          cls += py[j];
          j++;
        }
      }
      if (j >= py.length) throw new Error(`unterminated character set at position ${i}`);
      out += cls + ']';
      i = j + 1;
      continue;
    }
    if (c === '(' && py[i + 1] === '?') {
      if (py.startsWith('(?P<', i)) {
        out += '(?<';
        i += 4;
        continue;
      }
      if (py.startsWith('(?P=', i)) {
        const end = py.indexOf(')', i);
        if (end < 0) throw new Error(`missing ), unterminated name at position ${i + 4}`);
        out += `\\k<${py.slice(i + 4, end)}>`;
        i = end + 1;
        continue;
      }
      if (py.startsWith('(?#', i)) {
        const end = py.indexOf(')', i);
        if (end < 0) throw new Error(`missing ), unterminated comment at position ${i}`);
        i = end + 1;
        continue;
      }
    }
    if (c === '.') {
      out += dotAll ? '[\\s\\S]' : '[^\\n]';
    } else if (c === '^') {
      out += multiline ? '(?:^|(?<=\\n))' : '^';
    } else if (c === '$') {
      out += multiline ? '(?=\\n|$)' : '(?=\\n?$)';
    } else if (c === '{') {
      const m = /^\{,(\d+)\}/.exec(py.slice(i));
      if (m) {
        out += `{0,${m[1]}}`;
        i += m[0].length;
        continue;
      }
      out += c;
    } else {
      out += c;
    }
    i++;
  }
  // Never the JS 'm' or 's' flags: ^ $ . are rewritten above with Python's meaning.
  return { source: out, flags: ignoreCase ? 'i' : '' };
}

/** Compiles a Python regexp; throws an Error carrying the engine's message when invalid. */
export function compilePythonRegex(py: string): PyRegex {
  const { source, flags } = translatePythonRegex(py);
  const re = new RegExp(source, flags);
  // An alternation with the empty string always matches, which reveals the
  // number of capture groups and the group names without touching real input.
  const probe = new RegExp(source + '|', flags).exec('');
  return {
    re,
    groupCount: probe ? probe.length - 1 : 0,
    groupNames: new Set(Object.keys(probe?.groups ?? {})),
  };
}

// ---------------------------------------------------------------------------
// Python `Match.expand()` (backrefs=true)
// ---------------------------------------------------------------------------

type TemplatePart = string | { group: number } | { name: string };

/** Python's `re` template escapes (sre_parse ESCAPES); anything else after "\" is kept as is, unless it is an ASCII letter (an error since Python 3.7). */
const TEMPLATE_ESCAPES: Record<string, string> = {
  a: '\x07',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
  '\\': '\\',
};
const OCT = /^[0-7]$/;
const DIGIT = /^[0-9]$/;

/**
 * Parses `line` the way Python's `parse_template` does, so that the same
 * template expands to the same text — including its traps: `\1256MB` is NOT
 * group 1 followed by "256MB" but the octal escape `\125` ("U") followed by
 * "6MB", and `\12` is group 12. `\g<1>256MB` is the unambiguous spelling.
 */
function parseTemplate(t: string, rx: PyRegex): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let lit = '';
  const flush = () => {
    if (lit) parts.push(lit);
    lit = '';
  };
  const group = (n: number, pos: number) => {
    if (n > rx.groupCount) throw new Error(`invalid group reference ${n} at position ${pos}`);
    flush();
    parts.push({ group: n });
  };
  let i = 0;
  while (i < t.length) {
    const ch = t[i] as string;
    if (ch !== '\\') {
      lit += ch;
      i++;
      continue;
    }
    const c = t[i + 1];
    if (c === undefined) throw new Error(`bad escape (end of pattern) at position ${i}`);
    const start = i;
    i += 2;
    if (c === 'g') {
      if (t[i] !== '<') throw new Error(`missing < at position ${i}`);
      const end = t.indexOf('>', i + 1);
      if (end < 0) throw new Error(`missing >, unterminated name at position ${i + 1}`);
      const name = t.slice(i + 1, end);
      if (name === '') throw new Error(`missing group name at position ${i + 1}`);
      if (/^[0-9]+$/.test(name)) group(Number(name), i + 1);
      else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
        if (!rx.groupNames.has(name)) throw new Error(`unknown group name '${name}'`);
        flush();
        parts.push({ name });
      } else throw new Error(`bad character in group name '${name}' at position ${i + 1}`);
      i = end + 1;
    } else if (c === '0') {
      // \0, \0o, \0oo: an octal escape, never group 0.
      let digits = '0';
      while (digits.length < 3 && OCT.test(t[i] ?? '')) digits += t[i++];
      lit += String.fromCharCode(parseInt(digits, 8) & 0xff);
    } else if (DIGIT.test(c)) {
      let digits = c;
      if (DIGIT.test(t[i] ?? '')) {
        digits += t[i++];
        if (OCT.test(c) && OCT.test(digits[1] ?? '') && OCT.test(t[i] ?? '')) {
          digits += t[i++];
          const code = parseInt(digits, 8);
          if (code > 0o377) throw new Error(`octal escape value \\${digits} outside of range 0-0o377 at position ${start}`);
          lit += String.fromCharCode(code);
          continue;
        }
      }
      group(Number(digits), start + 1);
    } else if (c in TEMPLATE_ESCAPES) {
      lit += TEMPLATE_ESCAPES[c];
    } else if (/^[A-Za-z]$/.test(c)) {
      throw new Error(`bad escape \\${c} at position ${start}`);
    } else {
      lit += '\\' + c; // Python keeps unknown non-letter escapes verbatim
    }
  }
  flush();
  return parts;
}

function expandTemplate(parts: TemplatePart[], m: RegExpExecArray): string {
  // An unmatched group expands to '' (Python >= 3.5).
  return parts
    .map((p) => (typeof p === 'string' ? p : 'group' in p ? (m[p.group] ?? '') : (m.groups?.[p.name] ?? '')))
    .join('');
}

// ---------------------------------------------------------------------------
// Line helpers
// ---------------------------------------------------------------------------

/** Python's bytes `readlines()`: split after each "\n", keep the endings; a lone "\r" is not a break. */
function readlines(content: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (;;) {
    const nl = content.indexOf('\n', start);
    if (nl < 0) {
      if (start < content.length) out.push(content.slice(start));
      return out;
    }
    out.push(content.slice(start, nl + 1));
    start = nl + 1;
  }
}

/** Ansible's `b_cur_line.rstrip(b'\r\n')`: strips any run of trailing CR/LF characters. */
function stripEol(l: string): string {
  return l.replace(/[\r\n]+$/, '');
}

/**
 * The separator for lines we add. Ansible always uses `os.linesep` ("\n" on
 * the POSIX hosts it supports). DEVIATION: a file whose first line ends in
 * "\r\n" gets "\r\n" instead, so a CRLF file stays CRLF.
 */
function fileEol(lines: readonly string[]): string {
  const first = lines.find((l) => l.endsWith('\n'));
  return first?.endsWith('\r\n') ? '\r\n' : '\n';
}

/**
 * Terminates a replacement line. Ansible: `if not new_line.endswith(linesep): new_line += linesep`.
 * DEVIATION: the separator is the replaced line's own ending when it has one
 * (Ansible would turn "x\r\n" into "x\n" and report a change on a CRLF line
 * whose text is already right). A text that already ends in "\r" (a group
 * that captured the CR, since Python's `.` matches it) only needs the "\n".
 */
function terminate(text: string, eol: string): string {
  if (text.endsWith('\n')) return text;
  if (eol === '\r\n' && text.endsWith('\r')) return text + '\n';
  return text + eol;
}

/** Ansible: `if b_lines and not b_lines[-1][-1:] in (b'\n', b'\r'): append(linesep)` — never glue the new line onto an unterminated last line. */
function ensureTerminated(lines: string[], eol: string): void {
  const last = lines[lines.length - 1];
  if (last !== undefined && !last.endsWith('\n') && !last.endsWith('\r')) lines.push(eol);
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

// ---------------------------------------------------------------------------
// Validation and warnings
// ---------------------------------------------------------------------------

/**
 * User-facing errors for a spec Ansible would refuse (its argument_spec's
 * mutually_exclusive list and the checks in `main()`), plus regexps or
 * backref templates that Python would fail to compile. Empty = valid.
 */
export function validateSpec(spec: LineInFileSpec): string[] {
  const errors: string[] = [];
  if (spec.state !== 'present' && spec.state !== 'absent') {
    errors.push(`state must be 'present' or 'absent', got '${String(spec.state)}'`);
    return errors;
  }
  if (spec.insertafter !== undefined && spec.insertbefore !== undefined) {
    errors.push('parameters are mutually exclusive: insertbefore|insertafter');
  }
  if (spec.regexp !== undefined && spec.search_string !== undefined) {
    errors.push('parameters are mutually exclusive: regexp|search_string');
  }
  if (spec.backrefs && spec.search_string !== undefined) {
    errors.push('parameters are mutually exclusive: backrefs|search_string');
  }
  if (spec.state === 'present') {
    if (spec.backrefs && spec.regexp === undefined) errors.push('regexp is required with backrefs=true');
    if (spec.line === undefined) errors.push('line is required with state=present');
  } else if (spec.regexp === undefined && spec.search_string === undefined && spec.line === undefined) {
    errors.push('one of line, search_string, or regexp is required with state=absent');
  }

  let rx: PyRegex | undefined;
  if (spec.regexp !== undefined) {
    try {
      rx = compilePythonRegex(spec.regexp);
    } catch (e) {
      errors.push(`regexp: invalid regular expression '${spec.regexp}': ${errorText(e)}`);
    }
  }
  // Like Ansible, insertafter/insertbefore are only compiled for state=present.
  if (spec.state === 'present') {
    for (const [name, value, special] of [
      ['insertafter', spec.insertafter, ['BOF', 'EOF']],
      ['insertbefore', spec.insertbefore, ['BOF']],
    ] as const) {
      if (value === undefined || (special as readonly string[]).includes(value)) continue;
      try {
        compilePythonRegex(value);
      } catch (e) {
        errors.push(`${name}: invalid regular expression '${value}': ${errorText(e)}`);
      }
    }
    // Python raises these at expand() time, i.e. only once a line matched; we
    // report them up front so a bad template fails before touching any host.
    if (spec.backrefs && rx && spec.line !== undefined) {
      try {
        parseTemplate(spec.line, rx);
      } catch (e) {
        errors.push(`line: invalid backreference template for regexp '${spec.regexp}': ${errorText(e)}`);
      }
    }
  }
  return errors;
}

function specWarnings(spec: LineInFileSpec): string[] {
  const warnings: string[] = [];
  // Verbatim from Ansible's main().
  if (spec.regexp === '' || spec.search_string === '') {
    const param = spec.regexp === '' ? 'regular expression' : 'search string';
    let msg =
      `The ${param} is an empty string, which will match every line in the file. ` +
      'This may have unintended consequences, such as replacing the last line in the file rather than appending.';
    if (spec.regexp === '') {
      msg += " If this is desired, use '^' to match every line in the file and avoid this warning.";
    }
    warnings.push(msg);
  }
  // pgtls addition (Ansible documents the rule but does not check it): "the
  // regexp should typically match both the initial state of the line as well
  // as its state after replacement by line to ensure idempotence". If it does
  // not, the next run cannot find the line it wrote; as soon as `line` changes
  // (a new value), it is appended as a second, conflicting line.
  if (spec.state === 'present' && !spec.backrefs && spec.line !== undefined) {
    const written = spec.line + '\n';
    if (spec.regexp) {
      let matches = true;
      try {
        matches = compilePythonRegex(spec.regexp).re.test(written);
      } catch {
        // invalid regexps are validateSpec's business
      }
      if (!matches) {
        warnings.push(
          `regexp '${spec.regexp}' does not match line '${spec.line}': once written, the line is no longer found by ` +
            'the regexp, so a later run with a different line will add a duplicate instead of replacing it. ' +
            'Make the regexp match both the old and the new line.',
        );
      }
    } else if (spec.search_string && !spec.line.includes(spec.search_string)) {
      warnings.push(
        `search_string '${spec.search_string}' does not occur in line '${spec.line}': once written, the line is no ` +
          'longer found, so a later run with a different line will add a duplicate instead of replacing it.',
      );
    }
  }
  return warnings;
}

// ---------------------------------------------------------------------------
// present / absent
// ---------------------------------------------------------------------------

/**
 * Applies a lineinfile spec to a file's content. `before === null` means the
 * file does not exist: for state=present it is edited as empty content (the
 * caller decides whether `create` allows writing it); for state=absent nothing
 * happens (Ansible: "file not present") and the returned content must not be written.
 * Throws when validateSpec reports errors.
 */
export function editLines(before: string | null, spec: LineInFileSpec): EditResult {
  const errors = validateSpec(spec);
  if (errors.length > 0) throw new Error(`lineinfile: ${errors.join('; ')}`);
  const warnings = specWarnings(spec);
  if (spec.state === 'absent') return absent(before, spec, warnings);
  return present(before ?? '', spec, warnings);
}

function present(before: string, spec: LineInFileSpec, warnings: string[]): EditResult {
  const lines = readlines(before);
  const eol = fileEol(lines);
  const line = spec.line ?? '';
  const rx = spec.regexp !== undefined ? compilePythonRegex(spec.regexp) : undefined;

  // main(): insertafter defaults to EOF only when neither option is given.
  let insertafter = spec.insertafter;
  const insertbefore = spec.insertbefore;
  if (insertafter === undefined && insertbefore === undefined) insertafter = 'EOF';

  let insRe: RegExp | undefined;
  if (insertafter !== undefined && insertafter !== 'BOF' && insertafter !== 'EOF') {
    insRe = compilePythonRegex(insertafter).re;
  } else if (insertbefore !== undefined && insertbefore !== 'BOF') {
    insRe = compilePythonRegex(insertbefore).re;
  }

  // index[0]: line matched by regexp/search_string (or exact line);
  // index[1]: insertion point found by insertafter/insertbefore.
  let matchIdx = -1;
  let insIdx = -1;
  let match: RegExpExecArray | null = null;
  let found = false;

  // 1. regexp: the LAST matching line wins, the first with firstmatch.
  if (rx) {
    for (let n = 0; n < lines.length; n++) {
      const m = rx.re.exec(lines[n] as string);
      if (m) {
        matchIdx = n;
        match = m;
        found = true;
        if (spec.firstmatch) break;
      }
    }
  }
  // 2. search_string: same, as a literal substring ('' is in every line, like Python).
  if (spec.search_string !== undefined) {
    for (let n = 0; n < lines.length; n++) {
      if ((lines[n] as string).includes(spec.search_string)) {
        matchIdx = n;
        found = true;
        if (spec.firstmatch) break;
      }
    }
  }
  // 3. Nothing matched: look for the exact line (so an existing line is never
  // added twice, even when a regexp was given) and for the insert anchor.
  // Ansible quirk kept: with firstmatch the loop stops at the first anchor,
  // so an exact copy of `line` further down is not seen.
  if (!found) {
    for (let n = 0; n < lines.length; n++) {
      const cur = lines[n] as string;
      if (stripEol(cur) === line) {
        matchIdx = n;
      } else if (insRe && insRe.test(cur)) {
        // Truthiness as in Python: insertafter='' compiles but never anchors.
        if (insertafter) {
          insIdx = n + 1;
          if (spec.firstmatch) break;
        }
        if (insertbefore) {
          insIdx = n;
          if (spec.firstmatch) break;
        }
      }
    }
  }

  let changed = false;
  let message = '';
  const add = (at: number) => {
    lines.splice(at, 0, line + eol);
    changed = true;
    message = 'line added';
  };

  if (matchIdx !== -1) {
    // Replace the matched line (a no-op when it is already identical,
    // including its line ending). Ansible's unreachable "no regexp and no
    // exact match" branch is omitted: matchIdx is only set by a match.
    const cur = lines[matchIdx] as string;
    const text = spec.backrefs && match && rx ? expandTemplate(parseTemplate(line, rx), match) : line;
    const curEol = cur.endsWith('\r\n') ? '\r\n' : cur.endsWith('\n') ? '\n' : eol;
    const newLine = terminate(text, curEol);
    if (cur !== newLine) {
      lines[matchIdx] = newLine;
      changed = true;
      message = 'line replaced';
    }
  } else if (spec.backrefs) {
    // Ansible: "Do absolutely nothing, since it's not safe generating the line
    // without the regexp matching to populate the backrefs." insertafter and
    // insertbefore are ignored.
  } else if (insertbefore === 'BOF' || insertafter === 'BOF') {
    add(0);
  } else if (insertafter === 'EOF' || insIdx === -1) {
    // EOF, or an anchor regexp that matched nothing: append.
    ensureTerminated(lines, eol);
    add(lines.length);
  } else if (insertafter && insIdx !== -1) {
    if (insIdx === lines.length) {
      if (stripEol(lines[insIdx - 1] as string) !== line) {
        // DEVIATION: Ansible appends here without checking the last line's
        // terminator, gluing the new line onto an unterminated last line
        // ("lastnew"). Its EOF path has had that fix since ansible#7702.
        ensureTerminated(lines, eol);
        add(lines.length);
      }
    } else if (stripEol(lines[insIdx] as string) !== line) {
      add(insIdx);
    }
  } else {
    // insertbefore matched: insert before that line.
    add(insIdx);
  }

  return { content: lines.join(''), changed, message, warnings };
}

function absent(before: string | null, spec: LineInFileSpec, warnings: string[]): EditResult {
  if (before === null) return { content: '', changed: false, message: 'file not present', warnings, found: 0 };
  const rx = spec.regexp !== undefined ? compilePythonRegex(spec.regexp) : undefined;
  // Ansible's matcher(): regexp, else search_string, else the exact line — the
  // first one given wins, the others are ignored. ALL matching lines go.
  const matches = (cur: string): boolean => {
    if (rx) return rx.re.test(cur);
    if (spec.search_string !== undefined) return cur.includes(spec.search_string);
    return stripEol(cur) === spec.line;
  };
  const kept: string[] = [];
  let found = 0;
  for (const cur of readlines(before)) {
    if (matches(cur)) found++;
    else kept.push(cur);
  }
  const changed = found > 0;
  return {
    content: changed ? kept.join('') : before,
    changed,
    message: changed ? `${found} line(s) removed` : '',
    warnings,
    found,
  };
}
