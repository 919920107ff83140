// plaintext_sessions against a fake host.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { planCase } from './plan.js';

test('no plaintext client session: nothing', async () => {
  const p = await planCase('plaintext_sessions: no plaintext');
  assert.equal(p.changes, []);
  assert.ok(p.transport.log.some((l) => /psql/.test(l.cmd) && /pg_stat_ssl/.test(l.stdin)), 'asked the server itself');
});

test.run();
