// pg_hba against a fake host: password rules become hostssl scram-sha-256; a converged file: nothing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { WriteAction } from '../../../src/lib/plan-types.js';
import { PG_MEMO } from '../module-cases.js';
import { actions, planCase, planModule } from './plan.js';

const HBA = '/etc/postgresql/15/main/pg_hba.conf';

test('the server hba_file (pgServer fact) is rewritten: md5 rule -> hostssl scram, local peer kept', async () => {
  const { changes } = await planCase('pg_hba: password rules');
  const w = actions(changes).find((a): a is WriteAction => a.kind === 'write')!;
  assert.is(w.path, HBA);
  const text = w.content.toString();
  assert.match(text, /^local all postgres peer$/m);
  assert.match(text, /^hostssl\s+all\s+all\s+0\.0\.0\.0\/0\s+scram-sha-256$/m);
  assert.not.match(text, /\bmd5\b/);
});

test('planning the written file again: nothing (idempotent)', async () => {
  const first = await planCase('pg_hba: password rules');
  const w = actions(first.changes).find((a): a is WriteAction => a.kind === 'write')!;
  const again = await planModule('pg_hba', {}, { files: { [HBA]: w.content.toString() } }, { memos: PG_MEMO });
  assert.equal(again.changes, []);
});

test('no pg_hba.conf: the task fails naming it', async () => {
  try {
    await planModule('pg_hba', {}, {}, { memos: PG_MEMO });
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /pg_hba\.conf/);
  }
});

test.run();
