// What a task's result keeps of a file change (issue 12, controller memory): hunks and counts instead
// of the file's text before and after, computed from the changed lines only. Checked against jsdiff's
// full-text patch (what --diff printed and the JSON report counted before) on real config files.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { createTwoFilesPatch } from 'diff';
import { taskDiff, sameDiff } from '../../src/lib/task-diff.js';
import { applyPlan } from '../../src/core/apply-plan.js';
import { diffStats, renderDiff } from '../../src/report/diff.js';
import type { Change, Diff, PlanContext } from '../../src/lib/plan-types.js';

/** What renderDiff printed before: jsdiff over both whole texts. */
const fullPatch = (path: string, before: string, after: string) => createTwoFilesPatch(`${path} (before)`, `${path} (after)`, before, after, '', '', { context: 3 });
const fullCounts = (before: string, after: string) => {
  const lines = createTwoFilesPatch('a', 'b', before, after, '', '', { context: 0 }).split('\n').slice(4);
  return { added: lines.filter((l) => l.startsWith('+')).length, removed: lines.filter((l) => l.startsWith('-')).length };
};

const sample = (p: string, fallback: string) => {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return fallback;
  }
};
const numbered = Array.from({ length: 400 }, (_, i) => `setting_${i} = ${i}  # comment ${i}`).join('\n') + '\n';
const PG = sample('/usr/share/postgresql/15/postgresql.conf.sample', numbered);
const POOL = sample('/usr/share/pgpool2/pgpool.conf', numbered.replace(/setting/g, 'pool'));

const lines = (t: string) => t.split('\n');
const edit = (t: string, f: (l: string[]) => void) => {
  const l = lines(t);
  f(l);
  return l.join('\n');
};
const mid = (t: string) => Math.floor(lines(t).length / 2);

const cases: [string, string, string][] = [
  ['one line replaced in the middle', PG, edit(PG, (l) => void (l[mid(PG)] = 'ssl = on'))],
  ['one line inserted after a comment', POOL, edit(POOL, (l) => void l.splice(mid(POOL), 0, "ssl_key = '/k/server.key'"))],
  ['one line removed', PG, edit(PG, (l) => void l.splice(10, 1))],
  ['the first line changed', PG, edit(PG, (l) => void (l[0] = '# changed'))],
  ['a line appended at the end', PG, PG + "password_encryption = 'scram-sha-256'\n"],
  ['the final newline removed', PG, PG.replace(/\n$/, '')],
  ['the final newline added', PG.replace(/\n$/, ''), PG],
  ['two changes far apart (two hunks)', POOL, edit(POOL, (l) => {
    l[5] = 'ssl = on';
    l[l.length - 10] = 'enable_pool_hba = on';
  })],
  ['two changes 4 lines apart (one hunk)', PG, edit(PG, (l) => {
    l[100] = 'a = 1';
    l[104] = 'b = 2';
  })],
  ['an empty file gets lines', '', 'a = 1\nb = 2\n'],
  ['a file emptied', 'a = 1\nb = 2\n', ''],
  ['a small file, every line changed', 'x\ny\n', 'p\nq\nr\n'],
  ['a change inside a run of equal lines', 'a\n\n\n\n\n\n\nb\n', 'a\n\n\n\nX\n\n\n\nb\n'],
  ['CRLF lines', 'a = 1\r\nb = 2\r\nc = 3\r\n', 'a = 1\r\nb = 3\r\nc = 3\r\n'],
  ['the same text', PG, PG],
];

for (const [what, before, after] of cases) {
  test(`task diff = the full-text patch: ${what}`, () => {
    const d: Diff = { kind: 'file', path: '/etc/x.conf', before, after };
    const t = taskDiff(d);
    assert.is(renderDiff(t), renderDiff(d));
    // no password-looking lines in these texts, so the rendering is jsdiff's full patch exactly
    if (!/password|passwd|secret/i.test(before + after)) assert.is(renderDiff(t), fullPatch('/etc/x.conf', before, after));
    assert.equal({ added: diffStats(t).added, removed: diffStats(t).removed }, fullCounts(before, after));
  });
}

test('random edits of a real config file: same patch as jsdiff over the whole texts, same counts', () => {
  let seed = 12;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  for (let i = 0; i < 60; i++) {
    const after = edit(POOL, (l) => {
      for (let k = 1 + rnd(4); k > 0; k--) {
        const at = rnd(l.length);
        const op = rnd(3);
        if (op === 0) l[at] = `edited_${i}_${k} = on`;
        else if (op === 1) l.splice(at, 0, `inserted_${i}_${k} = on`);
        else l.splice(at, 1);
      }
    });
    const t = taskDiff({ kind: 'file', path: '/p', before: POOL, after });
    assert.equal({ added: diffStats(t).added, removed: diffStats(t).removed }, fullCounts(POOL, after), `edit ${i}`);
    if (!/password|passwd|secret/i.test(POOL + after)) assert.is(renderDiff(t), fullPatch('/p', POOL, after), `edit ${i}`);
  }
});

test('a task diff keeps hunks, not the texts (a result lives until the run ends)', () => {
  const after = edit(POOL, (l) => void (l[mid(POOL)] = 'ssl = on'));
  const t = taskDiff({ kind: 'file', path: '/etc/pgpool2/pgpool.conf', before: POOL, after });
  assert.is(t.kind, 'patch');
  const size = JSON.stringify(t).length;
  assert.ok(size < 2000, `${size} bytes kept for a one-line change of a ${POOL.length}-byte file`);
});

test('a password whose only change is the secret: both lines shown masked, counted', () => {
  const before = "primary_conninfo = 'host=a password=old-secret-1 sslmode=require'\nport = 5432\n";
  const after = "primary_conninfo = 'host=a password=new-secret-2 sslmode=require'\nport = 5432\n";
  const t = taskDiff({ kind: 'file', path: '/x', before, after });
  const text = renderDiff(t);
  assert.not.ok(text.includes('old-secret-1') || text.includes('new-secret-2'), text);
  assert.match(text, /-primary_conninfo = 'host=a password=\*{8} sslmode=require'/);
  assert.match(text, /\+primary_conninfo = 'host=a password=\*{8} sslmode=require'/);
  assert.equal([diffStats(t).added, diffStats(t).removed], [1, 1]);
});

test('a redacted diff stays as it is', () => {
  const d: Diff = { kind: 'redacted', path: '/etc/pgpool2/pool_passwd', note: 'content is secret' };
  assert.equal(taskDiff(d), d);
  assert.equal(diffStats(taskDiff(d)), { path: '/etc/pgpool2/pool_passwd', added: 0, removed: 0, redacted: true });
});

test('sameDiff: the same change planned again is one diff; another text is another', () => {
  const a: Diff = { kind: 'file', path: '/x', before: 'a\n', after: 'b\n' };
  assert.ok(sameDiff(a, { ...a }));
  assert.not.ok(sameDiff(a, { ...a, after: 'c\n' }));
  assert.not.ok(sameDiff(a, { kind: 'redacted', path: '/x', note: 'n' }));
  assert.ok(sameDiff({ kind: 'redacted', path: '/x', note: 'n' }, { kind: 'redacted', path: '/x', note: 'n' }));
});

test('applyPlan reports a change planned again after its command ran once, as hunks', async () => {
  const diff: Diff = { kind: 'file', path: '/x', before: 'a\nb\n', after: 'a\nc\n' };
  const change = (): Change => ({ summary: 'edit /x', diff: { ...diff }, actions: [{ kind: 'write', path: '/x', content: Buffer.from('a\nc\n') }] });
  let planned = 0;
  const out = await applyPlan(
    async () => (planned++ === 0 ? [{ ...change(), replan: true }] : [change()]),
    async () => ({}),
    {} as PlanContext,
    false,
  );
  assert.is(out.diffs.length, 1);
  assert.is(out.diffs[0]!.kind, 'patch');
  assert.equal(diffStats(out.diffs[0]!), { path: '/x', added: 1, removed: 1, redacted: false });
});

test.run();
