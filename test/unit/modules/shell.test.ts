// shell against a fake host: creates/removes are asked of the executor (overlay first).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ExecAction } from '../../../src/lib/plan-types.js';
import { actions, planCase, planModule } from './plan.js';

test('no creates: one exec with the command line', async () => {
  const { changes } = await planCase('shell: runs without creates');
  assert.is(changes.length, 1);
  assert.is((actions(changes)[0] as ExecAction).cmd.text, 'echo hi');
});

test('creates exists on the host: nothing; missing: runs', async () => {
  assert.equal((await planCase('shell: creates exists')).changes, []);
  assert.is((await planCase('shell: creates missing')).changes.length, 1);
});

test('creates planned by an earlier task of this run counts (both modes ask the overlay)', async () => {
  const p = await planModule('lineinfile', { path: '/tmp/marker', line: 'x', create: true }, {}, { check: true });
  await p.session.apply(p.changes[0]!.actions, p.ctx);
  const changes = await (await import('../../../src/modules/index.js')).modules.get('shell')!.plan(p.ctx, { cmd: 'touch /tmp/marker', creates: '/tmp/marker' });
  assert.equal(changes, []);
});

test('removes missing: nothing', async () => {
  assert.equal((await planModule('shell', { cmd: 'rm /tmp/y', removes: '/tmp/y' })).changes, []);
});

test.run();
