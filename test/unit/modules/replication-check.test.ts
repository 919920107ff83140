// replication_check: a read-only verify, run when applied (never in --check).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { VerifyAction } from '../../../src/lib/plan-types.js';
import { PG_MEMO } from '../module-cases.js';
import { planCase, planModule, runVerify } from './plan.js';

test('plans one verify-only, conditional change; planning asks the host nothing', async () => {
  const p = await planCase('replication_check');
  assert.is(p.changes.length, 1);
  assert.ok(p.changes[0]!.verifyOnly && p.changes[0]!.conditional);
  assert.ok((p.changes[0]!.actions[0] as VerifyAction).readOnly);
  assert.equal(p.transport.log, []);
});

test('the verify fails naming each plaintext walsender (wait_seconds 0)', async () => {
  const row = { pid: 7, app: 'pg2', addr: '10.0.0.12', state: 'streaming', ssl: false };
  const p = await planModule('replication_check', { wait_seconds: 0 }, { answers: [{ match: /psql/, stdin: /pg_stat_replication/, stdout: JSON.stringify([row]), user: 'postgres' }] }, { memos: PG_MEMO });
  try {
    await runVerify(p.changes[0]!.actions[0], p.ctx);
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /replication without TLS after 0s: pg2 from 10\.0\.0\.12/);
  }
});

test.run();
