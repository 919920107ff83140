// lineinfile against a fake host: facts in (the file), actions out (one whole-file write, or nothing).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { WriteAction } from '../../../src/lib/plan-types.js';
import { actions, planCase, planModule } from './plan.js';

test('a commented default is replaced in place: one write whose content is the diff after', async () => {
  const { changes } = await planCase('lineinfile: a missing line');
  assert.is(changes.length, 1);
  const [w] = actions(changes) as WriteAction[];
  assert.is(w!.kind, 'write');
  assert.is(w!.content.toString(), 'ssl = on\nport = 5432\n');
  assert.equal(changes[0]!.diff, { kind: 'file', path: '/etc/postgresql/15/main/postgresql.conf', before: '#ssl = off\nport = 5432\n', after: 'ssl = on\nport = 5432\n' });
});

test('the line already there: nothing', async () => {
  assert.equal((await planCase('lineinfile: a present line')).changes, []);
});

test('reads the overlay: a line an earlier task of this --check run wrote is seen', async () => {
  const path = '/etc/x.conf';
  const p = await planModule('lineinfile', { path, line: 'a = 1' }, { files: { [path]: 'b = 2\n' } }, { check: true });
  await p.session.apply(p.changes[0]!.actions, p.ctx);
  const again = await planModule('lineinfile', { path, line: 'a = 1' }, {}, { check: true, transport: p.transport });
  // a new session has a new overlay: the host itself is untouched
  assert.is(again.changes.length, 1);
  assert.is(p.transport.files.get(path)!.content.toString(), 'b = 2\n');
  assert.is((await p.ctx.readFile(path))!.content.toString(), 'b = 2\na = 1\n');
});

test('a missing file without create: the task fails', async () => {
  try {
    await planModule('lineinfile', { path: '/etc/none', line: 'x' });
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /\/etc\/none/);
  }
});

test.run();
