// pgpool_restart against a fake host: change times (executor's overlay first) against the pid file's.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ExecAction } from '../../../src/lib/plan-types.js';
import { moduleCases } from '../module-cases.js';
import { kinds, planCase, planModule } from './plan.js';

const base = moduleCases().find((c) => c.module === 'pgpool_restart')!;

test('pool_hba.conf changed after the start: restart (exec) then verify, with a recover restart', async () => {
  const { changes } = await planCase('pgpool_restart: pool_hba.conf changed');
  assert.equal(kinds(changes), [['exec', 'verify']]);
  assert.match(changes[0]!.summary, /^restart Pgpool-II via systemctl restart pgpool2\.service \(changed since it started: \/etc\/pgpool2\/pool_hba\.conf\)$/);
  assert.match((changes[0]!.actions[0] as ExecAction).cmd.text, /pgtls-pgpool-restart/);
});

test('nothing newer than the pid file and no verify: nothing', async () => {
  const files = { ...base.host.files!, '/etc/pgpool2/pool_hba.conf': { content: 'x\n', ctime: 1000 } };
  const { changes } = await planModule('pgpool_restart', base.args, { ...base.host, files });
  assert.equal(changes, []);
});

test('a file an earlier task of this --check run planned: changed, in the same words as on disk', async () => {
  const files = { ...base.host.files!, '/etc/pgpool2/pool_hba.conf': { content: 'x\n', ctime: 1000 } };
  const p = await planModule('pgpool_restart', base.args, { ...base.host, files }, { check: true });
  await p.session.apply([{ kind: 'write', path: '/etc/pgpool2/pool_hba.conf', content: Buffer.from('y\n') }], p.ctx);
  const { modules } = await import('../../../src/modules/index.js');
  const mod = modules.get('pgpool_restart')!;
  const after = await mod.plan(p.ctx, mod.args.parse(base.args));
  assert.match(after[0]!.summary, /changed since it started: \/etc\/pgpool2\/pool_hba\.conf/);
});

test('not running: restart; with verify and TLS files, a keepRollback pre-restart check comes first', async () => {
  const conf = "ssl = on\nssl_key = '/k/server.key'\nssl_cert = '/k/server.crt'\npool_passwd = 'pool_passwd'\n";
  const files = { ...base.host.files!, '/etc/pgpool2/pgpool.conf': { content: conf, ctime: 1000 } };
  const args = { ...(base.args as object), verify: { host: 'pg3', user: 'webadmin', password: 'pw' } };
  const { changes } = await planModule('pgpool_restart', args, { files, answers: [{ match: /pgtls-pgpool-state/, stdout: 'stopped\n', user: 'postgres' }] });
  assert.match(changes[0]!.summary, /it is not running/);
  const pre = changes[0]!.actions[0]!;
  assert.ok(pre.kind === 'verify' && pre.keepRollback && pre.description === 'Pgpool-II pre-restart check');
  assert.equal(kinds(changes), [['verify', 'exec', 'verify']]);
});

test.run();
