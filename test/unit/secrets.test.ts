// Issue 9 point 4: secrets are tainted where they enter (inventory, -e, !secret, pgtls_secret_vars,
// lookup('env')), stay secret through templates, and never show in diffs, warnings, errors, JSON or logs.
// Every table row failed on the code before the change (plain strings until a module schema said so).
import { MapRunState } from '../../src/core/run-state.js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { prepare } from '../../src/core/runner.js';
import { ConfigError } from '../../src/lib/errors.js';
import { silentReporter } from '../../src/core/reporter.js';
import { Secret, redactKnown } from '../../src/lib/secret.js';
import { hostVars } from '../../src/core/vars.js';
import type { Change, FileState, PlanContext } from '../../src/lib/plan-types.js';
import { openPrivateAppend, writePrivateFile, OutputFileError } from '../../src/lib/private-file.js';
import { modules } from '../../src/modules/index.js';
import { lineinfile } from '../../src/modules/lineinfile/module.js';
import { SecretOnCommandLineError, sh } from '../../src/lib/sh.js';
import { renderDiff } from '../../src/report/diff.js';
import { jsonReport } from '../../src/report/json.js';
import { maskPasswordLines, safeText } from '../../src/report/sanitize.js';
import { renderString, renderValue } from '../../src/template/render.js';
import { templateContext } from '../../src/core/vars.js';
import { tempFiles } from './helpers.js';

const PW = `pw'with "q" $HOME sp`;

const INVENTORY = `all:
  vars:
    ansible_user: root
    webadmin_password: ${JSON.stringify(PW)}
    pgtls_users:
      - { name: app, password: ${JSON.stringify(`app-${PW}`)} }
    marked: !secret ${JSON.stringify(`tagged-${PW}`)}
    db_conninfo: ${JSON.stringify(`host=x password=listed-${PW}`)}
    pgtls_secret_vars: [db_conninfo]
    env_pw: "{{ lookup('env', 'PGTLS_TEST_DB_PASSWORD') }}"
    env_by_name: "{{ lookup('env', 'PGTLS_TEST_API_SECRET') }}"
    conninfo_tpl: "user=w password={{ webadmin_password }}"
    pgpool_key_file: /var/lib/postgresql/.pgpoolkey
    pgtls_ca_passphrase_file: /etc/pgtls/pass
    ordinary: plain
  hosts:
    pg1: { ansible_host: 10.0.0.1 }
`;

function loaded(extra: string[] = []) {
  const { path } = tempFiles({ 'inv.yaml': INVENTORY, 'play.yaml': `- hosts: all\n  tasks: []\n` });
  process.env.PGTLS_TEST_DB_PASSWORD = `env-${PW}`;
  process.env.PGTLS_TEST_API_SECRET = `envname-${PW}`;
  const p = prepare({ modules, playbook: path('play.yaml'), inventory: path('inv.yaml'), extraVars: extra, check: false, forks: 1, tags: [], skipTags: [], reporter: silentReporter });
  return hostVars(p.inv, 'pg1', undefined, undefined, p.extra, undefined, false);
}

const render = (vars: Record<string, unknown>, tpl: string) => renderString(tpl, templateContext(vars));

// [what, template over the host's variables, the secret text it must hold]
const tainted: [string, string, string][] = [
  ['inventory: a *password* name', '{{ webadmin_password }}', PW],
  ['inventory: nested pgtls_users[].password', '{{ pgtls_users[0].password }}', `app-${PW}`],
  ['inventory: a !secret tag on any name', '{{ marked }}', `tagged-${PW}`],
  ['inventory: listed in pgtls_secret_vars', '{{ db_conninfo }}', `host=x password=listed-${PW}`],
  ["lookup('env') assigned to a secret-named variable", '{{ env_pw }}', `env-${PW}`],
  ["lookup('env') of a secret-named environment variable", '{{ env_by_name }}', `envname-${PW}`],
  ['a template embedding a secret', '{{ conninfo_tpl }}', `user=w password=${PW}`],
  ['a secret inside a larger string', 'x={{ webadmin_password }};', `x=${PW};`],
  ['a filter over a secret', '{{ webadmin_password | upper }}', PW.toUpperCase()],
  ['to_json of a list holding a secret', '{{ pgtls_users | to_json }}', JSON.stringify([{ name: 'app', password: `app-${PW}` }])],
];

for (const [what, tpl, text] of tainted) {
  test(`tainted at the source: ${what}`, () => {
    const out = render(loaded(), tpl);
    assert.instance(out, Secret, `${tpl} should be a Secret`);
    assert.is((out as Secret).reveal(), text);
    assert.is(String(out), Secret.MASK);
    assert.not.match(JSON.stringify({ out }), PW);
  });
}

test('-e: secret-named extra vars are secrets (key=value, JSON, @file with !secret)', () => {
  const { path } = tempFiles({ 'x.yaml': `other: !secret ${JSON.stringify(`file-${PW}`)}\n` });
  const vars = loaded([`db_password=e-pw`, JSON.stringify({ api_key: 'json-key' }), `@${path('x.yaml')}`]);
  for (const [name, text] of [['db_password', 'e-pw'], ['api_key', 'json-key'], ['other', `file-${PW}`]] as const) {
    assert.instance(vars[name], Secret, name);
    assert.is((vars[name] as Secret).reveal(), text);
  }
});

test('names that only look alike stay plain: *_file paths, the pgtls_secret_vars list itself, ordinary names', () => {
  const vars = loaded();
  for (const name of ['pgpool_key_file', 'pgtls_ca_passphrase_file', 'ordinary', 'ansible_user']) assert.type(vars[name], 'string', name);
  assert.equal(vars.pgtls_secret_vars, ['db_conninfo']);
});

// --- where secrets used to leak --------------------------------------------------------------------------

function fakeHost(files: Record<string, string>): { ctx: PlanContext; warnings: string[] } {
  const warnings: string[] = [];
  const ctx: PlanContext = {
    host: 'pg1',
    vars: {},
    facts: { hostname: 'pg1', fqdn: 'pg1', addresses: [], loginUser: 'root' },

    effectiveUser: 'root',
    output: () => undefined,
    runState: new MapRunState(),
    async readFile(path): Promise<FileState | null> {
      const f = files[path];
      return f === undefined ? null : { content: Buffer.from(f), mode: '640', owner: 'root', group: 'root' };
    },
    query: () => Promise.reject(new Error('no commands')),
    stat: () => Promise.reject(new Error('no commands')),
    memo: (_k, c) => c(),
    memoStable: (_k, c) => c(),
    warn: (m) => warnings.push(m),
  };
  return { ctx, warnings };
}

const diffText = (changes: Change[]) => changes.map((c) => (c.diff ? renderDiff(c.diff) : '')).join('\n');

test('lineinfile: a templated password line still works (content written), its diff and warnings are masked', async () => {
  const vars = loaded();
  const args = renderValue({ path: '/etc/app.conf', regexp: '^secret_line', line: 'password = {{ webadmin_password }}' }, templateContext(vars));
  const parsed = lineinfile.args.safeParse(args);
  assert.ok(parsed.success, 'a secret line is accepted');
  const { ctx, warnings } = fakeHost({ '/etc/app.conf': 'a = 1\npassword = old-one\n' });
  const changes = await lineinfile.plan(ctx, parsed.data!);
  const write = changes[0]!.actions[0]!;
  assert.is(write.kind, 'write');
  assert.ok((write as { content: Buffer }).content.toString().includes(`password = ${PW}\n`), 'the real line is written');
  const shown = diffText(changes) + warnings.join('\n') + changes.map((c) => c.summary).join('\n');
  assert.not.ok(shown.includes(PW), shown);
  assert.not.ok(shown.includes('old-one'), 'the old password line is masked too');
  assert.ok(warnings.some((w) => w.includes('does not match line')), 'the warning itself is still given');
});

test('shell: a templated secret on the command line is refused at validation (exit 2), without the value; stdin: works', () => {
  const inv = INVENTORY;
  const play = `- hosts: all\n  tasks:\n    - name: bad\n      shell: "echo {{ webadmin_password }} | chpasswd"\n    - name: good\n      shell:\n        cmd: "read -r PW; echo ok"\n        stdin: "{{ webadmin_password }}"\n`;
  const { path } = tempFiles({ 'inv.yaml': inv, 'play.yaml': play });
  try {
    prepare({ modules, playbook: path('play.yaml'), inventory: path('inv.yaml'), extraVars: [], check: false, forks: 1, tags: [], skipTags: [], reporter: silentReporter });
    assert.unreachable('should refuse');
  } catch (e) {
    assert.instance(e, ConfigError);
    const issues = (e as ConfigError).issues;
    assert.is(issues.length, 1, e instanceof Error ? e.message : '');
    assert.is(issues[0]!.line, 4);
    assert.match(issues[0]!.message, /secret.*stdin/);
    assert.not.ok((e as Error).message.includes(PW));
  }
});

test('any other module argument that cannot take a secret says so (not "expected string")', () => {
  const play = `- hosts: all\n  tasks:\n    - lineinfile: { path: "/etc/{{ webadmin_password }}", line: x }\n`;
  const { path } = tempFiles({ 'inv.yaml': INVENTORY, 'play.yaml': play });
  try {
    prepare({ modules, playbook: path('play.yaml'), inventory: path('inv.yaml'), extraVars: [], check: false, forks: 1, tags: [], skipTags: [], reporter: silentReporter });
    assert.unreachable('should refuse');
  } catch (e) {
    assert.instance(e, ConfigError);
    assert.match((e as Error).message, /path: holds a secret/);
    assert.not.ok((e as Error).message.includes(PW));
  }
});

// [template, variables] whose error message used to print the secret's text
const errorCases: [string, Record<string, unknown>][] = [
  ["{{ (pw ~ 'x') | int }}", { pw: new Secret('hunter2-int') }],
  ['{{ pw | int }}', { pw: new Secret('hunter2-int') }],
  ["{{ (pw | lower) | int }}", { pw: new Secret('HUNTER2-int') }],
];
for (const [tpl, vars] of errorCases) {
  test(`template error messages never print a secret: ${tpl}`, () => {
    try {
      renderString(tpl, templateContext(vars));
      assert.unreachable('should throw');
    } catch (e) {
      assert.match((e as Error).message, /secret value/);
      assert.not.match((e as Error).message, /hunter2/i);
    }
  });
}

test('sh refuses a secret with an error that never holds the value', () => {
  try {
    sh`echo ${new Secret(PW) as unknown as string}`;
    assert.unreachable('should throw');
  } catch (e) {
    assert.instance(e, SecretOnCommandLineError);
    assert.not.ok((e as Error).message.includes(PW));
  }
});

// [file content before, after] whose --diff context lines used to show passwords
const contextCases: [string, string, string, string[]][] = [
  ['pgpool.conf sr_check_password / health_check_password', "port = 9999\nsr_check_password = 'sr-secret-1'\nhealth_check_password = 'hc-secret-2'\nssl = off\n", "port = 9999\nsr_check_password = 'sr-secret-1'\nhealth_check_password = 'hc-secret-2'\nssl = on\n", ['sr-secret-1', 'hc-secret-2']],
  ['a commented password key', "#wd_authkey_password = 'cm-secret-3'\nssl = off\n", "#wd_authkey_password = 'cm-secret-3'\nssl = on\n", ['cm-secret-3']],
  ['primary_conninfo password=', "primary_conninfo = 'host=db1 user=repl password=ci-secret-4 sslmode=require'\nssl = off\n", "primary_conninfo = 'host=db1 user=repl password=ci-secret-4 sslmode=require'\nssl = on\n", ['ci-secret-4']],
  ['a doubled-quoted password in a postgresql.conf conninfo', "primary_conninfo = 'host=db1 password=''dq secret 6'' sslmode=require'\nssl = off\n", "primary_conninfo = 'host=db1 password=''dq secret 6'' sslmode=require'\nssl = on\n", ['dq secret 6']],
  ['a URI password', "uri = 'postgresql://repl:uri-secret-5@db1/x'\nssl = off\n", "uri = 'postgresql://repl:uri-secret-5@db1/x'\nssl = on\n", ['uri-secret-5']],
];
for (const [what, before, after, hidden] of contextCases) {
  test(`--diff masks password-looking context lines: ${what}`, () => {
    const text = renderDiff({ kind: 'file', path: '/etc/x.conf', before, after });
    assert.match(text, /\+ssl = on/, 'the change itself is shown');
    for (const h of hidden) assert.not.ok(text.includes(h), `${h} in:\n${text}`);
    assert.match(text, /\*\*\*\*\*\*\*\*/);
  });
}

test('--diff: a conninfo keeps its other keywords visible after the masked password', () => {
  const text = renderDiff({ kind: 'file', path: '/x', before: "primary_conninfo = 'host=a password=pw1 sslmode=require'\n", after: "primary_conninfo = 'host=a password=''p w'' sslmode=verify-full'\n" });
  assert.match(text, /-primary_conninfo = 'host=a password=\*{8} sslmode=require'/);
  assert.match(text, /\+primary_conninfo = 'host=a password=\*{8} sslmode=verify-full'/);
});

test('--diff keeps settings that only name a password method or file visible', () => {
  const text = renderDiff({ kind: 'file', path: '/etc/x.conf', before: "a = 1\n", after: "a = 1\npassword_encryption = 'scram-sha-256'\npool_passwd = 'pool_passwd'\n" });
  assert.match(text, /\+password_encryption = 'scram-sha-256'/);
  assert.match(text, /\+pool_passwd = 'pool_passwd'/);
});

test('masking is linear: a 200,000-character line is handled at once', () => {
  const line = ' '.repeat(200_000) + "password= '" + ' '.repeat(200_000);
  const t0 = process.hrtime.bigint();
  maskPasswordLines(line + '\n' + '#'.repeat(100_000) + '=' + ' '.repeat(100_000));
  assert.ok(Number(process.hrtime.bigint() - t0) / 1e6 < 2000);
});

test('the JSON report and the terminal sanitizer mask any secret text that reached them as a plain string', () => {
  const s = new Secret(`json-${PW}`);
  const leaked = `stderr: FATAL: password authentication failed for ${s.reveal()}`;
  const report = jsonReport({
    playbook: 'p', inventory: 'i', check: false, startedAt: '', durationMs: 1, interrupted: false, warnings: [leaked],
    hosts: { pg1: { recap: { ok: 0, changed: 0, unreachable: 0, failed: 1, skipped: 0 }, status: 'failed', message: leaked, tasks: [] } },
  });
  assert.not.ok(JSON.stringify(report).includes(PW));
  assert.not.ok(safeText(leaked).includes(PW));
  assert.ok(redactKnown(leaked).includes(Secret.MASK));
});

test('secretArgs is gone: the taint is the one mechanism', () => {
  for (const m of modules.values()) assert.not.ok('secretArgs' in m, m.name);
});

// --- local output files ----------------------------------------------------------------------------------

test('output files (--json, PGTLS_COMMAND_LOG) are 0600 and never written through a symlink', () => {
  const { dir } = tempFiles({ 'target': 'do not touch\n' });
  const json = join(dir, 'report.json');
  writePrivateFile(json, '{}\n');
  assert.is(statSync(json).mode & 0o777, 0o600);
  writePrivateFile(json, '{"again":1}\n');
  assert.is(readFileSync(json, 'utf8'), '{"again":1}\n');
  const log = join(dir, 'commands.log');
  writeFileSync(log, '', { mode: 0o644 });
  openPrivateAppend(log);
  assert.is(statSync(log).mode & 0o777, 0o600, 'an existing log is made 0600');
  for (const link of ['link.json', 'link.log']) {
    symlinkSync(join(dir, 'target'), join(dir, link));
    assert.throws(() => (link.endsWith('.json') ? writePrivateFile(join(dir, link), 'x') : openPrivateAppend(join(dir, link))), (e: unknown) => e instanceof OutputFileError);
  }
  assert.is(readFileSync(join(dir, 'target'), 'utf8'), 'do not touch\n');
});

test.run();

test('Secret.of: one secret of secret parts and plain text; only the secret parts are masked wherever they appear', () => {
  const pw = new Secret('of-test-password-1');
  const sql = 'SET standard_conforming_strings = on;\nselect rolname from pg_authid where rolname in (\'of_test_role\');\n';
  const stdin = Secret.of(pw, '\n', sql);
  assert.is(stdin.reveal(), `of-test-password-1\n${sql}`);
  assert.is(String(stdin), Secret.MASK);
  // the same SQL asked on its own (psql -c, as the server's OS user) is not a secret: logged and replayable as it is
  const alone = `psql -c '${sql}'`;
  assert.is(redactKnown(alone), alone);
  assert.is(redactKnown('echo of-test-password-1'), `echo ${Secret.MASK}`);
  // (a whole new Secret of the same text would have masked its lines)
  new Secret(`x\n${sql}`);
  assert.is.not(redactKnown(alone), alone);
});
