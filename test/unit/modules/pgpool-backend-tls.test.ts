// pgpool_backend_tls: a read-only verify of the backend's own session view.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { VerifyAction } from '../../../src/lib/plan-types.js';
import { PG_MEMO } from '../module-cases.js';
import { planCase, planModule, runVerify } from './plan.js';

test('no Pgpool-II hosts: nothing; with hosts: one verify-only, read-only change, no question at plan time', async () => {
  assert.equal((await planCase('pgpool_backend_tls: no Pgpool-II')).changes, []);
  const p = await planCase('pgpool_backend_tls: a read-only verify');
  assert.ok(p.changes[0]!.verifyOnly && (p.changes[0]!.actions[0] as VerifyAction).readOnly);
  assert.equal(p.transport.log, []);
});

test('the verify fails naming the plaintext sessions from the Pgpool-II host', async () => {
  const sessions = [{ pid: 1, client_addr: '10.0.0.13', usename: 'webadmin', application_name: '', ssl: false, backend_type: 'client backend' }];
  const p = await planModule(
    'pgpool_backend_tls',
    { pgpool_hosts: ['pg3'] },
    { answers: [{ match: /psql/, stdin: /pg_stat_ssl/, stdout: JSON.stringify(sessions), user: 'postgres' }] },
    { memos: PG_MEMO, vars: { hostvars: { pg3: { ansible_host: '10.0.0.13' } } } },
  );
  try {
    await runVerify(p.changes[0]!.actions[0], p.ctx);
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /1 of 1 session from Pgpool-II \(10\.0\.0\.13\) to this server run without TLS/);
  }
});

test.run();
