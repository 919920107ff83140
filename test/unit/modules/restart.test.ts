// restart (pg-service) against a fake host: the same question in both modes (mtimes vs pg_conf_load_time,
// the executor's overlay first). The first case is issue 11's drift case.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ExecAction, VerifyAction } from '../../../src/lib/plan-types.js';
import { PG_MEMO, moduleCases, serverStateJson } from '../module-cases.js';
import { kinds, planCase, planModule } from './plan.js';

const CONF = '/etc/postgresql/15/main/postgresql.conf';
const HBA = '/etc/postgresql/15/main/pg_hba.conf';

test('postgresql.conf modified after the last reload: reload + verify + recover, in a real run AND in --check', async () => {
  for (const check of [false, true]) {
    const { changes } = await planCase('restart: postgresql.conf modified', { check });
    assert.equal(kinds(changes), [['exec', 'verify']]);
    assert.match(changes[0]!.summary, /^reload PostgreSQL \(.*\): \/etc\/postgresql\/15\/main\/postgresql\.conf changed since the last reload$/);
    const exec = changes[0]!.actions[0] as ExecAction;
    assert.is(exec.cmd.text, 'systemctl reload postgresql@15-main.service');
    assert.ok((changes[0]!.actions[1] as VerifyAction).recover);
  }
});

test('nothing newer than the last reload: nothing; whole-second stat counts the same second as newer', async () => {
  assert.equal((await planCase('restart: nothing changed')).changes, []);
  assert.is((await planCase('restart: old coreutils')).changes.length, 0, 'the fake prints nanoseconds: 2000 < 2000.5');
});

test('a file an earlier task of this --check run planned (overlay): changed, in the same words as on disk', async () => {
  const spec = {
    files: { [CONF]: { content: 'ssl = off\n', mtime: 1000 }, [HBA]: { content: 'x\n', mtime: 1000 } },
    answers: [{ match: /psql/, stdin: /pg_conf_load_time/, stdout: serverStateJson({ load: 2000 }), user: 'postgres' }],
  };
  const p = await planModule('restart', {}, spec, { check: true, memos: PG_MEMO });
  assert.equal(p.changes, []);
  await p.session.apply([{ kind: 'write', path: CONF, content: Buffer.from('ssl = on\n') }], p.ctx);
  const { modules } = await import('../../../src/modules/index.js');
  const after = await modules.get('restart')!.plan(p.ctx, modules.get('restart')!.args.parse({}));
  assert.match(after[0]!.summary, /postgresql\.conf changed since the last reload/);
});

test('an earlier task wrote postgresql.conf (held in a real run until the reload commits it): reload in both modes', async () => {
  const c = moduleCases().find((x) => x.name.startsWith('restart: an earlier task'))!;
  for (const check of [false, true]) {
    const p = await planModule('restart', c.args, c.host, { check, memos: c.memos, vars: c.vars });
    // plan after the earlier write, on the same executor
    await p.session.apply(c.before!, p.ctx);
    const { modules } = await import('../../../src/modules/index.js');
    const changes = await modules.get('restart')!.plan(p.ctx, modules.get('restart')!.args.parse({}));
    assert.match(changes[0]?.summary ?? '', /postgresql\.conf changed since the last reload/, `check=${check}`);
  }
});

test('state: restarted with a pending restart-only setting: restart; reloaded only warns', async () => {
  const spec = {
    files: { [CONF]: { content: 'a\n', mtime: 1000 }, [HBA]: { content: 'x\n', mtime: 1000 } },
    answers: [{ match: /psql/, stdin: /pg_conf_load_time/, stdout: serverStateJson({ load: 2000, pending: ['shared_buffers'] }), user: 'postgres' }],
  };
  const r = await planModule('restart', { state: 'restarted' }, spec, { memos: PG_MEMO });
  assert.match(r.changes[0]!.summary, /^restart PostgreSQL .*restart-only settings changed: shared_buffers/);
  const l = await planModule('restart', {}, spec, { memos: PG_MEMO });
  assert.equal(l.changes, []);
  assert.match(l.warnings.join(), /settings that need a restart to apply: shared_buffers/);
});


test('planned again later in the run: the files the last state named are asked with the state itself (one round trip); other files: asked after it', async () => {
  let files = [CONF, HBA];
  const spec = {
    files: { [CONF]: { content: 'a\n', mtime: 1000 }, [HBA]: { content: 'x\n', mtime: 1000 }, '/etc/extra.conf': { content: 'y\n', mtime: 3000 } },
    answers: [{ match: /psql/, stdin: /pg_conf_load_time/, stdout: () => JSON.stringify({ ...JSON.parse(serverStateJson({ load: 2000 })), files }), user: 'postgres' }],
  };
  const p = await planModule('restart', {}, spec, { memos: PG_MEMO });
  assert.equal(p.changes, [], 'nothing newer than the last load');
  const { modules } = await import('../../../src/modules/index.js');
  const restart = modules.get('restart')!;
  let trips = 0;
  const run = p.transport.run.bind(p.transport);
  p.transport.run = (cmd, stdin, t) => (trips++, run(cmd, stdin, t));
  assert.equal(await restart.plan(p.ctx, restart.args.parse({})), []);
  assert.is(trips, 1, 'the state and the stat of the files it named last time: one round trip');
  // the server now reads another file too: it is asked after the state (and judged: newer than the load)
  files = [CONF, HBA, '/etc/extra.conf'];
  trips = 0;
  const changes = await restart.plan(p.ctx, restart.args.parse({}));
  assert.is(trips, 2, 'the guess did not hold: the files asked again');
  assert.match(changes[0]?.summary ?? '', /\/etc\/extra\.conf changed since the last reload/);
});

test.run();
