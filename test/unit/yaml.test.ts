import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import { ConfigError } from '../../src/lib/errors.js';
import * as assert from 'uvu/assert';
import { loadYaml, loadYamlFile, YamlSyntaxError, type YamlPath } from '../../src/config/yaml.js';

/** Joins lines with \n, so that the array index + 1 is the line number. */
const lines = (...l: string[]): string => `${l.join('\n')}\n`;

const INVENTORY = lines(
  '# pgtls inventory', //                            1
  '---', //                                          2
  'all:', //                                         3
  '  vars:', //                                      4
  '    ansible_user: postgres', //                   5
  '    pg_version: 16', //                           6
  '  children:', //                                  7
  '    postgres:', //                                8
  '      hosts:', //                                 9
  '        db1:', //                                10
  '          ansible_host: 10.0.0.1', //            11
  '          ansible_port: 2222', //                12
  '        db2:', //                                13
  '        db3: {ansible_host: 10.0.0.3,', //       14
  '              role: replica}', //                15
  '', //                                            16
  '    pgpool:', //                                 17
  '      hosts:', //                                18
  '        pool1:', //                              19
  '          ansible_host: 10.0.0.9 # the pool', // 20
);

const PLAYBOOK = lines(
  '- name: configure tls', //      1
  '  hosts: postgres', //          2
  '  become: true', //             3
  '  vars:', //                    4
  '    cert_dir: /etc/pg/tls', //  5
  '  tasks:', //                   6
  '    - name: x', //              7
  '      lineinfile:', //          8
  '        path: /a', //           9
  "        regexp: '^x'", //      10
  '        line: "x = 1"', //     11
  '', //                          12
  '    # a comment', //           13
  '    - name: script', //        14
  '      shell: |', //            15
  '        echo one', //          16
  '', //                          17
  '        echo two', //          18
  '      args: {chdir: /tmp}', // 19
  '    - name: folded', //        20
  '      debug:', //              21
  '        msg: >-', //           22
  '          long', //            23
  '          text', //            24
  '      tags: [tls,', //         25
  '             scram]', //       26
  '    - name: empty', //         27
  '      command:', //            28
  '    -', //                     29
  '    - last', //                30
);

const ANCHORS = lines(
  'defaults: &defaults', //        1
  '  port: 5432', //               2
  '  user: postgres', //           3
  'extra: &extra', //              4
  '  sslmode: require', //         5
  'hosts:', //                     6
  '  db1:', //                     7
  '    <<: *defaults', //          8
  '    host: 10.0.0.1', //         9
  '  db2:', //                    10
  '    <<: [*defaults, *extra]', // 11
  '    port: 6432', //            12
  '  db3: *defaults', //          13
  'list:', //                     14
  '  - &item first', //           15
  '  - *item', //                 16
  'inline:', //                   17
  '  <<: {a: 1}', //              18
  '  b: 2', //                    19
);

interface LineCase {
  name: string;
  yaml: string;
  path: YamlPath;
  line: number;
}

const lineCases: LineCase[] = [
  // inventory-shaped
  { name: 'inventory root (after comment and ---)', yaml: INVENTORY, path: [], line: 3 },
  { name: 'inventory top key', yaml: INVENTORY, path: ['all'], line: 3 },
  { name: 'inventory group var', yaml: INVENTORY, path: ['all', 'vars', 'pg_version'], line: 6 },
  { name: 'inventory host var', yaml: INVENTORY, path: ['all', 'children', 'postgres', 'hosts', 'db1', 'ansible_port'], line: 12 },
  { name: 'inventory null host', yaml: INVENTORY, path: ['all', 'children', 'postgres', 'hosts', 'db2'], line: 13 },
  { name: 'inventory field under null host -> host line', yaml: INVENTORY, path: ['all', 'children', 'postgres', 'hosts', 'db2', 'ansible_host'], line: 13 },
  { name: 'inventory flow mapping first key', yaml: INVENTORY, path: ['all', 'children', 'postgres', 'hosts', 'db3', 'ansible_host'], line: 14 },
  { name: 'inventory flow mapping key on continuation line', yaml: INVENTORY, path: ['all', 'children', 'postgres', 'hosts', 'db3', 'role'], line: 15 },
  { name: 'inventory after blank line', yaml: INVENTORY, path: ['all', 'children', 'pgpool'], line: 17 },
  { name: 'inventory value with trailing comment', yaml: INVENTORY, path: ['all', 'children', 'pgpool', 'hosts', 'pool1', 'ansible_host'], line: 20 },
  { name: 'inventory missing group -> parent key', yaml: INVENTORY, path: ['all', 'children', 'nope', 'hosts'], line: 7 },
  { name: 'inventory missing top key -> root', yaml: INVENTORY, path: ['nothere'], line: 3 },
  { name: 'inventory path through a scalar -> the scalar', yaml: INVENTORY, path: ['all', 'vars', 'ansible_user', 'x'], line: 5 },

  // playbook-shaped
  { name: 'playbook play', yaml: PLAYBOOK, path: [0], line: 1 },
  { name: 'playbook play key', yaml: PLAYBOOK, path: [0, 'hosts'], line: 2 },
  { name: 'playbook first task', yaml: PLAYBOOK, path: [0, 'tasks', 0], line: 7 },
  { name: 'playbook module arg', yaml: PLAYBOOK, path: [0, 'tasks', 0, 'lineinfile', 'regexp'], line: 10 },
  { name: 'playbook module arg (double quoted)', yaml: PLAYBOOK, path: [0, 'tasks', 0, 'lineinfile', 'line'], line: 11 },
  { name: 'playbook missing module arg -> module key', yaml: PLAYBOOK, path: [0, 'tasks', 0, 'lineinfile', 'state'], line: 8 },
  { name: 'playbook task after blank line and comment', yaml: PLAYBOOK, path: [0, 'tasks', 1], line: 14 },
  { name: 'playbook literal block key', yaml: PLAYBOOK, path: [0, 'tasks', 1, 'shell'], line: 15 },
  { name: 'playbook key after literal block with blank line', yaml: PLAYBOOK, path: [0, 'tasks', 1, 'args'], line: 19 },
  { name: 'playbook flow mapping value', yaml: PLAYBOOK, path: [0, 'tasks', 1, 'args', 'chdir'], line: 19 },
  { name: 'playbook string index', yaml: PLAYBOOK, path: [0, 'tasks', '1', 'shell'], line: 15 },
  { name: 'playbook folded block key', yaml: PLAYBOOK, path: [0, 'tasks', 2, 'debug', 'msg'], line: 22 },
  { name: 'playbook flow sequence item 0', yaml: PLAYBOOK, path: [0, 'tasks', 2, 'tags', 0], line: 25 },
  { name: 'playbook flow sequence item on next line', yaml: PLAYBOOK, path: [0, 'tasks', 2, 'tags', 1], line: 26 },
  { name: 'playbook null module', yaml: PLAYBOOK, path: [0, 'tasks', 3, 'command'], line: 28 },
  { name: 'playbook under null module -> module key', yaml: PLAYBOOK, path: [0, 'tasks', 3, 'command', 'cmd'], line: 28 },
  { name: 'playbook empty sequence item -> nearest ancestor (tasks)', yaml: PLAYBOOK, path: [0, 'tasks', 4], line: 6 },
  { name: 'playbook item after an empty item', yaml: PLAYBOOK, path: [0, 'tasks', 5], line: 30 },
  { name: 'playbook index out of range -> sequence key', yaml: PLAYBOOK, path: [0, 'tasks', 99, 'name'], line: 6 },
  { name: 'playbook non-numeric index -> sequence key', yaml: PLAYBOOK, path: [0, 'tasks', 'x'], line: 6 },
  { name: 'playbook missing play -> root', yaml: PLAYBOOK, path: [3], line: 1 },

  // anchors, aliases and merge keys
  { name: 'anchored mapping key', yaml: ANCHORS, path: ['defaults'], line: 1 },
  { name: 'merged key -> where it is written', yaml: ANCHORS, path: ['hosts', 'db1', 'port'], line: 2 },
  { name: 'own key next to a merge', yaml: ANCHORS, path: ['hosts', 'db1', 'host'], line: 9 },
  { name: 'explicit key overrides merged one', yaml: ANCHORS, path: ['hosts', 'db2', 'port'], line: 12 },
  { name: 'key from second merge source', yaml: ANCHORS, path: ['hosts', 'db2', 'sslmode'], line: 5 },
  { name: 'key from first merge source', yaml: ANCHORS, path: ['hosts', 'db2', 'user'], line: 3 },
  { name: 'alias value -> line of the alias', yaml: ANCHORS, path: ['hosts', 'db3'], line: 13 },
  { name: 'path through an alias -> line in the anchored node', yaml: ANCHORS, path: ['hosts', 'db3', 'user'], line: 3 },
  { name: 'missing key under merge -> mapping key', yaml: ANCHORS, path: ['hosts', 'db1', 'nope'], line: 7 },
  { name: 'anchored sequence item', yaml: ANCHORS, path: ['list', 0], line: 15 },
  { name: 'alias sequence item', yaml: ANCHORS, path: ['list', 1], line: 16 },
  { name: 'merge of an inline flow mapping', yaml: ANCHORS, path: ['inline', 'a'], line: 18 },
  { name: 'the << key itself is not a field', yaml: ANCHORS, path: ['inline', '<<'], line: 17 },

  // assorted constructs
  { name: 'flow root over several lines', yaml: '{a: 1,\n b: [x,\n  {c: 2}]}\n', path: ['b', 1, 'c'], line: 3 },
  { name: 'null value followed by a key', yaml: 'a:\nb: 1\n', path: ['b'], line: 2 },
  { name: 'tab after colon', yaml: 'a:\t1\nb:\t2\n', path: ['b'], line: 2 },
  { name: 'quoted key with space', yaml: 'x: 0\n"a b": 1\n', path: ['a b'], line: 2 },
  { name: 'single-quoted key', yaml: "x: 0\n'k': 1\n", path: ['k'], line: 2 },
  { name: 'numeric key, numeric path element', yaml: 'ports:\n  5432: pg\n  9999: pool\n', path: ['ports', 9999], line: 3 },
  { name: 'float key normalised like js-yaml (1.0 -> "1")', yaml: 'a: 0\n1.0: x\n', path: ['1'], line: 2 },
  { name: 'boolean and null keys', yaml: 'true: 1\n~: 2\n', path: ['null'], line: 2 },
  { name: 'CRLF line endings', yaml: 'a: 1\r\nb:\r\n  c: 2\r\n', path: ['b', 'c'], line: 3 },
  { name: 'byte order mark', yaml: '\uFEFFa: 1\nb: 2\n', path: ['b'], line: 2 },
  { name: 'explicit key', yaml: 'x: 1\n? k\n: v\n', path: ['k'], line: 2 },
  { name: 'anchor and tag before a key', yaml: 'x: 1\n&a k: 1\n!!str t: 2\n', path: ['t'], line: 3 },
  { name: 'literal block sequence item -> header line', yaml: 'l:\n  - |\n    text\n  - x\n', path: ['l', 0], line: 2 },
  { name: 'block scalar header with chomping/indent indicators', yaml: 'a: |+2\n   x\n\nb: 1\n', path: ['b'], line: 4 },
  { name: 'multi-line plain sequence item', yaml: '- foo\n  bar\n- baz\n', path: [1], line: 3 },
  { name: 'multi-line double-quoted value then key', yaml: 'a: "one\n  two"\nb: 1\n', path: ['b'], line: 3 },
  { name: 'nested sequence in sequence', yaml: '- - a\n  - b\n- - c\n', path: [1, 0], line: 3 },
  { name: 'sequence of mappings with nested sequences', yaml: 'x:\n- k:\n  - 1\n  - 2\n', path: ['x', 0, 'k', 1], line: 4 },
  { name: 'document start marker with content on the same line', yaml: '--- {a: 1,\n b: 2}\n', path: ['b'], line: 2 },
  { name: 'explicit document end marker', yaml: 'a: 1\nb: 2\n...\n', path: ['b'], line: 2 },
  { name: 'tagged value', yaml: 'a: 1\nb: !!str 123\n', path: ['b'], line: 2 },
  { name: 'comment-only lines between keys', yaml: '# c\na: 1\n  # indented comment\n\nb: 2\n', path: ['b'], line: 5 },
  { name: 'empty document', yaml: '', path: ['a', 'b'], line: 1 },
  { name: 'comments-only document', yaml: '# nothing\n\n# here\n', path: [], line: 1 },
  { name: 'document of a scalar', yaml: '\n\nhello\n', path: [], line: 3 },
];

for (const c of lineCases) {
  test(`lineOf: ${c.name}`, () => {
    const y = loadYaml(c.yaml, 'case.yml');
    assert.is(y.lineOf(c.path), c.line, `${JSON.stringify(c.path)} in:\n${c.yaml}`);
  });
}

test('lineOf: key names are normalised exactly like js-yaml does it', () => {
  const keys = [
    'null', 'Null', '~', 'true', 'TRUE', 'False', 'yes', 'no', 'on', 'off', 'y', 'NaN', 'nan', 'inf', '.inf', '-.Inf',
    '.nan', '0x1F', '0o17', '1e3', '012', '+1', '-1', '1_000', '1.50', 'abc', '_x', 'Key-With.dots', '"quoted"',
    "'single'", '"esc\\tape"', '!!str 12', '!!int "7"', '!!float 1', '!!null ""', '<<x', 'a b',
  ];
  for (const k of keys) {
    const y = loadYaml(`first: 0\n${k}: 1\n`, 'k.yml');
    const dataKeys = Object.keys(y.data as object);
    assert.is(dataKeys.length, 2, k);
    const key = dataKeys.find((d) => d !== 'first') ?? ''; // integer-like keys sort first in JS objects
    assert.is(y.lineOf([key]), 2, `key ${k} -> ${JSON.stringify(key)}`);
  }
});

test('data: playbook values (block scalars, nulls, flow)', () => {
  const d = loadYaml(PLAYBOOK, 'p.yml').data as Array<{ tasks: Array<Record<string, unknown>> }>;
  const tasks = d[0]?.tasks ?? [];
  assert.equal(tasks[0]?.lineinfile, { path: '/a', regexp: '^x', line: 'x = 1' });
  assert.is(tasks[1]?.shell, 'echo one\n\necho two\n');
  assert.equal(tasks[1]?.args, { chdir: '/tmp' });
  assert.equal(tasks[2]?.debug, { msg: 'long text' });
  assert.equal(tasks[2]?.tags, ['tls', 'scram']);
  assert.is(tasks[3]?.command, null);
  assert.is(tasks[4], null);
  assert.is(tasks[5], 'last');
});

test('data: merge keys, aliases, explicit override', () => {
  const d = loadYaml(ANCHORS, 'a.yml').data as Record<string, Record<string, unknown>>;
  assert.equal(d.hosts?.db1, { port: 5432, user: 'postgres', host: '10.0.0.1' });
  assert.equal(d.hosts?.db2, { port: 6432, user: 'postgres', sslmode: 'require' });
  assert.equal(d.hosts?.db3, { port: 5432, user: 'postgres' });
  assert.equal(d.list, ['first', 'first']);
  assert.equal(d.inline, { a: 1, b: 2 });
});

test('data: core schema (yes/no stay strings) and file name kept', () => {
  const y = loadYaml('a: yes\nb: true\nc: 0644\nd: ~\n', 'x.yml');
  assert.is(y.file, 'x.yml');
  assert.equal(y.data, { a: 'yes', b: true, c: 644, d: null });
});

test('data: empty and comments-only documents are null', () => {
  assert.is(loadYaml('', 'e.yml').data, null);
  assert.is(loadYaml('# only\n', 'e.yml').data, null);
  assert.is(loadYaml('---\n', 'e.yml').data, null);
});

interface ErrorCase {
  name: string;
  yaml: string;
  line: number;
  column?: number;
  reason?: RegExp;
}

const errorCases: ErrorCase[] = [
  { name: 'duplicate top-level key', yaml: 'a: 1\nb: 2\na: 3\n', line: 3, column: 1, reason: /duplicated mapping key/ },
  { name: 'duplicate nested key', yaml: 'hosts:\n  db1:\n    port: 1\n    port: 2\n', line: 4, column: 5, reason: /duplicated mapping key/ },
  { name: 'duplicate key in flow mapping', yaml: 'x: 0\ny: {a: 1, a: 2}\n', line: 2, column: 11, reason: /duplicated mapping key/ },
  { name: 'duplicate key with CRLF', yaml: 'a: 1\r\nb: 2\r\na: 3\r\n', line: 3, column: 1, reason: /duplicated mapping key/ },
  { name: 'tab in indentation', yaml: 'a:\n\tb: 1\n', line: 2, column: 1, reason: /tab/ },
  { name: 'tab-indented sequence entry', yaml: 'a:\n  - 1\n\t- 2\n', line: 3, column: 1 },
  { name: 'bad indentation of a mapping entry', yaml: 'x: 1\n  y: 2\n', line: 2, column: 4, reason: /bad indentation/ },
  { name: 'key and value on one line twice', yaml: 'a: b: c\n', line: 1, column: 5 },
  { name: 'sequence then mapping at root', yaml: '- a\nb: 1\n', line: 2, column: 1 },
  { name: 'unknown alias', yaml: 'a: 1\nb: *nope\n', line: 2, column: 5, reason: /unidentified alias "nope"/ },
  { name: 'unclosed flow sequence', yaml: 'a: [1, 2\nb: 3\n', line: 2 },
  { name: 'unclosed double quote', yaml: 'a: "x\n', line: 2 },
  { name: 'bad explicit tag value', yaml: 'a: 1\nkey: !!int abc\n', line: 2, column: 6, reason: /cannot resolve/ },
  { name: 'unknown tag', yaml: 'a: !!frob x\n', line: 1, reason: /unknown/ },
  { name: 'second document', yaml: 'a: 1\n---\nb: 2\n', line: 2, column: 1, reason: /single YAML document/ },
  { name: 'second document after explicit first', yaml: '---\na: 1\n---\nb: 2\n', line: 3, reason: /found 2/ },
  { name: 'trailing empty document', yaml: 'a: 1\n---\n', line: 2, reason: /single YAML document/ },
  { name: 'merge of a scalar', yaml: 'x: 0\ny:\n  <<: 1\n', line: 3, column: 3, reason: /merge/ },
];

for (const c of errorCases) {
  test(`syntax error: ${c.name}`, () => {
    try {
      loadYaml(c.yaml, 'bad.yml');
    } catch (e) {
      assert.instance(e, YamlSyntaxError);
      const err = e as YamlSyntaxError;
      assert.is(err.file, 'bad.yml');
      assert.is(err.line, c.line, `line of ${JSON.stringify(c.yaml)}: ${err.message}`);
      if (c.column !== undefined) assert.is(err.column, c.column, `column: ${err.message}`);
      if (c.reason) assert.match(err.reason, c.reason);
      assert.ok(err.message.startsWith(`bad.yml:${err.line}:${err.column}: `), err.message);
      assert.not.match(err.message, /\n/, 'no code snippet in the message');
      return;
    }
    assert.unreachable(`should have thrown for ${JSON.stringify(c.yaml)}`);
  });
}

test('loadYamlFile: reads a file and names it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgtls-yaml-'));
  try {
    const f = join(dir, 'inv.yml');
    writeFileSync(f, INVENTORY);
    const y = loadYamlFile(f);
    assert.is(y.file, f);
    assert.is(y.lineOf(['all', 'vars', 'ansible_user']), 5);
    writeFileSync(f, 'a: 1\na: 2\n');
    try {
      loadYamlFile(f);
      assert.unreachable('should throw');
    } catch (e) {
      // loadYamlFile turns syntax errors into bad input (exit 2) naming file and line.
      assert.instance(e, ConfigError);
      assert.equal((e as ConfigError).issues[0], { file: f, line: 2, message: 'YAML syntax error: duplicated mapping key' });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('loadYamlFile: missing file and directory name the path', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgtls-yaml-'));
  try {
    const missing = join(dir, 'nope.yml');
    assert.throws(() => loadYamlFile(missing), (e: Error) => e.message.includes(missing) && /no such file/.test(e.message));
    assert.throws(() => loadYamlFile(dir), (e: Error) => e.message.includes(dir));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
