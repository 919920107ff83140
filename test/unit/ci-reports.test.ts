/**
 * CI outputs: the JUnit XML validated by a real XSD validator (the JDK's javax.xml.validation)
 * against the JUnit format's schema, the --json report against schemas/report.schema.json, both
 * written at exit 2 too, and GitHub Actions annotations for bad input.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunReport } from '../../src/core/runner.js';
import { Secret } from '../../src/lib/secret.js';
import { githubAnnotations } from '../../src/report/annotations.js';
import { jsonReport } from '../../src/report/json.js';
import { junitForIssues, junitReport } from '../../src/report/junit.js';
import { validate } from './json-schema.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'pgtls-ci-'));
const reportSchema = JSON.parse(readFileSync(join(ROOT, 'schemas', 'report.schema.json'), 'utf8'));

/** Validates XML files against the JUnit XSD with the JDK (single-file source launch). */
function validateJunit(...files: string[]): void {
  const r = spawnSync('java', [join(ROOT, 'test', 'fixtures', 'ValidateXml.java'), join(ROOT, 'test', 'fixtures', 'junit.xsd'), ...files], { encoding: 'utf8', timeout: 120_000 });
  if (r.error) throw r.error; // no JDK: the test fails, it does not pass quietly
  assert.is(r.status, 0, r.stdout + r.stderr);
}

const task = (over: Partial<RunReport['hosts'][string]['tasks'][number]>) => ({
  task: 'a task', module: 'lineinfile', status: 'ok' as const, changed: false, summaries: [], diffs: [], warnings: [], durationMs: 12, play: 'Play A', ...over,
});
const RUN: RunReport = {
  playbook: 'install.yaml',
  inventory: 'inv.ini',
  check: false,
  startedAt: '2026-12-01T10:00:00.000Z',
  durationMs: 1234,
  interrupted: false,
  warnings: ['a warning'],
  hosts: {
    db1: {
      recap: { ok: 2, changed: 1, unreachable: 0, failed: 1, skipped: 1 },
      status: 'failed',
      message: 'boom',
      tasks: [
        task({ task: 'ssl on', status: 'changed', changed: true, summaries: ['line changed'] }),
        task({ task: 'skip me', status: 'skipped', summaries: ['condition false'] }),
        task({ task: 'other play task', play: 'Play B' }),
        task({ task: 'reload & verify <ssl>', status: 'failed', error: `reload failed: "quotes" & <tags> ${new Secret('pw')}`, module: 'restart' }),
      ],
    },
    db2: { recap: { ok: 0, changed: 0, unreachable: 1, failed: 0, skipped: 0 }, status: 'unreachable', message: 'timed out connecting', tasks: [] },
  },
};

test('--check --json: planned actions per host and task (kind, path, description, a hash and length), valid against the schema', async () => {
  const { applyPlan } = await import('../../src/core/apply-plan.js');
  const ctx = {} as Parameters<typeof applyPlan>[2];
  const applied = await applyPlan(
    async () => [
      { summary: 'set ssl = on in postgresql.conf', actions: [{ kind: 'write', path: '/etc/pg.conf', content: Buffer.from('ssl = on\npassword = hunter2\n'), mode: '640' }] },
      { summary: 'reload PostgreSQL', actions: [{ kind: 'exec', description: 'systemctl reload postgresql', cmd: { text: 'systemctl reload postgresql' } as never, stdin: new Secret('hunter2') }] },
    ],
    async () => ({}),
    ctx,
    true,
  );
  const run: RunReport = { ...RUN, check: true, hosts: { db1: { recap: RUN.hosts.db1!.recap, status: 'ok', tasks: [task({ status: 'changed', changed: true, summaries: applied.summaries, planned: applied.planned })] } } };
  const j = JSON.parse(JSON.stringify(jsonReport(run)));
  assert.equal(validate(reportSchema, j), []);
  const planned = j.hosts.db1.tasks[0].planned;
  assert.equal(planned.map((p: { kind: string; path?: string }) => [p.kind, p.path]), [['write', '/etc/pg.conf'], ['exec', undefined]]);
  assert.is(planned[0].bytes, 28);
  assert.equal(j.hosts.db1.tasks[0].summaries, ['would set ssl = on in postgresql.conf', 'would reload PostgreSQL']);
  const text = JSON.stringify(j);
  assert.not.ok(text.includes('hunter2') || text.includes('ssl = on\\n'), 'no content, no secret');
});

test('JUnit: a suite per play and host, a case per task, failures with the message; valid against the JUnit XSD', () => {
  const xml = junitReport(RUN);
  const file = join(dir, 'run.xml');
  writeFileSync(file, xml);
  validateJunit(file);
  assert.match(xml, /<testsuite name="Play A @ db1"[^>]* tests="3" failures="1" errors="0" skipped="1"/);
  assert.match(xml, /<testsuite name="Play B @ db1"[^>]* tests="1"/);
  assert.match(xml, /<testsuite name="install.yaml @ db2"[^>]* errors="1"/);
  assert.match(xml, /<failure message="reload failed: &quot;quotes&quot; &amp; &lt;tags&gt; \*\*\*\*\*\*\*\*" type="restart">/);
  assert.match(xml, /<testsuites name="pgtls" tests="5" failures="1" errors="1" skipped="1"/);
});

test('JUnit for bad input: one failing case per problem; valid', () => {
  const file = join(dir, 'bad.xml');
  writeFileSync(file, junitForIssues([{ file: 'inv.yml', line: 3, field: 'all.hostz', message: 'Unrecognized key' }, { file: 'command line', message: 'expected exactly one PLAYBOOK' }], 'x'));
  validateJunit(file);
  assert.match(readFileSync(file, 'utf8'), /<failure message="inv.yml:3: all.hostz: Unrecognized key"/);
});

test('the JSON report of a run matches schemas/report.schema.json and masks secrets', () => {
  const j = JSON.parse(JSON.stringify(jsonReport(RUN)));
  assert.equal(validate(reportSchema, j), []);
  assert.is(j.exitCode, 1);
  assert.not.match(JSON.stringify(j), /"pw"|reload failed: "quotes" & <tags> pw/);
});

test('GitHub annotations: ::error with file and line, escaped', () => {
  const [a, b] = githubAnnotations([
    { file: 'group_vars/all.yml', line: 4, field: 'x', message: '100% wrong, really:\nyes' },
    { file: 'command line', message: 'expected exactly one PLAYBOOK' },
  ]);
  assert.is(a, '::error file=group_vars/all.yml,line=4,title=pgtls%3A bad input (x)::100%25 wrong, really:%0Ayes');
  assert.is(b, '::error title=pgtls%3A bad input::command line: expected exactly one PLAYBOOK');
});

function cli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'pgtls.js'), ...args], { cwd: dir, encoding: 'utf8', env: { ...process.env, CI: 'true', NO_COLOR: '1', GITHUB_ACTIONS: '', ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('bad input (exit 2): the --json report and the --junit file are written, errors with file and line; annotations under GitHub Actions', () => {
  writeFileSync(join(dir, 'inv.yml'), 'all:\n  hosts:\n    db1: {}\n  hostz: {}\n');
  const json = join(dir, 'bad.json');
  const junit = join(dir, 'bad-run.xml');
  const r = cli(['run', 'install.yaml', '-i', 'inv.yml', '--json', json, '--junit', junit], { GITHUB_ACTIONS: 'true' });
  assert.is(r.code, 2, r.err);
  const report = JSON.parse(readFileSync(json, 'utf8'));
  assert.equal(validate(reportSchema, report), []);
  assert.is(report.exitCode, 2);
  assert.equal(report.errors[0], { file: 'inv.yml', line: 4, field: 'all.hostz', message: report.errors[0].message });
  assert.match(r.out, /^::error file=inv.yml,line=4,title=pgtls%3A bad input \(all.hostz\)::/m);
  validateJunit(junit);
});

test('a command-line error (no playbook) is bad input with a JSON report too', () => {
  const json = join(dir, 'cmd.json');
  const r = cli(['run', '-i', 'inv.yml', '--json', json]);
  assert.is(r.code, 2);
  assert.is(JSON.parse(readFileSync(json, 'utf8')).errors[0].file, 'command line');
});

test('--syntax-check writes a JSON report with exit 0; --list-tasks and --list-tags contact nothing', () => {
  writeFileSync(join(dir, 'ok.ini'), '[postgres]\ndb1 ansible_host=192.0.2.1 webadmin_password=x\n\n[pgpool]\n');
  writeFileSync(join(dir, 'pw.txt'), 'x');
  const json = join(dir, 'ok.json');
  const r = cli(['run', 'install.yaml', '-i', 'ok.ini', '--syntax-check', '--json', json], { PGTLS_WEBADMIN_PASSWORD: 'x' });
  assert.is(r.code, 0, r.err);
  const report = JSON.parse(readFileSync(json, 'utf8'));
  assert.equal(validate(reportSchema, report), []);
  const tasks = cli(['run', 'install.yaml', '-i', 'ok.ini', '--list-tasks', '--tags', 'certs']);
  assert.is(tasks.code, 0, tasks.err);
  assert.match(tasks.out, /Issue CA-signed server and client certificates\tTAGS: \[gencert, certs\]/);
  assert.not.match(tasks.out, /pg_hba/);
  const tags = cli(['run', 'install.yaml', '-i', 'ok.ini', '--list-tags']);
  assert.match(tags.out, /TASK TAGS: \[.*certs.*\]/);
});

test.run();
