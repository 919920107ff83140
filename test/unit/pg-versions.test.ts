// PostgreSQL 13–17 differences pgtls depends on: one row per major per function, from the release
// notes (only 15 runs here: these rows are how the other majors are covered).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  defaultMinTls,
  defaultPasswordEncryption,
  distributionDataDir,
  hasChannelBinding,
  hasDirectSslNegotiation,
  hbaRuleFileExpr,
  pgStatSslColumns,
  primaryConninfoApply,
  unsupportedMajor,
  walReceiverFlushColumn,
} from '../../src/facts/pg-versions.js';

const MAJORS = [12, 13, 14, 15, 16, 17, 18] as const;

const rows: { name: string; fn: (m: number) => unknown; want: Record<number, unknown> }[] = [
  // 16: include files in pg_hba.conf, pg_hba_file_rules gains file_name and rule_number
  { name: 'pg_hba_file_rules file column', fn: hbaRuleFileExpr, want: { 12: "current_setting('hba_file')", 13: "current_setting('hba_file')", 14: "current_setting('hba_file')", 15: "current_setting('hba_file')", 16: 'file_name', 17: 'file_name', 18: 'file_name' } },
  // 13: libpq channel_binding
  { name: 'channel_binding', fn: hasChannelBinding, want: { 12: false, 13: true, 14: true, 15: true, 16: true, 17: true, 18: true } },
  // 14: ssl_min_protocol_version default TLSv1.2 (12-13: TLSv1)
  { name: 'ssl_min_protocol_version default', fn: defaultMinTls, want: { 12: 'TLSv1', 13: 'TLSv1', 14: 'TLSv1.2', 15: 'TLSv1.2', 16: 'TLSv1.2', 17: 'TLSv1.2', 18: 'TLSv1.2' } },
  // 14: password_encryption defaults to scram-sha-256
  { name: 'password_encryption default', fn: defaultPasswordEncryption, want: { 12: 'md5', 13: 'md5', 14: 'scram-sha-256', 15: 'scram-sha-256', 16: 'scram-sha-256', 17: 'scram-sha-256', 18: 'scram-sha-256' } },
  // 14: pg_stat_ssl.compression removed
  { name: 'pg_stat_ssl has compression', fn: (m) => pgStatSslColumns(m).includes('compression'), want: { 12: true, 13: true, 14: false, 15: false, 16: false, 17: false, 18: false } },
  // 13: primary_conninfo reloadable (walreceiver restarts on reload)
  { name: 'primary_conninfo applies on', fn: primaryConninfoApply, want: { 12: 'restart', 13: 'reload', 14: 'reload', 15: 'reload', 16: 'reload', 17: 'reload', 18: 'reload' } },
  // 13: pg_stat_wal_receiver.received_lsn split into written_lsn / flushed_lsn
  { name: 'walreceiver flushed column', fn: walReceiverFlushColumn, want: { 12: 'received_lsn', 13: 'flushed_lsn', 14: 'flushed_lsn', 15: 'flushed_lsn', 16: 'flushed_lsn', 17: 'flushed_lsn', 18: 'flushed_lsn' } },
  // 17: sslnegotiation=direct
  { name: 'direct SSL negotiation', fn: hasDirectSslNegotiation, want: { 12: false, 13: false, 14: false, 15: false, 16: false, 17: true, 18: true } },
  { name: 'supported', fn: (m) => unsupportedMajor(m) === undefined, want: { 12: false, 13: true, 14: true, 15: true, 16: true, 17: true, 18: false } },
];

for (const r of rows) {
  test(r.name, () => {
    for (const m of MAJORS) assert.equal(r.fn(m), r.want[m], `${r.name} on PostgreSQL ${m}`);
  });
}

test('pg_stat_ssl columns keep their order', () => {
  assert.equal(pgStatSslColumns(13), ['pid', 'ssl', 'version', 'cipher', 'bits', 'compression', 'client_dn', 'client_serial', 'issuer_dn']);
  assert.equal(pgStatSslColumns(15), ['pid', 'ssl', 'version', 'cipher', 'bits', 'client_dn', 'client_serial', 'issuer_dn']);
});

test('distribution data directories', () => {
  assert.is(distributionDataDir('debian', 15), '/var/lib/postgresql/15/main');
  assert.is(distributionDataDir('rhel', 13), '/var/lib/pgsql/data');
  assert.is(distributionDataDir('pgdg', 16), '/var/lib/pgsql/16/data');
});

test.run();
