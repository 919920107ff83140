// fetch_client_certs against a fake host and a controller directory.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ExecAction } from '../../../src/lib/plan-types.js';
import { controllerDir } from '../module-cases.js';
import { createCA } from '../../../src/crypto/x509.js';
import { parseArgs, planCase, planModule } from './plan.js';
import { modules } from '../../../src/modules/index.js';

test('the files are not on the host (yet): a conditional change that reads them when applied', async () => {
  const p = await planCase('fetch_client_certs: files not on the host');
  assert.is(p.changes.length, 1);
  assert.ok(p.changes[0]!.conditional);
  assert.is((p.changes[0]!.actions[0] as ExecAction).user, 'postgres');
});

test('on the host and not on the controller: the read returns a local write (0700 dir, 0600 key), done by the executor', async () => {
  const dest = controllerDir();
  const files = { '/keys/client/client.crt': 'not a cert', '/keys/client/client.key': 'KEY', '/keys/client/root.crt': 'CA' };
  try {
    await planModule('fetch_client_certs', { dest, keys_dir: '/keys', owner: 'postgres' }, { files });
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /client\/client\.crt is not a readable certificate/);
  }
  assert.not.ok(existsSync(join(dest, 'pg1')), 'planning wrote nothing');
  // on the host: the read (a command as the owner), then the task planned again with what it printed
  const { certPem } = await createCA({ commonName: 'webadmin', keyBits: 2048 });
  const onHost = { '/keys/client/client.crt': certPem, '/keys/client/client.key': 'KEY', '/keys/client/root.crt': 'CA' };
  const frame = (t: string) => `${Buffer.byteLength(t)}\n${t}`;
  const args = { dest, keys_dir: '/keys', owner: 'postgres' };
  // the lock's and journal's scripts by name ($0, after the script text, which may mention the others)
  const writePath = { match: /' pgtls-(lock|unlock|rollback|prepare|record)\b/, stdout: '' };
  const vars = { pgtls_track_originals: false, pgtls_state_key_file: '/nonexistent/pgtls-test.state.key' };
  const p = await planModule(
    'fetch_client_certs',
    args,
    { files: onHost, answers: [writePath, { match: /pgtls-cat/, stdout: frame(certPem) + frame('KEY') + frame('CA') }] },
    { vars },
  );
  assert.ok(p.changes[0]!.replan);
  const read = p.changes[0]!.actions[0] as ExecAction;
  assert.is(read.output, 'fetch_client_certs.files');
  await p.session.apply(p.changes[0]!.actions, p.ctx);
  assert.not.ok(existsSync(join(dest, 'pg1')), 'the read wrote nothing');
  const again = await modules.get('fetch_client_certs')!.plan(p.ctx, parseArgs('fetch_client_certs', args));
  assert.equal(again.flatMap((c) => c.actions.map((a) => [a.kind, a.kind === 'local' ? a.op : ''])), [['local', 'fetch_client_certs.write']]);
  assert.not.ok(JSON.stringify(again).includes('KEY'), 'the key travels as a Secret: masked in any dump of the plan');
  await p.session.apply(again[0]!.actions, p.ctx);
  assert.is(readFileSync(join(dest, 'pg1', 'client.key'), 'utf8'), 'KEY');
  assert.is(statSync(join(dest, 'pg1', 'client.key')).mode & 0o777, 0o600);
  assert.is(statSync(join(dest, 'pg1')).mode & 0o777, 0o700);
  // a failed verify later on this host puts the controller's files back (here: there were none)
  await p.session.rollback();
  assert.not.ok(existsSync(join(dest, 'pg1', 'client.key')), 'journaled on the controller and rolled back');
});

test.run();
