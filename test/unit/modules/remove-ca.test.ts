// remove_ca: a run-level step asked for first, then the host's leftover check.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { LocalAction } from '../../../src/lib/plan-types.js';
import { planCase } from './plan.js';

test('a CA on the controller: the shared removal step, then the check on the host', async () => {
  const p = await planCase('remove_ca: a CA on the controller');
  assert.equal(p.changes[0]!.actions.map((a) => a.kind), ['local', 'exec']);
  const l = p.changes[0]!.actions[0] as LocalAction;
  assert.ok(l.shared && l.shared.startsWith('/'), 'keyed by the CA directory');
});

test('two hosts planning the same shared CA both ask (no module-level claim): every outcome counts', async () => {
  const a = await planCase('remove_ca: a CA on the controller');
  const b = await planCase('remove_ca: a CA on the controller');
  assert.is(a.changes.length, 1);
  assert.is(b.changes.length, 1);
});

test('no CA: nothing', async () => {
  assert.equal((await planCase('remove_ca: no CA')).changes, []);
});

test.run();
