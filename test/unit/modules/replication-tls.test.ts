// replication_tls: a primary has no primary_conninfo to change.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { planCase } from './plan.js';

test('on a primary: nothing, and no question asked of the host', async () => {
  const p = await planCase('replication_tls: a primary');
  assert.equal(p.changes, []);
  assert.equal(p.transport.log, []);
});

test.run();
