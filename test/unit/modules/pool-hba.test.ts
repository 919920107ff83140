// pool_hba against a fake host.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { WriteAction } from '../../../src/lib/plan-types.js';
import { actions, planCase, planModule } from './plan.js';

test('an md5 rule becomes hostssl scram-sha-256 (one write of pool_hba.conf)', async () => {
  const { changes } = await planCase('pool_hba: md5 rule');
  const [w] = actions(changes) as WriteAction[];
  assert.is(w!.path, '/etc/pgpool2/pool_hba.conf');
  assert.match(w!.content.toString(), /^hostssl\s+all\s+all\s+0\.0\.0\.0\/0\s+scram-sha-256$/m);
});

test('the rewritten file planned again: nothing', async () => {
  const first = await planCase('pool_hba: md5 rule');
  const [w] = actions(first.changes) as WriteAction[];
  const again = await planModule('pool_hba', { path: '/etc/pgpool2/pool_hba.conf' }, { files: { '/etc/pgpool2/pool_hba.conf': w!.content.toString() } });
  assert.equal(again.changes, []);
});

test.run();
