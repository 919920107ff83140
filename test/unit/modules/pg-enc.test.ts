// pg_enc with the real executor on a fake host (its table tests are in ../pg-enc.test.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { WriteAction } from '../../../src/lib/plan-types.js';
import { actions, planCase } from './plan.js';

test('a new entry under the existing key: one redacted write of pool_passwd, the password nowhere', async () => {
  const { changes } = await planCase('pg_enc: a new entry');
  assert.is(changes.length, 1);
  assert.is(changes[0]!.diff?.kind, 'redacted');
  const [w] = actions(changes) as WriteAction[];
  assert.is(w!.path, '/etc/pgpool2/pool_passwd');
  assert.match(w!.content.toString(), /^webadmin:AES.*\napp:AES/);
  assert.not.ok(JSON.stringify(changes).includes('apppw'));
});

test.run();
