/**
 * Fake hosts for every module of the registry (facts in): the drift harness (drift.test.ts) plans each
 * case with both executors and compares the plans; the module tests (test/unit/modules/*.test.ts) check
 * what each case plans (actions out). A case is data: files, command answers, memoised facts, arguments.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PgServer } from '../../src/facts/postgres.js';
import { encryptPoolPassword } from '../../src/crypto/pool-passwd.js';
import type { FakeHostSpec } from './fake-host.js';
import type { Action } from '../../src/lib/plan-types.js';

export interface ModuleCase {
  name: string;
  module: string;
  args: unknown;
  host: FakeHostSpec;
  memos?: Record<string, unknown>;
  vars?: Record<string, unknown>;
  /** What earlier tasks of the run did on this host (applied by the executor before planning). */
  before?: Action[];
}

export const PG: PgServer = {
  pid: 4242,
  binDir: '/usr/lib/postgresql/15/bin',
  version: 15,
  versionNum: 150004,
  configFile: '/etc/postgresql/15/main/postgresql.conf',
  hbaFile: '/etc/postgresql/15/main/pg_hba.conf',
  dataDirectory: '/var/lib/postgresql/15/main',
  port: 5432,
  socketDir: '/var/run/postgresql',
  listenAddresses: '*',
  osUser: 'postgres',
  osGroup: 'postgres',
  inRecovery: false,
  service: { kind: 'systemd', unit: 'postgresql@15-main.service' },
  login: { kind: 'os-user', osUser: 'postgres' },
};
export const PG_MEMO = { 'pgtls:pg-server': PG };
export const STANDBY_MEMO = { 'pgtls:pg-server': { ...PG, inRecovery: true } };

const CONF = '/etc/postgresql/15/main/postgresql.conf';
const HBA = '/etc/postgresql/15/main/pg_hba.conf';

/** pg_conf_load_time() etc. as the restart module's one psql round trip answers them. */
export function serverStateJson(o: { load: number; ssl?: boolean; pending?: string[] } = { load: 2000 }): string {
  return JSON.stringify({
    load: o.load,
    start: 500,
    ssl: o.ssl ? 'on' : 'off',
    cert: '',
    key: '',
    ca: '',
    crl: '',
    data: PG.dataDirectory,
    files: [CONF, HBA],
    pending: o.pending ?? [],
    hba_errors: [],
    conf_errors: [],
  });
}

const psqlAnswer = (stdin: RegExp, stdout: string) => ({ match: /psql/, stdin, stdout, user: 'postgres' });

/** A fresh controller directory (a CA directory, a destination for fetched certificates). */
export function controllerDir(files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'pgtls-cases-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text, { mode: 0o600 });
  }
  return dir;
}

const KEY = 'fake-pgpool-key';
const GOOD_PP = `webadmin:${encryptPoolPassword('pw', KEY)}\n`;
const PGPOOL_CONF = "ssl = off\npool_passwd = 'pool_passwd'\n";

/** Every module, at least one case each; the restart rows are the drift case of issue 11. */
export function moduleCases(): ModuleCase[] {
  const noCa = controllerDir();
  const withCa = controllerDir({ 'ca.key': 'k', 'ca.crt': 'c' });
  const certsDest = controllerDir();
  return [
    {
      name: 'lineinfile: a missing line is added',
      module: 'lineinfile',
      args: { path: CONF, regexp: '^#?ssl\\s*=', line: 'ssl = on' },
      host: { files: { [CONF]: "#ssl = off\nport = 5432\n" } },
    },
    {
      name: 'lineinfile: a present line is left',
      module: 'lineinfile',
      args: { path: CONF, regexp: '^#?ssl\\s*=', line: 'ssl = on' },
      host: { files: { [CONF]: 'ssl = on\n' } },
    },
    { name: 'shell: runs without creates', module: 'shell', args: { cmd: 'echo hi' }, host: {} },
    { name: 'shell: creates exists: nothing', module: 'shell', args: { cmd: 'touch /tmp/x', creates: '/tmp/x' }, host: { files: { '/tmp/x': '' } } },
    { name: 'shell: creates missing: runs', module: 'shell', args: { cmd: 'touch /tmp/x', creates: '/tmp/x' }, host: {} },
    {
      name: 'gencert: no CA yet: the host makes its keys (replan), then the CA is created (replan), then issue',
      module: 'gencert',
      args: { keys_dir: '/keys', ca_dir: noCa, owner: 'postgres', group: 'postgres', ca_key_bits: 2048 },
      host: {
        answers: [{ match: /pgtls-probe/, stdout: 'openssl=1\nabsent /keys/server/server.key\nabsent /keys/client/client.key\nabsent /keys\nabsent /keys/server\nabsent /keys/client\n' }],
      },
      vars: { ansible_host: '10.0.0.11' },
    },
    { name: 'ca_rotate: begin', module: 'ca_rotate', args: { step: 'begin', ca_dir: noCa }, host: {} },
    {
      name: 'reset_password: an md5 role gets a SCRAM verifier',
      module: 'reset_password',
      args: { name: 'webadmin', password: 'new-secret' },
      host: { answers: [psqlAnswer(/pg_authid/, JSON.stringify([{ n: 'webadmin', p: 'md5' + 'a'.repeat(32) }]))] },
      memos: PG_MEMO,
    },
    {
      name: 'reset_password: a standby waits for the primary (verify only)',
      module: 'reset_password',
      args: { name: 'webadmin', password: 'new-secret', replay_wait_seconds: 0 },
      host: { answers: [psqlAnswer(/pg_authid/, JSON.stringify([{ n: 'webadmin', p: 'md5' + 'a'.repeat(32) }]))] },
      memos: STANDBY_MEMO,
    },
    {
      name: 'pg_hba: password rules become hostssl scram',
      module: 'pg_hba',
      args: {},
      host: { files: { [HBA]: 'local all postgres peer\nhost all all 0.0.0.0/0 md5\n' } },
      memos: PG_MEMO,
    },
    {
      name: 'restart: postgresql.conf modified after the last reload, overlay equal to disk: reload (issue 11)',
      module: 'restart',
      args: {},
      host: { files: { [CONF]: { content: 'ssl = on\n', mtime: 3000 }, [HBA]: { content: 'x\n', mtime: 1000 } }, answers: [psqlAnswer(/pg_conf_load_time/, serverStateJson({ load: 2000 }))] },
      memos: PG_MEMO,
    },
    {
      name: 'restart: an earlier task of this run changed postgresql.conf (held in a real run, overlay in --check): reload',
      module: 'restart',
      args: {},
      host: {
        files: { [CONF]: { content: 'ssl = off\n', mtime: 1000 }, [HBA]: { content: 'x\n', mtime: 1000 } },
        answers: [psqlAnswer(/pg_conf_load_time/, serverStateJson({ load: 2000 })), { match: /pgtls-lock\b/, stdout: '' }],
      },
      memos: PG_MEMO,
      vars: { pgtls_track_originals: false, pgtls_state_key_file: '/nonexistent/pgtls-test.state.key' },
      before: [{ kind: 'write', path: CONF, content: Buffer.from('ssl = on\n') }],
    },
    {
      name: 'restart: nothing changed since the last reload: nothing',
      module: 'restart',
      args: {},
      host: { files: { [CONF]: { content: 'ssl = on\n', mtime: 1000 }, [HBA]: { content: 'x\n', mtime: 1000 } }, answers: [psqlAnswer(/pg_conf_load_time/, serverStateJson({ load: 2000 }))] },
      memos: PG_MEMO,
    },
    {
      name: 'restart: old coreutils (whole seconds): same second as the reload counts as newer',
      module: 'restart',
      args: {},
      host: {
        files: { [CONF]: { content: 'a\n', mtime: 2000 }, [HBA]: { content: 'x\n', mtime: 1000 } },
        answers: [psqlAnswer(/pg_conf_load_time/, serverStateJson({ load: 2000.5 }))],
      },
      memos: PG_MEMO,
    },
    { name: 'replication_tls: a primary: nothing', module: 'replication_tls', args: { root_cert: '/keys/server/root.crt' }, host: {}, memos: PG_MEMO },
    { name: 'replication_check: a read-only verify', module: 'replication_check', args: {}, host: {} },
    {
      name: 'pg_enc: a new entry under the existing key',
      module: 'pg_enc',
      args: { path: '/etc/pgpool2/pool_passwd', key_file: '/var/lib/postgresql/.pgpoolkey', users: [{ name: 'app', password: 'apppw' }] },
      host: { files: { '/etc/pgpool2/pool_passwd': GOOD_PP, '/var/lib/postgresql/.pgpoolkey': { content: KEY + '\n', mode: '600', owner: 'postgres', group: 'postgres' } } },
    },
    {
      name: 'pool_hba: md5 rule becomes hostssl scram',
      module: 'pool_hba',
      args: { path: '/etc/pgpool2/pool_hba.conf' },
      host: { files: { '/etc/pgpool2/pool_hba.conf': 'host all all 0.0.0.0/0 md5\n' } },
    },
    {
      name: 'pgpool_restart: pool_hba.conf changed after the start: restart',
      module: 'pgpool_restart',
      args: {
        service: { kind: 'systemd', unit: 'pgpool2.service' },
        conf_file: '/etc/pgpool2/pgpool.conf',
        hba_file: '/etc/pgpool2/pool_hba.conf',
        key_file: '/var/lib/postgresql/.pgpoolkey',
        pid_file: '/run/pgpool/pgpool.pid',
        port: 9999,
      },
      host: {
        files: {
          '/etc/pgpool2/pgpool.conf': { content: PGPOOL_CONF, ctime: 1000 },
          '/etc/pgpool2/pool_hba.conf': { content: 'x\n', ctime: 5000 },
          '/etc/pgpool2/pool_passwd': { content: GOOD_PP, ctime: 1000 },
          '/var/lib/postgresql/.pgpoolkey': { content: KEY, ctime: 1000 },
        },
        answers: [{ match: /pgtls-pgpool-state/, stdout: 'running 77 4000.5\n', user: 'postgres' }],
      },
    },
    {
      name: 'plaintext_sessions: no plaintext session: nothing',
      module: 'plaintext_sessions',
      args: {},
      host: { answers: [psqlAnswer(/pg_stat_ssl/, '[]')] },
      memos: PG_MEMO,
    },
    { name: 'pgpool_backend_tls: no Pgpool-II hosts: nothing', module: 'pgpool_backend_tls', args: { pgpool_hosts: [] }, host: {} },
    { name: 'pgpool_backend_tls: a read-only verify', module: 'pgpool_backend_tls', args: { pgpool_hosts: ['pg3'] }, host: {} },
    {
      name: 'restore_originals: nothing tracked: nothing',
      module: 'restore_originals',
      args: {},
      host: { answers: [{ match: /pgtls-state-list/, stdout: '' }] },
    },
    {
      name: 'login_check: a verify-only change',
      module: 'login_check',
      args: { host: '127.0.0.1', port: 9999, user: 'webadmin', password: 'pw' },
      host: {},
    },
    {
      name: 'fetch_client_certs: files not on the host: conditional',
      module: 'fetch_client_certs',
      args: { dest: certsDest, keys_dir: '/keys', owner: 'postgres' },
      host: {},
    },
    { name: 'remove_ca: a CA on the controller: removed (run-level step)', module: 'remove_ca', args: { ca_dir: withCa }, host: {} },
    { name: 'remove_ca: no CA: nothing', module: 'remove_ca', args: { ca_dir: noCa }, host: {} },
  ];
}
