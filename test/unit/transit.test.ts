// Pure pieces of "encryption in transit": Pgpool-II's backends from pgpool.conf, the termination SQL
// (sessions named by pid AND backend_start), and the grouping of sessions in warnings.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describeSessions, type TcpSession } from '../../src/facts/sessions.js';
import { terminateSql } from '../../src/modules/plaintext-sessions/module.js';
import { pgpoolBackends } from '../../src/modules/pgpool-service/backends.js';

test('pgpool.conf backends: numbered hostname/port pairs, quotes, comments, default port, Unix sockets skipped', () => {
  const conf = [
    "backend_hostname0 = '10.0.0.1'",
    'backend_port0 = 5433',
    "#backend_hostname9 = 'commented'",
    "backend_hostname1 = 'db2.example' # the standby",
    "backend_hostname2 = '/var/run/postgresql'",
    'backend_port2 = 5432',
    "backend_hostname10='10.0.0.10'",
    'backend_port10 = 6000',
  ].join('\n');
  assert.equal(pgpoolBackends(conf), [
    { host: '10.0.0.1', port: 5433 },
    { host: 'db2.example', port: 5432 },
    { host: '10.0.0.10', port: 6000 },
  ]);
  assert.equal(pgpoolBackends(''), []);
});

const s = (pid: number, over: Partial<TcpSession> = {}): TcpSession => ({
  pid,
  client_addr: '10.0.0.5',
  usename: 'app',
  application_name: 'web',
  backend_type: 'client backend',
  backend_start: '2026-12-01 10:00:00.123456+00',
  ssl: false,
  ...over,
});

test('termination SQL: each session by pid and backend_start, still TCP without TLS; quotes doubled', () => {
  const sql = terminateSql([s(11), s(12, { backend_start: "2026-12-01 10:00:01+00'; drop table x; --" })]);
  assert.match(sql, /\(a\.pid, a\.backend_start\) in \(values \(11, '2026-12-01 10:00:00\.123456\+00'::timestamptz\), \(12, '2026-12-01 10:00:01\+00''; drop table x; --'::timestamptz\)\)/);
  assert.match(sql, /a\.client_addr is not null and not l\.ssl and a\.backend_type = 'client backend'/);
  assert.match(sql, /count\(pg_terminate_backend\(a\.pid\)\)/);
});

test('sessions grouped by address, user and application_name, with counts', () => {
  assert.is(
    describeSessions([s(1), s(2), s(3, { usename: 'ops', application_name: '' }), s(4, { client_addr: '::1' })]),
    '2× 10.0.0.5 user app application_name web; 1× 10.0.0.5 user ops; 1× ::1 user app application_name web',
  );
});

test.run();
