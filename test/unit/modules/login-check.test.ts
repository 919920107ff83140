// login_check: the login is tried when applied (a verify), never in --check.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { VerifyAction } from '../../../src/lib/plan-types.js';
import { planCase, planModule, runVerify } from './plan.js';
import { modules } from '../../../src/modules/index.js';

const ARGS = { host: '127.0.0.1', port: 9999, user: 'webadmin', password: 'hunter2-long', wait_seconds: 1 };

test('one verify-only change that keeps the rollback copies; planning asks nothing', async () => {
  const p = await planCase('login_check');
  const c = p.changes[0]!;
  assert.ok(c.verifyOnly && c.conditional);
  const v = c.actions[0] as VerifyAction;
  assert.ok(v.keepRollback);
  assert.equal(p.transport.log, []);
});

test('the check: a refused password fails at once (no retry), the password never in the message', async () => {
  const p = await planModule('login_check', ARGS, { answers: [{ match: /psql/, exitCode: 2, stderr: 'FATAL:  password authentication failed for user "webadmin" hunter2-long' }] });
  try {
    await runVerify(p.changes[0]!.actions[0], p.ctx);
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /^login as webadmin to 127\.0\.0\.1:9999 with sslmode=disable failed: .*password authentication failed/);
    assert.not.ok((e as Error).message.includes('hunter2-long'));
  }
  assert.is(p.transport.log.length, 1);
});

test('the check: no psql on the host warns and passes; a recover restart is planned with recover_pgpool', async () => {
  const p = await planModule('login_check', { ...ARGS, recover_pgpool: { service: { kind: 'systemd', unit: 'pgpool2' }, pid_file: '/run/pgpool.pid', port: 9999 } }, { answers: [{ match: /psql/, exitCode: 127 }] });
  const v = p.changes[0]!.actions[0] as VerifyAction;
  await runVerify(v, p.ctx);
  assert.match(p.warnings.join(), /cannot be run on pg1/);
  assert.is(v.recover?.description, 'restart Pgpool-II with the previous files');
});

test('the login it declares is the one its check makes: asked with the lock, the check then asks nothing', async () => {
  const vars = { pgtls_track_originals: false, pgtls_state_dir: '/var/lib/pgtls/state', pgtls_state_key_file: '/nonexistent/pgtls-test.state.key' };
  const p = await planModule('login_check', ARGS, { answers: [{ match: /pgtls-(lock|unlock)\b/, stdout: '' }, { match: /psql/, stdin: /^hunter2-long$/, stdout: '1\n' }] }, { vars });
  const mod = modules.get('login_check')!;
  const declared = await mod.logins!(mod.args.parse(ARGS), () => undefined);
  assert.is(declared.length, 1);
  p.session.expectQueries(declared.map((l) => ({ cmd: l.cmd, stdin: l.password })));
  await p.session.begin(vars, () => undefined);
  const sent = p.transport.log.length;
  await runVerify(p.changes[0]!.actions[0], p.ctx);
  assert.is(p.transport.log.length, sent);
});

test.run();
