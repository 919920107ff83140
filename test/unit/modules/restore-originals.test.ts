// restore_originals against a fake host: what pgtls tracks in its state directory.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { planCase, planModule } from './plan.js';

test('nothing tracked on the host: nothing, after one look at the state directory', async () => {
  const p = await planCase('restore_originals: nothing tracked');
  assert.equal(p.changes, []);
  assert.ok(p.transport.log.some((l) => /pgtls-state-list/.test(l.cmd)));
});

test('a record on the host, but the key that signed it is missing on the controller: refused, nothing planned', async () => {
  const list = { match: /pgtls-state-list/, stdout: '/var/lib/pgtls/state/abc\0/etc/postgresql/15/main/pg_hba.conf\0' };
  try {
    await planModule('restore_originals', {}, { answers: [list] }, { vars: { pgtls_state_key_file: '/nonexistent/pgtls.state.key' } });
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /cannot verify the records pgtls keeps on pg1: the key that signed them, \/nonexistent\/pgtls\.state\.key, is missing/);
  }
});

test('paths / exclude_under select the records: none left, nothing asked beyond the list', async () => {
  const list = { match: /pgtls-state-list/, stdout: '/var/lib/pgtls/state/abc\0/etc/pgpool2/pool_hba.conf\0' };
  const p = await planModule('restore_originals', { exclude_under: ['/etc/pgpool2'] }, { answers: [list] }, { vars: { pgtls_state_key_file: '/nonexistent/k' } });
  assert.equal(p.changes, []);
  assert.is(p.transport.log.length, 1);
});

test.run();
