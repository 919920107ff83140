// pgpool_restart against a fake host: change times (executor's overlay first) against the pid file's.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ExecAction } from '../../../src/lib/plan-types.js';
import { moduleCases } from '../module-cases.js';
import { kinds, planCase, planModule } from './plan.js';
import { modules } from '../../../src/modules/index.js';
import { plaintextToBackends } from '../../../src/modules/pgpool-service/backends.js';
import { fakeSession } from '../fake-host.js';

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

test('the backends\' logins it declares (from pgpool.conf as read) are the ones it asks: answered with the lock, in one round trip, the password never in argv', async () => {
  const conf = "ssl = on\nssl_cert = '/k/server.crt'\nssl_ca_cert = '/k/root.crt'\nbackend_hostname0 = 'pg1'\nbackend_port0 = 5432\nbackend_hostname1 = 'pg2'\nbackend_port1 = 5433\n";
  const vars = { pgtls_track_originals: false, pgtls_state_dir: '/var/lib/pgtls/state', pgtls_state_key_file: '/nonexistent/pgtls-test.state.key' };
  let asked = 0;
  const f = fakeSession(
    {
      files: { '/etc/pgpool2/pgpool.conf': conf },
      answers: [
        { match: /pgtls-(lock|unlock)\b/, stdout: '' },
        { match: /psql/, stdin: /^secret-pw$/, stdout: () => (asked++, '0\n') },
      ],
    },
    { vars },
  );
  const mod = modules.get('pgpool_restart')!;
  const args = mod.args.parse({ ...(base.args as object), verify: { host: 'pg3', user: 'webadmin', password: 'secret-pw' } });
  assert.equal(await mod.logins!(args, (p) => f.session.cachedFile(p)), [], 'pgpool.conf not read yet: nothing declared');
  const { content } = (await f.ctx.readFile('/etc/pgpool2/pgpool.conf'))!;
  const declared = await mod.logins!(args, (p) => f.session.cachedFile(p));
  assert.is(declared.length, 2);
  assert.ok(declared.every((l) => l.password.reveal() === 'secret-pw' && !l.cmd.text.includes('secret-pw')));
  f.session.expectQueries(declared.map((l) => ({ cmd: l.cmd, stdin: l.password })));
  await f.session.begin(vars, () => undefined);
  assert.is(asked, 2, 'both asked with the lock');
  const sent = f.transport.log.length;
  const login = { user: 'webadmin', password: declared[0]!.password, dbname: 'postgres', caFile: '/k/root.crt', psql: 'psql' };
  assert.equal(await plaintextToBackends(f.ctx, content.toString(), login), []);
  assert.is(f.transport.log.length, sent, 'the plan\'s logins were answered by what the lock asked');
  assert.is(asked, 2);
});

test.run();
