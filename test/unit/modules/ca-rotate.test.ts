// ca_rotate: the rotation step is a controller-side action; planning writes nothing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync } from 'node:fs';
import type { LocalAction } from '../../../src/lib/plan-types.js';
import { controllerDir } from '../module-cases.js';
import { loadOrCreateCa } from '../../../src/ca/ca.js';
import { readRotation, viewRotation } from '../../../src/ca/rotation-store.js';
import { planModule } from './plan.js';
import { CaRun, caRunOf } from '../../../src/ca/ca-run.js';

/** This file's run: its CA cache and simulated rotations (one per run, never module-level in the product). */
const caRun = new CaRun();

test('begin: one conditional change holding a local action (run and simulate), nothing written by plan()', async () => {
  const dir = controllerDir();
  const { changes } = await planModule('ca_rotate', { step: 'begin', ca_dir: dir });
  assert.is(changes.length, 1);
  assert.ok(changes[0]!.conditional);
  const [a] = changes[0]!.actions as LocalAction[];
  assert.is(a!.kind, 'local');
  assert.is(a!.op, 'ca_rotate.step', 'a named controller operation with its data, no code');
  assert.equal(a!.params, { step: 'begin', dir, commonName: undefined, days: 3650, keyBits: 3072 });
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

test('--check simulates begin in memory for the tasks after it, in ITS run only (no process-wide state)', async () => {
  const dir = controllerDir();
  await loadOrCreateCa(caRun, { dir, commonName: 'pgtls CA', days: 30, keyBits: 2048, create: true });
  const dry = await planModule('ca_rotate', { step: 'begin', ca_dir: dir }, {}, { check: true, runId: 'check-run' });
  const r = await dry.session.apply(dry.changes[0]!.actions, dry.ctx);
  assert.match(String(r.outcome), /^would create a new CA "pgtls CA \d{4}-/);
  assert.ok(await viewRotation(caRunOf(dry.ctx.runState), dir), 'the --check run sees its simulated rotation');
  assert.is(await viewRotation(new CaRun(), dir), null, 'another run does not');
  assert.is(await readRotation(caRun, dir), null, 'nothing on disk');
});

test.run();
