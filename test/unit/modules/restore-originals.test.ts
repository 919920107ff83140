// restore_originals against a fake host: what pgtls tracks in its state directory.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { planCase } from './plan.js';

test('nothing tracked on the host: nothing, after one look at the state directory', async () => {
  const p = await planCase('restore_originals: nothing tracked');
  assert.equal(p.changes, []);
  assert.ok(p.transport.log.some((l) => /pgtls-state-list/.test(l.cmd)));
});

test.run();
