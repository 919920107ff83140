// replication_tls against a fake host: a primary has nothing to change; a standby's primary_conninfo
// is rewritten to verify its upstream, behind a check of the upstream and a proof that it streams again.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { WriteAction } from '../../../src/lib/plan-types.js';
import { STANDBY_MEMO } from '../module-cases.js';
import { FakeTransport, type FakeHostSpec } from '../fake-host.js';
import { kinds, planCase, planModule, runVerify } from './plan.js';

test('on a primary: nothing, and no question asked of the host', async () => {
  const p = await planCase('replication_tls: a primary');
  assert.equal(p.changes, []);
  assert.equal(p.transport.log, []);
});

const AUTO = '/var/lib/postgresql/15/main/postgresql.auto.conf';
const standby = (conninfo: string) => ({
  files: { [AUTO]: { content: `# Do not edit\nprimary_conninfo = '${conninfo}'\n`, owner: 'postgres', group: 'postgres', mode: '600' } },
  answers: [
    {
      match: /psql/,
      stdin: /pg_stat_wal_receiver/,
      user: 'postgres',
      stdout: JSON.stringify({ in_recovery: true, conninfo, origin: 'configuration file', file: AUTO, line: 2, slot: '', wr: { pid: 99, status: 'streaming', conninfo }, replay: '0/1' }),
    },
    { match: /getent ahosts/, stdout: '10.0.0.11       STREAM pg1\n' },
  ],
});
const vars = { hostvars: { pg1: { ansible_host: '10.0.0.11' }, pg2: { ansible_host: '10.0.0.12' } } };

test('a standby with sslmode=prefer: verify upstream, write, apply, verify streaming (verify-full, the fleet CA)', async () => {
  const p = await planModule('replication_tls', { root_cert: '/keys/server/root.crt' }, standby('host=pg1 port=5432 user=replicator sslmode=prefer'), { memos: STANDBY_MEMO, vars, host: 'pg2' });
  assert.equal(kinds(p.changes), [['verify', 'write', 'exec', 'verify']]);
  assert.match(p.changes[0]!.summary, /^set primary_conninfo \(.*upstream pg1\): sslmode prefer → verify-full, sslrootcert → \/keys\/server\/root\.crt/);
  const w = p.changes[0]!.actions[1] as WriteAction;
  assert.is(w.path, AUTO);
  assert.match(w.content.toString(), /sslmode=verify-full/);
  assert.match(w.content.toString(), /sslrootcert=\/keys\/server\/root\.crt/);
});

test('already verify-full with the fleet CA: nothing', async () => {
  const p = await planModule('replication_tls', { root_cert: '/keys/server/root.crt' }, standby('host=pg1 port=5432 user=replicator sslmode=verify-full sslrootcert=/keys/server/root.crt'), { memos: STANDBY_MEMO, vars, host: 'pg2' });
  assert.equal(p.changes, []);
});

test('per-node CAs: left as it is, with a warning', async () => {
  const p = await planModule('replication_tls', { root_cert: '/keys/server/root.crt', ca: 'per_node' }, standby('host=pg1 sslmode=prefer'), { memos: STANDBY_MEMO, vars, host: 'pg2' });
  assert.equal(p.changes, []);
  assert.match(p.warnings.join(), /pgtls_ca=per_node/);
});


test('round trips: the standby query with its usual file, then the name lookup; the upstream check reads the CA and shakes hands at once', async () => {
  const base = standby('host=pg1 port=5432 user=replicator sslmode=prefer');
  const spec: FakeHostSpec = {
    files: { ...base.files, '/keys/server/root.crt': { content: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n', group: 'postgres' } },
    answers: [...base.answers, { match: /pgtls-verify-upstream/, stdout: 'Verify return code: 0 (ok)\npgtls-exit=0\n' }],
  };
  let trips = 0;
  const transport = new FakeTransport(spec);
  const run = transport.run.bind(transport);
  transport.run = (cmd, stdin, t) => (trips++, run(cmd, stdin, t));
  const p = await planModule('replication_tls', { root_cert: '/keys/server/root.crt' }, spec, { memos: STANDBY_MEMO, vars, host: 'pg2', transport });
  assert.equal(kinds(p.changes), [['verify', 'write', 'exec', 'verify']]);
  assert.is(trips, 2, 'standby query + postgresql.auto.conf, then getent');
  trips = 0;
  await runVerify(p.changes[0]!.actions[0], p.ctx);
  assert.is(trips, 1, 'root.crt and the handshake together');
});

test.run();
