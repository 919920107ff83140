import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { editLines, validateSpec, type LineInFileSpec } from '../../src/modules/lineinfile/edit.js';

/**
 * Every expected value below was worked out by hand from
 * ansible/ansible lib/ansible/modules/lineinfile.py (present()/absent()),
 * not produced by the code under test. Cases marked DEVIATION document where
 * pgtls knowingly differs (see edit.ts).
 */

type Spec = Partial<LineInFileSpec>;

interface Case {
  name: string;
  before: string | null;
  spec: Spec;
  after: string;
  changed: boolean;
  message?: string;
  /** Substrings, one per expected warning (exact count is asserted; default none). */
  warnings?: string[];
  found?: number;
}

const r = String.raw;
const EMPTY_RE = 'regular expression is an empty string';
const EMPTY_SS = 'search string is an empty string';
const DUP = 'add a duplicate';

const HBA =
  '# TYPE DATABASE USER ADDRESS METHOD\n' +
  'local all all peer\n' +
  'host all all 127.0.0.1/32 scram-sha-256\n' +
  'host all all ::1/128 scram-sha-256\n';

const PGCONF =
  "#listen_addresses = 'localhost'\n" +
  '#ssl = off\t\t\t\t# (change requires restart)\n' +
  "#ssl_ca_file = ''\n";

const cases: Case[] = [
  // ---- no regexp: exact-line semantics ----------------------------------
  { name: 'appends a missing line at EOF (insertafter defaults to EOF)', before: 'a\nb\n', spec: { line: 'c' }, after: 'a\nb\nc\n', changed: true, message: 'line added' },
  { name: 'exact line already present elsewhere: unchanged', before: 'a\nc\nb\n', spec: { line: 'c' }, after: 'a\nc\nb\n', changed: false, message: '' },
  { name: 'only CR/LF are stripped for the exact comparison (trailing space differs)', before: 'c \n', spec: { line: 'c' }, after: 'c \nc\n', changed: true },
  { name: 'a line containing `line` as a substring is not a match', before: "listen_addresses = 'localhost' # x\n", spec: { line: "listen_addresses = 'localhost'" }, after: "listen_addresses = 'localhost' # x\nlisten_addresses = 'localhost'\n", changed: true },
  { name: 'line is compared literally, not as a regexp', before: 'aab\n', spec: { line: 'a*b' }, after: 'aab\na*b\n', changed: true },
  { name: 'file without trailing newline gets one before the appended line', before: 'a\nb', spec: { line: 'c' }, after: 'a\nb\nc\n', changed: true, message: 'line added' },
  { name: 'unterminated last line equal to `line` is rewritten with a newline (Ansible reports a change)', before: 'a\nc', spec: { line: 'c' }, after: 'a\nc\n', changed: true, message: 'line replaced' },
  { name: 'empty file', before: '', spec: { line: 'x' }, after: 'x\n', changed: true, message: 'line added' },
  { name: 'absent file (null) is edited as empty content', before: null, spec: { line: 'x' }, after: 'x\n', changed: true, message: 'line added' },
  { name: 'absent file with insertbefore=BOF', before: null, spec: { line: 'x', insertbefore: 'BOF' }, after: 'x\n', changed: true },

  // ---- regexp ------------------------------------------------------------
  { name: 'postgresql.conf: commented default `#ssl = off` replaced via ^#?ssl\\s*=', before: PGCONF, spec: { regexp: r`^#?ssl\s*=`, line: 'ssl = on' }, after: "#listen_addresses = 'localhost'\nssl = on\n#ssl_ca_file = ''\n", changed: true, message: 'line replaced' },
  { name: 'regexp matches and the line is already identical: unchanged', before: 'port = 5432\nssl = on\n', spec: { regexp: r`^#?ssl\s*=`, line: 'ssl = on' }, after: 'port = 5432\nssl = on\n', changed: false, message: '' },
  { name: 'several matches: only the LAST one is replaced', before: 'ssl = off\nx\nssl = off\n', spec: { regexp: r`^#?ssl\s*=`, line: 'ssl = on' }, after: 'ssl = off\nx\nssl = on\n', changed: true },
  { name: 'firstmatch: the FIRST match is replaced', before: 'ssl = off\nx\nssl = off\n', spec: { regexp: r`^#?ssl\s*=`, line: 'ssl = on', firstmatch: true }, after: 'ssl = on\nx\nssl = off\n', changed: true },
  { name: 'regexp without match: appended at EOF', before: 'port = 5432\n', spec: { regexp: r`^#?ssl\s*=`, line: 'ssl = on' }, after: 'port = 5432\nssl = on\n', changed: true, message: 'line added' },
  { name: 'regexp without match but identical line exists: unchanged (+ duplicate-trap warning)', before: 'ssl = on\nport = 1\n', spec: { regexp: '^#ssl', line: 'ssl = on' }, after: 'ssl = on\nport = 1\n', changed: false, warnings: [DUP] },
  { name: 'regexp is searched anywhere in the line (re.search), e.g. inside a comment', before: 'port = 5432  # ssl = later\nmax_connections = 100\n', spec: { regexp: 'ssl =', line: 'ssl = on' }, after: 'ssl = on\nmax_connections = 100\n', changed: true },
  { name: 'Python $ matches before the trailing newline', before: 'ssl = off\n', spec: { regexp: '^ssl = off$', line: 'ssl = on' }, after: 'ssl = on\n', changed: true, warnings: [DUP] },
  { name: 'regexp match wins over insertafter', before: 'a\n#ssl = off\nb\n', spec: { regexp: '^#?ssl', line: 'ssl = on', insertafter: '^b' }, after: 'a\nssl = on\nb\n', changed: true },
  { name: 'pg_hba: no match for regexp, inserted after the last insertafter match', before: HBA, spec: { regexp: r`^hostssl\s+all\s+all\s+10\.0\.0\.0/8\s`, line: 'hostssl all all 10.0.0.0/8 scram-sha-256', insertafter: r`^local\s` }, after: '# TYPE DATABASE USER ADDRESS METHOD\nlocal all all peer\nhostssl all all 10.0.0.0/8 scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256\n', changed: true, message: 'line added' },
  { name: 'pg_hba: existing rule updated in place (METHOD md5 -> scram-sha-256)', before: 'local all all peer\nhost all all 10.0.0.0/8 md5\nhost all all ::1/128 md5\n', spec: { regexp: r`^host\s+all\s+all\s+10\.0\.0\.0/8\s`, line: 'host all all 10.0.0.0/8 scram-sha-256' }, after: 'local all all peer\nhost all all 10.0.0.0/8 scram-sha-256\nhost all all ::1/128 md5\n', changed: true },
  { name: '(?i) global flag is honoured', before: 'SSL = off\n', spec: { regexp: r`(?i)^ssl\s*=`, line: 'ssl = on' }, after: 'ssl = on\n', changed: true },
  { name: 'Python set with a leading ] ([]]) is a literal ]', before: ']x = 1\n', spec: { regexp: '^[]]x', line: ']x = 2' }, after: ']x = 2\n', changed: true },
  { name: 'regexp with metacharacters matches the last of two look-alike lines', before: '127.0.0.1 localhost\n127x0x0x1 other\n', spec: { regexp: '127.0.0.1', line: '127.0.0.1 localhost db' }, after: '127.0.0.1 localhost\n127.0.0.1 localhost db\n', changed: true },

  // ---- insertafter / insertbefore ------------------------------------------
  { name: 'insertafter regexp: after the LAST match', before: 'a\nx\nb\nx\nc\n', spec: { line: 'new', insertafter: '^x' }, after: 'a\nx\nb\nx\nnew\nc\n', changed: true },
  { name: 'insertafter + firstmatch: after the FIRST match', before: 'a\nx\nb\nx\nc\n', spec: { line: 'new', insertafter: '^x', firstmatch: true }, after: 'a\nx\nnew\nb\nx\nc\n', changed: true },
  { name: 'insertafter regexp without match: EOF', before: 'a\nb\n', spec: { line: 'new', insertafter: '^zzz' }, after: 'a\nb\nnew\n', changed: true },
  { name: 'insertafter matching the last line: appended', before: 'a\nx\n', spec: { line: 'new', insertafter: '^x' }, after: 'a\nx\nnew\n', changed: true },
  { name: 'DEVIATION insertafter matching an unterminated last line: newline added first (Ansible glues "xnew")', before: 'a\nx', spec: { line: 'new', insertafter: '^x' }, after: 'a\nx\nnew\n', changed: true },
  { name: 'insertafter=EOF explicit on an unterminated file', before: 'a', spec: { line: 'new', insertafter: 'EOF' }, after: 'a\nnew\n', changed: true },
  { name: 'insertafter=BOF is accepted like insertbefore=BOF', before: 'a\n', spec: { line: 'new', insertafter: 'BOF' }, after: 'new\na\n', changed: true },
  { name: 'insertafter regexp but exact line already elsewhere: unchanged', before: 'a\nnew\nb\n', spec: { line: 'new', insertafter: '^b' }, after: 'a\nnew\nb\n', changed: false },
  { name: 'insertafter on an empty file: EOF', before: '', spec: { line: 'new', insertafter: '^x' }, after: 'new\n', changed: true },
  { name: 'Ansible quirk kept: firstmatch stops the exact-line scan at the first anchor, so a later copy is not seen', before: 'x\ny\nnew\n', spec: { line: 'new', insertafter: '^x', firstmatch: true }, after: 'x\nnew\ny\nnew\n', changed: true },
  { name: 'insertbefore=BOF', before: 'a\nb\n', spec: { line: 'new', insertbefore: 'BOF' }, after: 'new\na\nb\n', changed: true, message: 'line added' },
  { name: 'insertbefore=BOF when the line exists further down: unchanged', before: 'a\nnew\n', spec: { line: 'new', insertbefore: 'BOF' }, after: 'a\nnew\n', changed: false },
  { name: 'insertbefore regexp: before the LAST match', before: 'a\nx\nb\nx\n', spec: { line: 'new', insertbefore: '^x' }, after: 'a\nx\nb\nnew\nx\n', changed: true },
  { name: 'pg_hba: insertbefore + firstmatch puts a rule before the first host line', before: HBA, spec: { regexp: r`^hostssl\s+all\s+all\s+10\.0\.0\.0/8\s`, line: 'hostssl all all 10.0.0.0/8 scram-sha-256', insertbefore: r`^host\s`, firstmatch: true }, after: '# TYPE DATABASE USER ADDRESS METHOD\nlocal all all peer\nhostssl all all 10.0.0.0/8 scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256\n', changed: true },
  { name: 'insertbefore regexp without match: EOF', before: 'a\n', spec: { line: 'new', insertbefore: '^zzz' }, after: 'a\nnew\n', changed: true },
  { name: 'insertbefore matching the first line: new first line', before: 'x\na\n', spec: { line: 'new', insertbefore: '^x' }, after: 'new\nx\na\n', changed: true },
  { name: 'regexp given and unmatched: insertbefore honoured', before: 'a\nb\n', spec: { regexp: '^new', line: 'new', insertbefore: '^b' }, after: 'a\nnew\nb\n', changed: true },

  // ---- backrefs ------------------------------------------------------------
  { name: 'backrefs: \\g<1> and \\2 positional groups', before: 'shared_buffers = 128MB\t# min 128kB\n', spec: { regexp: r`^(shared_buffers\s*=\s*)\S+(.*)$`, line: r`\g<1>256MB\2`, backrefs: true }, after: 'shared_buffers = 256MB\t# min 128kB\n', changed: true, message: 'line replaced' },
  { name: 'backrefs: Python octal trap, \\1256MB is \\125 ("U") + "6MB"', before: 'shared_buffers = 128MB\n', spec: { regexp: r`^(shared_buffers\s*=\s*)\S+(.*)$`, line: r`\1256MB\2`, backrefs: true }, after: 'U6MB\n', changed: true },
  { name: 'backrefs: named groups (?P<key>...) and \\g<name>', before: 'port = 5432 # comment\n', spec: { regexp: r`^(?P<key>port)\s*=\s*\d+(?P<rest>.*)$`, line: r`\g<key> = 6432\g<rest>`, backrefs: true }, after: 'port = 6432 # comment\n', changed: true },
  { name: 'backrefs: no match leaves the file alone (no insertion)', before: 'a\n', spec: { regexp: '^port', line: 'port = 1', backrefs: true }, after: 'a\n', changed: false, message: '' },
  { name: 'backrefs: no match ignores insertbefore=BOF too', before: 'a\n', spec: { regexp: '^zzz(.*)', line: r`\1`, insertbefore: 'BOF', backrefs: true }, after: 'a\n', changed: false },
  { name: 'backrefs: last match replaced', before: 'host=a\nhost=b\n', spec: { regexp: '^(host=).*', line: r`\g<1>db1`, backrefs: true }, after: 'host=a\nhost=db1\n', changed: true },
  { name: 'backrefs + firstmatch: first match replaced', before: 'host=a\nhost=b\n', spec: { regexp: '^(host=).*', line: r`\g<1>db1`, backrefs: true, firstmatch: true }, after: 'host=db1\nhost=b\n', changed: true },
  { name: 'backrefs: \\g<0> is the whole match, \\t a tab', before: 'key=v\n', spec: { regexp: '^key=v$', line: r`\g<0>\t# managed`, backrefs: true }, after: 'key=v\t# managed\n', changed: true },
  { name: 'backrefs: an unmatched optional group expands to ""', before: 'ssl = off\n', spec: { regexp: r`^(#)?(ssl\s*=).*`, line: r`\1\2 on`, backrefs: true }, after: 'ssl = on\n', changed: true },
  { name: 'backrefs: \\\\ is one backslash', before: 'path = /data\n', spec: { regexp: '^(path = ).*', line: r`\1C:\\data`, backrefs: true }, after: 'path = C:\\data\n', changed: true },
  { name: 'backrefs: expanded line identical: unchanged', before: 'host=db1\n', spec: { regexp: '^(host=).*', line: r`\g<1>db1`, backrefs: true }, after: 'host=db1\n', changed: false },

  // ---- search_string ---------------------------------------------------------
  { name: 'search_string replaces the last line containing it', before: "listen_addresses = 'localhost'\n#port = 5432\n", spec: { search_string: 'listen_addresses', line: "listen_addresses = '*'" }, after: "listen_addresses = '*'\n#port = 5432\n", changed: true, message: 'line replaced' },
  { name: 'search_string is literal (dots are dots)', before: '127.0.0.1 localhost\n127x0x0x1 other\n', spec: { search_string: '127.0.0.1', line: '127.0.0.1 localhost db' }, after: '127.0.0.1 localhost db\n127x0x0x1 other\n', changed: true },
  { name: 'search_string without match: insertafter honoured', before: 'a\nb\n', spec: { search_string: 'zzz', line: 'zzz=1', insertafter: '^a' }, after: 'a\nzzz=1\nb\n', changed: true },
  { name: 'search_string + firstmatch', before: 'k=1\nk=2\n', spec: { search_string: 'k=', line: 'k=3', firstmatch: true }, after: 'k=3\nk=2\n', changed: true },
  { name: 'search_string not in line: duplicate-trap warning', before: '#max_connections = 100\n', spec: { search_string: '#max_connections', line: 'max_connections = 200' }, after: 'max_connections = 200\n', changed: true, warnings: [DUP] },

  // ---- empty regexp / search_string (ansible#29443) -------------------------
  { name: "regexp '' matches every line: the last line is replaced (+ Ansible warning)", before: 'a\nb\n', spec: { regexp: '', line: 'c' }, after: 'a\nc\n', changed: true, warnings: [EMPTY_RE] },
  { name: "search_string '' matches every line: the last line is replaced (+ Ansible warning)", before: 'a\nb\n', spec: { search_string: '', line: 'c' }, after: 'a\nc\n', changed: true, warnings: [EMPTY_SS] },
  { name: "regexp '' on an empty file: appended", before: '', spec: { regexp: '', line: 'c' }, after: 'c\n', changed: true, warnings: [EMPTY_RE] },

  // ---- CRLF ---------------------------------------------------------------------
  { name: 'DEVIATION CRLF: a replaced line keeps its CRLF (Ansible writes LF)', before: 'port = 5432\r\n#ssl = off\r\n', spec: { regexp: r`^#?ssl\s*=`, line: 'ssl = on' }, after: 'port = 5432\r\nssl = on\r\n', changed: true },
  { name: 'DEVIATION CRLF: exact line already present is unchanged (Ansible rewrites it as LF)', before: 'a\r\nb\r\n', spec: { line: 'b' }, after: 'a\r\nb\r\n', changed: false },
  { name: 'DEVIATION CRLF: appended line uses CRLF', before: 'a\r\nb\r\n', spec: { line: 'c' }, after: 'a\r\nb\r\nc\r\n', changed: true },
  { name: 'CRLF: unterminated last line gets CRLF before the appended line', before: 'a\r\nb', spec: { line: 'c' }, after: 'a\r\nb\r\nc\r\n', changed: true },
  { name: 'CRLF: Python $ does not match before \\r\\n, so the line is appended', before: 'ssl = off\r\n', spec: { regexp: '^ssl = off$', line: 'ssl = on' }, after: 'ssl = off\r\nssl = on\r\n', changed: true, warnings: [DUP] },
  { name: 'CRLF: backrefs group that captured the \\r (Python . matches \\r)', before: '#ssl = on\r\nport = 1\r\n', spec: { regexp: '^#(.*)$', line: r`\1`, backrefs: true }, after: 'ssl = on\r\nport = 1\r\n', changed: true },
  { name: 'CRLF: insertbefore regexp', before: 'a\r\nx\r\n', spec: { line: 'new', insertbefore: '^x' }, after: 'a\r\nnew\r\nx\r\n', changed: true },

  // ---- state=absent ---------------------------------------------------------------
  { name: 'absent: regexp removes ALL matching lines', before: '#ssl = off\nssl = on\nport = 1\nssl = off\n', spec: { state: 'absent', regexp: r`^#?ssl\s*=` }, after: 'port = 1\n', changed: true, message: '3 line(s) removed', found: 3 },
  { name: 'absent: exact line (LF and CRLF copies, not "a ")', before: 'a\nb\na \na\r\n', spec: { state: 'absent', line: 'a' }, after: 'b\na \n', changed: true, message: '2 line(s) removed', found: 2 },
  { name: 'absent: search_string removes pg_hba md5 rules', before: 'host all all 10.0.0.0/8 md5\nhost all all ::1/128 scram-sha-256\nlocal all all md5\n', spec: { state: 'absent', search_string: ' md5' }, after: 'host all all ::1/128 scram-sha-256\n', changed: true, found: 2 },
  { name: 'absent: nothing matches: unchanged', before: 'a\nb\n', spec: { state: 'absent', regexp: '^zzz' }, after: 'a\nb\n', changed: false, message: '', found: 0 },
  { name: 'absent: file not present', before: null, spec: { state: 'absent', line: 'a' }, after: '', changed: false, message: 'file not present' },
  { name: 'absent: regexp takes precedence, line is ignored', before: 'a\nb\n', spec: { state: 'absent', regexp: '^a', line: 'b' }, after: 'b\n', changed: true, found: 1 },
  { name: 'absent: unterminated last line', before: 'a\nb', spec: { state: 'absent', line: 'b' }, after: 'a\n', changed: true, found: 1 },
  { name: "absent: regexp '' removes every line (+ warning)", before: 'a\nb\n', spec: { state: 'absent', regexp: '' }, after: '', changed: true, found: 2, warnings: [EMPTY_RE] },
  { name: 'absent: no duplicate-trap warning for absent', before: 'x\n', spec: { state: 'absent', regexp: '^zzz', line: 'x' }, after: 'x\n', changed: false, found: 0 },
];

function fullSpec(s: Spec): LineInFileSpec {
  return { state: 'present', backrefs: false, firstmatch: false, ...s };
}

for (const c of cases) {
  test(c.name, () => {
    const spec = fullSpec(c.spec);
    assert.equal(validateSpec(spec), [], 'spec should be valid');
    const res = editLines(c.before, spec);
    assert.is(res.content, c.after, 'content');
    assert.is(res.changed, c.changed, 'changed');
    if (!c.changed && c.before !== null) assert.is(res.content, c.before, 'unchanged means identical content');
    if (c.message !== undefined) assert.is(res.message, c.message, 'message');
    if (c.found !== undefined) assert.is(res.found, c.found, 'found');
    const expected = c.warnings ?? [];
    assert.is(res.warnings.length, expected.length, `warnings: ${JSON.stringify(res.warnings)}`);
    expected.forEach((w, i) => assert.ok(res.warnings[i]?.includes(w), `warning ${i} should mention "${w}": ${res.warnings[i]}`));

    // Idempotency: applying the same spec to the result changes nothing.
    if (c.before !== null || spec.state === 'present') {
      const again = editLines(res.content, spec);
      assert.is(again.changed, false, 'second run must not change');
      assert.is(again.content, res.content, 'second run content');
    }
  });
}

// ---- validateSpec -------------------------------------------------------------

interface ValidationCase {
  name: string;
  spec: Spec;
  /** Substrings, one per expected error (exact count asserted). */
  errors: string[];
}

const validation: ValidationCase[] = [
  { name: 'valid present spec', spec: { regexp: '^ssl', line: 'ssl = on' }, errors: [] },
  { name: 'valid absent spec with only a line', spec: { state: 'absent', line: 'x' }, errors: [] },
  { name: 'present without line', spec: { regexp: '^ssl' }, errors: ['line is required with state=present'] },
  { name: 'backrefs without regexp', spec: { line: 'x', backrefs: true }, errors: ['regexp is required with backrefs=true'] },
  { name: 'insertafter with insertbefore', spec: { line: 'x', insertafter: 'EOF', insertbefore: 'BOF' }, errors: ['mutually exclusive: insertbefore|insertafter'] },
  { name: 'regexp with search_string', spec: { line: 'x', regexp: 'a', search_string: 'a' }, errors: ['mutually exclusive: regexp|search_string'] },
  { name: 'backrefs with search_string', spec: { line: 'x', search_string: 'a', backrefs: true }, errors: ['mutually exclusive: backrefs|search_string', 'regexp is required with backrefs=true'] },
  { name: 'absent without regexp/search_string/line', spec: { state: 'absent' }, errors: ['one of line, search_string, or regexp is required with state=absent'] },
  { name: 'invalid regexp names the regexp and the engine error', spec: { line: 'x', regexp: '^(ssl' }, errors: ["regexp: invalid regular expression '^(ssl': Invalid regular expression"] },
  { name: 'invalid regexp in absent state too', spec: { state: 'absent', regexp: '[a-' }, errors: ["invalid regular expression '[a-'"] },
  { name: 'invalid insertafter regexp', spec: { line: 'x', insertafter: '(' }, errors: ["insertafter: invalid regular expression '('"] },
  { name: 'invalid insertbefore regexp', spec: { line: 'x', insertbefore: 'a)' }, errors: ["insertbefore: invalid regular expression 'a)'"] },
  { name: 'insertafter=EOF / insertbefore=BOF are not regexps', spec: { line: 'x', insertafter: 'EOF' }, errors: [] },
  { name: 'backrefs: group reference beyond the regexp groups', spec: { regexp: '^(a)', line: r`\2`, backrefs: true }, errors: ['invalid group reference 2'] },
  { name: 'backrefs: \\12 is group 12, not group 1 + "2"', spec: { regexp: '^(a)', line: r`\12`, backrefs: true }, errors: ['invalid group reference 12'] },
  { name: 'backrefs: unknown group name', spec: { regexp: '^(?P<k>a)', line: r`\g<v>`, backrefs: true }, errors: ["unknown group name 'v'"] },
  { name: 'backrefs: bad escape of an ASCII letter', spec: { regexp: '^(a)', line: r`\1\d`, backrefs: true }, errors: ['bad escape \\d'] },
  { name: 'backrefs: trailing backslash', spec: { regexp: '^(a)', line: 'x\\', backrefs: true }, errors: ['bad escape (end of pattern)'] },
  { name: 'backrefs template not checked without backrefs', spec: { regexp: '^(a)', line: r`\2` }, errors: [] },
];

for (const v of validation) {
  test(`validateSpec: ${v.name}`, () => {
    const errors = validateSpec(fullSpec(v.spec));
    assert.is(errors.length, v.errors.length, `errors: ${JSON.stringify(errors)}`);
    v.errors.forEach((e, i) => assert.ok(errors[i]?.includes(e), `error ${i} should mention "${e}": ${errors[i]}`));
  });
}

test('editLines throws on an invalid spec', () => {
  assert.throws(() => editLines('a\n', fullSpec({ regexp: '^a' })), /line is required with state=present/);
});

test.run();
