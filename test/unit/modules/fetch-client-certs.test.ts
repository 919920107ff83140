// fetch_client_certs against a fake host and a controller directory.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ExecAction } from '../../../src/lib/plan-types.js';
import { controllerDir } from '../module-cases.js';
import { createCA } from '../../../src/crypto/x509.js';
import { planCase, planModule } from './plan.js';

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
  // the read itself and the local write, fed what the host would print
  const p = await planModule('fetch_client_certs', { dest, keys_dir: '/nope', owner: 'postgres' }, {});
  const exec = p.changes[0]!.actions[0] as ExecAction;
  const { certPem } = await createCA({ commonName: 'webadmin', keyBits: 2048 });
  const frame = (t: string) => `${Buffer.byteLength(t)}\n${t}`;
  const follow = await exec.then!(Buffer.from(frame(certPem) + frame('KEY') + frame('CA')));
  assert.equal(follow.map((a) => a.kind), ['local']);
  await p.session.apply(follow, p.ctx);
  assert.is(readFileSync(join(dest, 'pg1', 'client.key'), 'utf8'), 'KEY');
  assert.is(statSync(join(dest, 'pg1', 'client.key')).mode & 0o777, 0o600);
  assert.is(statSync(join(dest, 'pg1')).mode & 0o777, 0o700);
});

test.run();
