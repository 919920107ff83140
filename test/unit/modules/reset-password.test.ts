// reset_password: the verifier travels as a Secret on stdin; a standby waits in a read-only verify.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ExecAction, VerifyAction } from '../../../src/lib/plan-types.js';
import { Secret } from '../../../src/lib/secret.js';
import { PG_MEMO } from '../module-cases.js';
import { actions, planCase, planModule, runVerify } from './plan.js';

test('an md5 role: one psql exec, SQL as a Secret on stdin, nothing of it in the plan text', async () => {
  const { changes } = await planCase('reset_password: an md5 role');
  assert.is(changes.length, 1);
  assert.match(changes[0]!.summary, /^role webadmin: md5 password -> SCRAM-SHA-256$/);
  const [e] = actions(changes) as ExecAction[];
  assert.ok(e!.stdin instanceof Secret);
  assert.not.match(e!.cmd.text, /SCRAM|new-secret/);
  assert.not.ok(JSON.stringify(changes).includes('new-secret'));
});

test('several stale roles: ONE change and ONE psql session that sets each (one round trip), each role named', async () => {
  const md5 = 'md5' + 'a'.repeat(32);
  const { changes } = await planModule(
    'reset_password',
    { users: [{ name: 'webadmin', password: 'pw-one' }, { name: 'app', password: 'pw-two' }] },
    { answers: [{ match: /psql/, stdin: /pg_authid/, stdout: JSON.stringify([{ n: 'webadmin', p: md5 }, { n: 'app', p: null }]) }] },
    { memos: PG_MEMO },
  );
  assert.is(changes.length, 1);
  assert.is(changes[0]!.summary, 'role webadmin: md5 password -> SCRAM-SHA-256; role app: no password -> SCRAM-SHA-256');
  const execs = actions(changes) as ExecAction[];
  assert.is(execs.length, 1);
  const sql = (execs[0]!.stdin as Secret).reveal();
  assert.match(sql, /ALTER ROLE "webadmin" PASSWORD 'SCRAM-SHA-256\$[^']+';\nALTER ROLE "app" PASSWORD 'SCRAM-SHA-256\$[^']+';/);
  assert.not.ok(JSON.stringify(changes).includes('pw-one'));
  assert.not.match(execs[0]!.cmd.text, /SCRAM|pw-/);
});

test('the stored verifier already matches: nothing', async () => {
  const { buildScramVerifier } = await import('../../../src/crypto/scram.js');
  const v = buildScramVerifier('new-secret');
  const { changes } = await planModule('reset_password', { name: 'webadmin', password: 'new-secret' }, { answers: [{ match: /psql/, stdin: /pg_authid/, stdout: JSON.stringify([{ n: 'webadmin', p: v }]) }] }, { memos: PG_MEMO });
  assert.equal(changes, []);
});

test('a standby: a verify-only, read-only wait for replication that warns when the password has not arrived', async () => {
  const p = await planCase('reset_password: a standby');
  assert.is(p.changes.length, 1);
  assert.ok(p.changes[0]!.verifyOnly && p.changes[0]!.conditional);
  const v = p.changes[0]!.actions[0] as VerifyAction;
  assert.ok(v.readOnly);
  await runVerify(v, p.ctx);
  assert.match(p.warnings.join('\n'), /pg1 is a standby: webadmin did not \(yet\) get the new password from the primary/);
});

test('a role that does not exist: the task fails', async () => {
  try {
    await planModule('reset_password', { name: 'ghost', password: 'x' }, { answers: [{ match: /psql/, stdin: /pg_authid/, stdout: '[]' }] }, { memos: PG_MEMO });
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /role ghost does not exist on pg1/);
  }
});

test('a standby reads its roles only once the play\'s other hosts are done with the task (its primary set them); a primary does not wait', async () => {
  const { modules } = await import('../../../src/modules/index.js');
  const { STANDBY_MEMO } = await import('../module-cases.js');
  const mod = modules.get('reset_password')!;
  const args = mod.args.parse({ name: 'webadmin', password: 'new-secret' });
  for (const [memos, waits] of [[STANDBY_MEMO, true], [PG_MEMO, false]] as const) {
    const events: string[] = [];
    const p = await planModule('reset_password', { name: 'webadmin', password: 'new-secret' }, { answers: [{ match: /psql/, stdin: /pg_authid/, stdout: JSON.stringify([{ n: 'webadmin', p: 'md5' + 'a'.repeat(32) }]) }] }, { memos });
    const ctx = {
      ...p.ctx,
      peersDone: async () => void events.push('peers done'),
      query: (c: Parameters<typeof p.ctx.query>[0], o?: Parameters<typeof p.ctx.query>[1]) => (events.push('query'), p.ctx.query(c, o)),
    };
    await mod.plan(ctx, args);
    assert.equal(events, waits ? ['peers done', 'query'] : ['query'], JSON.stringify(events));
  }
});

test.run();
