// ca_rotate: the rotation step is a controller-side action; planning writes nothing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync } from 'node:fs';
import type { LocalAction } from '../../../src/core/types.js';
import { controllerDir } from '../module-cases.js';
import { planModule } from './plan.js';

test('begin: one conditional change holding a local action (run and simulate), nothing written by plan()', async () => {
  const dir = controllerDir();
  const { changes } = await planModule('ca_rotate', { step: 'begin', ca_dir: dir });
  assert.is(changes.length, 1);
  assert.ok(changes[0]!.conditional);
  const [a] = changes[0]!.actions as LocalAction[];
  assert.is(a!.kind, 'local');
  assert.ok(a!.simulate);
  assert.equal(readdirSync(dir), []);
});

test('begin without a CA: the step fails when run; --check says it would create one first', async () => {
  const dir = controllerDir();
  const real = await planModule('ca_rotate', { step: 'begin', ca_dir: dir });
  try {
    await real.session.apply(real.changes[0]!.actions, real.ctx);
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /no CA in .* to rotate: run install\.yaml first/);
  }
  const dry = await planModule('ca_rotate', { step: 'begin', ca_dir: dir }, {}, { check: true });
  const r = await dry.session.apply(dry.changes[0]!.actions, dry.ctx);
  assert.match(String(r.outcome), /^would create a CA in .*, then rotate it$/);
  assert.equal(readdirSync(dir), []);
});

test.run();
