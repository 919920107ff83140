// plaintext_sessions against a fake host.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ExecAction } from '../../../src/lib/plan-types.js';
import { PG_MEMO } from '../module-cases.js';
import { planCase, planModule } from './plan.js';

test('no plaintext client session: nothing', async () => {
  const p = await planCase('plaintext_sessions: no plaintext');
  assert.equal(p.changes, []);
  assert.ok(p.transport.log.some((l) => /psql/.test(l.cmd) && /pg_stat_ssl/.test(l.stdin)), 'asked the server itself');
});

const session = { pid: 31, client_addr: '10.0.0.50', usename: 'app', application_name: 'psql', ssl: false, backend_type: 'client backend', backend_start: '2026-12-01 10:00:00+00' };
const answers = (ssl: string, rules: unknown[]) => [
  { match: /psql/, stdin: /pg_hba_file_rules/, stdout: JSON.stringify({ ssl, rules }), user: 'postgres' },
  { match: /psql/, stdin: /pg_stat_ssl/, stdout: JSON.stringify([session]), user: 'postgres' },
];

test('a plaintext session without terminate: warned about, nothing ended', async () => {
  const p = await planModule('plaintext_sessions', {}, { answers: answers('on', []) }, { memos: PG_MEMO });
  assert.equal(p.changes, []);
  assert.match(p.warnings.join('\n'), /1 TCP client session without TLS .*10\.0\.0\.50 user app application_name psql/);
});

test('terminate with TLS required: one psql exec ending exactly that (pid, backend_start)', async () => {
  const p = await planModule('plaintext_sessions', { terminate: true }, { answers: answers('on', []) }, { memos: PG_MEMO });
  assert.is(p.changes.length, 1);
  const [e] = p.changes[0]!.actions as ExecAction[];
  assert.match(String(e!.stdin), /pg_terminate_backend.*\(31, '2026-12-01 10:00:00\+00'::timestamptz\)/s);
});

test('terminate while ssl is off: not ended (they would reconnect in plaintext)', async () => {
  const p = await planModule('plaintext_sessions', { terminate: true }, { answers: answers('off', []) }, { memos: PG_MEMO });
  assert.equal(p.changes, []);
  assert.match(p.warnings.join('\n'), /not ended: .*ssl is off/);
});

test.run();
