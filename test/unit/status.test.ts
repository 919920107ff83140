import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encryptPoolPassword } from '../../src/crypto/pool-passwd.js';
import { createCA, createCsr, generateKeyPair, signCsr } from '../../src/crypto/x509.js';
import { certView } from '../../src/status/cert.js';
import { plainPasswordRows, plainPasswordRules, plainRules } from '../../src/status/hba.js';
import { conninfoParams, effectiveSslmode } from '../../src/status/conninfo.js';
import { assessHost, FINDING_CODES, serviceFindings, serviceProblems, statusExitCode, type FindingCode, type HostStatus, type ServiceStatus } from '../../src/status/model.js';
import { upstreamOf } from '../../src/status/probe-postgres.js';
import { checkPoolPasswd, expectedPoolUsers } from '../../src/status/pool-passwd.js';
import { renderJson, renderTable } from '../../src/status/render.js';
import { parseVersionProbe } from '../../src/status/tls-versions.js';

const encrypted: ServiceStatus = {
  service: 'postgresql',
  endpoint: '10.0.0.1:5432',
  tls: true,
  cert: { subject: 'CN=pg1', sans: ['pg1', '10.0.0.1'], issuer: 'CN=pgtls CA', notAfter: '2029-01-01', daysLeft: 400, fingerprint: 'AB' },
  tlsVersions: ['TLSv1.2', 'TLSv1.3'],
  minTlsSetting: 'TLSv1.2',
  plainPasswordRules: [],
  md5Roles: ['legacy'],
  notes: [],
};

// --- the verdict: which findings need action (exit 1) -----------------------------------------
const verdicts: { name: string; s: Partial<ServiceStatus>; window?: number; problems: RegExp[] }[] = [
  { name: 'encrypted, far from expiry, md5 roles left: fine (md5 is a note, not a failure)', s: {}, problems: [] },
  { name: 'no handshake', s: { tls: false, cert: undefined, tlsDetail: 'the server refuses TLS' }, problems: [/does not complete a TLS handshake \(the server refuses TLS\)/] },
  { name: 'inside the window', s: { cert: { ...encrypted.cert!, daysLeft: 9 } }, problems: [/expires in 9 days \(renewal window 30\)/] },
  { name: 'exactly at the window: gencert re-issues it, so status flags it', s: { cert: { ...encrypted.cert!, daysLeft: 30 } }, problems: [/expires in 30 days/] },
  { name: 'just outside the window', s: { cert: { ...encrypted.cert!, daysLeft: 31 } }, problems: [] },
  { name: 'a narrower window', s: { cert: { ...encrypted.cert!, daysLeft: 9 } }, window: 5, problems: [] },
  { name: 'expired', s: { cert: { ...encrypted.cert!, daysLeft: -2, notAfter: '2020-01-01' } }, problems: [/expired on 2020-01-01/] },
  { name: 'a password rule without hostssl', s: { plainPasswordRules: ['line 9: host all all 0.0.0.0/0 md5'] }, problems: [/accepts passwords without TLS \(1 rule without hostssl: line 9/] },
];
for (const v of verdicts) {
  test(`verdict: ${v.name}`, () => {
    const p = serviceProblems({ ...encrypted, ...v.s }, v.window ?? 30);
    assert.is(p.length, v.problems.length, p.join('\n'));
    v.problems.forEach((re, i) => assert.match(p[i]!, re));
  });
}

// --- findings: one stable code per reason, action or info ---------------------------------------
const stream = { pid: 7, client_addr: '10.0.0.2', application_name: 'pg2', usename: 'replicator', state: 'streaming' };
const session = { pid: 9, client_addr: '10.0.0.5', usename: 'appuser', application_name: 'psql', backend_start: '2026-01-01T00:00:00Z' };
const policy = { renewBeforeDays: 30, minTls: 'TLSv1.2' };
const findingCases: { name: string; s: Partial<ServiceStatus>; policy?: Partial<typeof policy>; codes: FindingCode[]; info?: FindingCode[]; match?: RegExp }[] = [
  { name: 'encrypted everywhere: only the md5 note', s: {}, codes: [], info: ['md5-roles'] },
  { name: 'no md5 roles, no replication, no session: nothing at all', s: { md5Roles: [], replication: [{ ...stream, ssl: true }], plainSessions: [] }, codes: [] },
  { name: 'a plaintext walsender', s: { replication: [{ ...stream, ssl: false }, { ...stream, pid: 8, ssl: true }] }, codes: ['plaintext-replication'], match: /1 replication stream without TLS: 10\.0\.0\.2 user replicator application_name pg2 \(pid 7, streaming\)/ },
  { name: 'plaintext TCP sessions, grouped by address/user/application', s: { plainSessions: [session, { ...session, pid: 10 }, { ...session, pid: 11, usename: 'legacy' }] }, codes: ['plaintext-session'], match: /3 TCP client sessions without TLS: 2× 10\.0\.0\.5 user appuser application_name psql; 10\.0\.0\.5 user legacy/ },
  { name: 'a standby on sslmode=prefer', s: { upstream: { source: 'pg_stat_wal_receiver', sslmode: 'prefer', host: '10.0.0.1' } }, codes: ['standby-unverified'], match: /primary 10\.0\.0\.1 with sslmode=prefer \(from pg_stat_wal_receiver\)/ },
  { name: 'a standby on sslmode=require (no verification either)', s: { upstream: { source: 'primary_conninfo', sslmode: 'require' } }, codes: ['standby-unverified'] },
  { name: 'a standby on verify-full', s: { upstream: { source: 'pg_stat_wal_receiver', sslmode: 'verify-full' } }, codes: [] },
  { name: 'a standby on verify-ca', s: { upstream: { source: 'pg_stat_wal_receiver', sslmode: 'verify-ca' } }, codes: [] },
  { name: 'a remote trust rule', s: { openRules: ['line 3: host all all 10.0.0.0/8 trust'] }, codes: ['hba-no-tls'], match: /lets remote clients in without TLS and without a password \(1 rule: line 3: host all all 10\.0\.0\.0\/8 trust\)/ },
  { name: 'a password rule without TLS and a remote ident rule: one finding each, same code', s: { plainPasswordRules: ['line 9: host all all 0.0.0.0/0 md5'], openRules: ['line 4: host all ops 10.0.0.0/8 ident'] }, codes: ['hba-no-tls', 'hba-no-tls'] },
  { name: 'accepts TLSv1.2, policy TLSv1.3', s: {}, policy: { minTls: 'TLSv1.3' }, codes: ['min-tls-below-policy'], match: /accepts TLSv1\.2, below pgtls_min_tls TLSv1\.3 \(ssl_min_protocol_version = TLSv1\.2\)/ },
  { name: 'TLSv1.3 only, policy TLSv1.3', s: { tlsVersions: ['TLSv1.3'] }, policy: { minTls: 'TLSv1.3' }, codes: [] },
  { name: 'accepts TLSv1 (Pgpool-II has no minimum), policy TLSv1.2', s: { service: 'pgpool', tlsVersions: ['TLSv1', 'TLSv1.2', 'TLSv1.3'], minTlsSetting: undefined }, codes: ['min-tls-below-policy'], match: /^Pgpool-II accepts TLSv1, below pgtls_min_tls TLSv1\.2$/ },
  { name: 'no handshake: no-tls (and nothing measured to judge the minimum by)', s: { tls: false, cert: undefined, tlsVersions: [] }, codes: ['no-tls'] },
  { name: 'certificate inside the window', s: { cert: { ...encrypted.cert!, daysLeft: 3 } }, codes: ['cert-expiring'] },
  { name: 'certificate expired', s: { cert: { ...encrypted.cert!, daysLeft: -1 } }, codes: ['cert-expired'] },
  { name: 'pool_passwd gaps are info', s: { service: 'pgpool', md5Roles: undefined, poolPasswd: { file: '/p', missing: ['app'], undecryptable: [] } }, codes: [], info: ['pool-passwd-incomplete'] },
];
for (const c of findingCases) {
  test(`findings: ${c.name}`, () => {
    const f = serviceFindings({ ...encrypted, ...c.s }, { ...policy, ...c.policy });
    assert.equal(f.filter((x) => x.severity === 'action').map((x) => x.code), c.codes, JSON.stringify(f));
    if (c.info) assert.equal(f.filter((x) => x.severity === 'info').map((x) => x.code), c.info);
    if (c.match) assert.ok(f.some((x) => c.match!.test(x.message)), f.map((x) => x.message).join('\n'));
    for (const x of f) assert.ok(x.code in FINDING_CODES);
  });
}

test('a host with a plaintext session needs action; its findings carry the code', () => {
  const h = assessHost({ host: 'pg1', address: 'a', services: [{ ...encrypted, plainSessions: [session] }] }, policy);
  assert.is(h.state, 'attention');
  assert.equal(h.findings.map((f) => [f.code, f.severity]), [['plaintext-session', 'action'], ['md5-roles', 'info']]);
  assert.is(h.problems.length, 1);
  assert.is(statusExitCode([h]), 1);
});

// --- standbys: what sslmode libpq really uses ------------------------------------------------------
test('conninfo: key=value with quotes and escapes, URIs, libpq default prefer', () => {
  const c = conninfoParams(String.raw`user=replicator password='it\'s \\ x' host=10.0.0.1 port=5432 sslmode=verify-full application_name=pg2`);
  assert.is(c.get('host'), '10.0.0.1');
  assert.is(c.get('sslmode'), 'verify-full');
  assert.is(c.get('password'), undefined, 'status never keeps the password');
  assert.is(effectiveSslmode('host=a user=b'), 'prefer');
  assert.is(effectiveSslmode('host = a  sslmode = require'), 'require');
  assert.is(effectiveSslmode('host=a requiressl=1'), 'require');
  assert.is(effectiveSslmode('postgresql://rep:pw@db1:5432/x?sslmode=verify-ca&application_name=s'), 'verify-ca');
  assert.is(conninfoParams('postgres://[::1]:5432?sslmode=disable').get('host'), '::1');
  assert.is(effectiveSslmode('postgresql://db1'), 'prefer');
});

test('upstream: the live walreceiver first, then primary_conninfo; none on a primary or without primary_conninfo', () => {
  assert.is(upstreamOf({ in_recovery: false, receiver: null, primary_conninfo: 'host=a' }), null);
  assert.is(upstreamOf({ in_recovery: true, receiver: null, primary_conninfo: '' }), null);
  assert.equal(upstreamOf({ in_recovery: true, receiver: null, primary_conninfo: "host=10.0.0.1 password='x y' sslmode=verify-full" }), { source: 'primary_conninfo', sslmode: 'verify-full', host: '10.0.0.1' });
  assert.equal(
    upstreamOf({ in_recovery: true, receiver: { status: 'streaming', conninfo: 'user=r password=******** host=10.0.0.1 sslmode=prefer', sender_host: '10.0.0.1' }, primary_conninfo: 'host=10.0.0.1 sslmode=verify-full' }),
    { source: 'pg_stat_wal_receiver', sslmode: 'prefer', host: '10.0.0.1', status: 'streaming' },
    'the running stream is what counts until it reconnects',
  );
});

const host = (state: HostStatus['state']): HostStatus => ({ host: 'h', address: 'a', state, services: [], problems: [], findings: [] });
test('exit codes: 1 beats 3 beats 0; interrupted is 4', () => {
  assert.is(statusExitCode([]), 0);
  assert.is(statusExitCode([host('ok'), host('ok')]), 0);
  assert.is(statusExitCode([host('ok'), host('unreachable')]), 3);
  assert.is(statusExitCode([host('unreachable'), host('attention')]), 1);
  assert.is(statusExitCode([host('error')]), 1);
  assert.is(statusExitCode([host('ok')], true), 4);
  assert.is(assessHost({ host: 'h', address: 'a', services: [encrypted] }, 30).state, 'ok');
  assert.is(assessHost({ host: 'h', address: 'a', services: [encrypted, { ...encrypted, service: 'pgpool', tls: false }] }, 30).state, 'attention');
});

// --- pool_hba rules ---------------------------------------------------------------------------
test('pool_hba: password rules that accept plain connections (netmask column, comments, methods)', () => {
  const text = [
    '# host all all 0.0.0.0/0 md5   (a comment)',
    'local   all  all                 md5',
    'host    all  all  127.0.0.1/32   trust',
    'host    all  all  0.0.0.0/0      md5',
    'hostssl all  all  0.0.0.0/0      scram-sha-256',
    'hostnossl all app 10.0.0.0 255.0.0.0 password  # netmask in its own column',
    'host    all  all  ::/0           reject',
    'host    all  all  ::/0           scram-sha-256',
  ].join('\n');
  assert.equal(plainPasswordRules(text), [
    'line 4: host all all 0.0.0.0/0 md5',
    'line 6: hostnossl all app 10.0.0.0 255.0.0.0 password',
    'line 8: host all all ::/0 scram-sha-256',
  ]);
  assert.equal(plainPasswordRules('hostssl all all 0.0.0.0/0 scram-sha-256\n'), []);
  assert.equal(plainRules(text).other, ['line 3: host all all 127.0.0.1/32 trust'], 'trust over loopback: a note (not in transit), reject: nothing');
  assert.equal(plainRules(text).open, []);
  const open = plainRules(['host all all 10.0.0.0/8 trust', 'hostnossl all ops 0.0.0.0 0.0.0.0 ident', 'host all all ::1/128 trust', 'host all all samenet ldap ldapserver=x', 'hostssl all all 0.0.0.0/0 trust', 'host all all 0.0.0.0/0 reject', 'host all all all gss'].join('\n'));
  assert.equal(open.open, ['line 1: host all all 10.0.0.0/8 trust', 'line 2: hostnossl all ops 0.0.0.0 0.0.0.0 ident', 'line 4: host all all samenet ldap', 'line 7: host all all all gss']);
  assert.equal(open.other, ['line 3: host all all ::1/128 trust']);
});

test('pg_hba_file_rules rows: the same judgement', () => {
  const row = (type: string, auth: string, line: number) => ({ line_number: line, type, database: ['all'], user_name: ['all'], address: '0.0.0.0', netmask: '0.0.0.0', auth_method: auth });
  assert.equal(plainPasswordRows([row('local', 'md5', 1), row('host', 'md5', 2), row('hostssl', 'md5', 3), row('host', 'trust', 4), row('hostnogssenc', 'scram-sha-256', 5)]), [
    'line 2: host all all 0.0.0.0 0.0.0.0 md5',
    'line 5: hostnogssenc all all 0.0.0.0 0.0.0.0 scram-sha-256',
  ]);
});

// --- TLS versions -----------------------------------------------------------------------------
test('TLS version probe output', () => {
  assert.equal(parseVersionProbe('no -tls1\nno -tls1_1\nyes -tls1_2\nyes -tls1_3\n'), ['TLSv1.2', 'TLSv1.3']);
  assert.equal(parseVersionProbe('yes -tls1\nno -tls1_1\nno -tls1_2\nno -tls1_3\n'), ['TLSv1']);
  assert.is(parseVersionProbe('pgtls: no openssl\n'), null);
  assert.is(parseVersionProbe('yes -tls1_3\npgtls: old openssl\n'), null);
});

// --- pool_passwd --------------------------------------------------------------------------------
test('pool_passwd: missing users, entries the key cannot decrypt, first entry wins', () => {
  const key = 'the-pgpool-key';
  const text = [
    `webadmin:${encryptPoolPassword('pw1', key)}`,
    `app:${encryptPoolPassword('pw2', 'another-key')}`,
    `app:${encryptPoolPassword('pw2', key)}`, // pgpool never reads this one
    'legacy:md5' + '0'.repeat(32),
    '',
  ].join('\n');
  assert.equal(checkPoolPasswd(text, key, ['webadmin', 'app', 'pgpool']), { missing: ['pgpool'], undecryptable: ['app'] });
  assert.equal(checkPoolPasswd(text, null, ['webadmin']), { missing: [], undecryptable: ['webadmin', 'app'] });
  assert.equal(checkPoolPasswd('', key, ['webadmin']), { missing: ['webadmin'], undecryptable: [] });
});

test('expected pool_passwd users: names only (passwords may be unset environment lookups)', () => {
  const vars = { pgtls_users: [{ name: 'appuser', password: "{{ lookup('env', 'UNSET') }}" }, { name: '{{ templated }}' }, 'junk'], pgpool_password: 'x' };
  assert.equal(expectedPoolUsers(vars), ['webadmin', 'pgpool', 'appuser']);
  assert.equal(expectedPoolUsers({}), ['webadmin']);
});

// --- certificates -------------------------------------------------------------------------------
test('certificate view: subject, SANs, issuer, days left counted like gencert (floor)', async () => {
  const { keyPem } = await generateKeyPair(2048);
  const ca = await createCA({ commonName: 'pgtls test CA', days: 100, keyPem });
  const pem = signCsr({ csrPem: createCsr({ keyPem, commonName: 'pg1' }), ca, kind: 'server', commonName: 'pg1', sans: { dns: ['pg1.lab'], ip: ['10.0.0.1'] }, days: 10 });
  const v = certView(pem);
  assert.is(v.subject, 'CN=pg1');
  assert.equal(v.sans, ['pg1.lab', '10.0.0.1']);
  assert.is(v.issuer, 'CN=pgtls test CA');
  assert.is(v.daysLeft, 9, 'issued now for 10 days: 9 whole days and a bit left');
  assert.is(certView(pem, new Date(Date.now() + 11 * 86_400_000)).daysLeft, -2);
});

// --- rendering ----------------------------------------------------------------------------------
test('table and JSON', () => {
  const hosts: HostStatus[] = [
    assessHost({ host: 'pg1', address: '10.0.0.1', services: [encrypted] }, 30),
    assessHost({ host: 'pg3', address: '10.0.0.3', services: [{ ...encrypted, service: 'pgpool', tls: false, cert: undefined, tlsDetail: 'ssl = off', tlsVersions: [], minTlsSetting: undefined, md5Roles: undefined, plainPasswordRules: ['a', 'b'], poolPasswd: { file: '/p', missing: ['app'], undecryptable: [] } }] }, 30),
    { host: 'ghost', address: '10.0.0.9', state: 'unreachable', message: 'connect ECONNREFUSED', services: [], problems: [], findings: [] },
    assessHost({ host: 'pg2', address: '10.0.0.2', services: [{ ...encrypted, openRules: ['line 3: host all all 10.0.0.0/8 trust'], plainSessions: [session], replication: [{ ...stream, ssl: false }], upstream: { source: 'pg_stat_wal_receiver', sslmode: 'prefer', host: '10.0.0.1', status: 'streaming' } }] }, { renewBeforeDays: 30, minTls: 'TLSv1.3' }),
  ];
  const t = renderTable(hosts);
  assert.match(t, /^pg1 {2}10\.0\.0\.1 {2}OK$/m);
  assert.match(t, /^ {4}minimum TLS {7}TLSv1\.2 \(accepts TLSv1\.2, TLSv1\.3\) \[ssl_min_protocol_version = TLSv1\.2\]$/m);
  assert.match(t, /^ {4}roles on md5 {6}legacy$/m);
  assert.match(t, /^pg3 {2}10\.0\.0\.3 {2}NEEDS ACTION$/m);
  assert.match(t, /^ {4}hostssl enforced {2}NO, password rules without TLS:\n {24}a\n {24}b$/m);
  assert.match(t, /^ {4}pool_passwd {7}missing: app$/m);
  assert.match(t, /^ghost {2}10\.0\.0\.9 {2}UNREACHABLE\n {2}connect ECONNREFUSED$/m);
  assert.match(t, /^ {4}hostssl enforced {2}NO, remote clients let in without TLS:\n {24}line 3: host all all 10\.0\.0\.0\/8 trust$/m);
  assert.match(t, /^ {4}replication {7}pg2 10\.0\.0\.2 streaming PLAINTEXT$/m);
  assert.match(t, /^ {4}sessions w\/o TLS {2}10\.0\.0\.5 appuser psql \(pid 9\)$/m);
  assert.match(t, /^ {4}upstream {10}sslmode=prefer to 10\.0\.0\.1 \(streaming\) \[pg_stat_wal_receiver\]$/m);
  for (const code of ['hba-no-tls', 'min-tls-below-policy', 'plaintext-replication', 'plaintext-session', 'standby-unverified']) assert.match(t, new RegExp(`^  ! \\[${code}\\] `, 'm'));
  const j = JSON.parse(renderJson(hosts, { inventory: 'i.yaml', durationMs: 5, exitCode: 1, warnings: [] })) as { exitCode: number; hosts: Record<string, { state: string; findings: { code: string; severity: string }[] }> };
  assert.is(j.exitCode, 1);
  assert.equal(Object.keys(j.hosts), ['pg1', 'pg3', 'ghost', 'pg2']);
  assert.equal(j.hosts['pg2']!.findings.filter((f) => f.severity === 'action').map((f) => f.code), ['hba-no-tls', 'min-tls-below-policy', 'plaintext-replication', 'plaintext-session', 'standby-unverified']);
  assert.is(j.hosts['pg3']!.state, 'attention');
});

test.run();
