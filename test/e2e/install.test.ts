import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump, load } from 'js-yaml';
import { pgtls, totalChanged, type CliRun } from './cli.js';
import { labAvailable, labUnavailableReason, labUp, run, type Lab, haveLab } from './lab.js';

// playbooks/install.yaml on a real lab: primary pg1 + streaming standby pg2 (Debian "15 main", md5
// everywhere, ssl off). Checks what a user of the seed add-on would check, plus what the seed got wrong.

// Not under /tmp: lab hosts get a private /tmp, which would hide the lab directory from them.
mkdirSync('/var/tmp', { recursive: true });
const work = mkdtempSync('/var/tmp/pgtls-e2e-install-');
const PLAYBOOK = 'playbooks/install.yaml';
const KEYS = '/var/lib/jelastic/keys/SSL-TLS'; // the seed's default, private to each lab host
const STATE = '/var/lib/pgtls/state'; // the executor's default record of originals
const CONF = '/etc/postgresql/15/main';
let lab: Lab;
let inventory: string;
const ips: Record<string, string> = {};
const caDir = join(work, 'ca');

const commandLog = join(work, 'remote-commands.log');
function runInstall(extra: string[] = [], json = join(work, `r-${Date.now()}.json`)): Promise<CliRun> {
  return pgtls(['run', PLAYBOOK, '-i', inventory, ...extra], { json, env: { PGTLS_COMMAND_LOG: commandLog } });
}

/** psql from this machine (the "client"), password in the child's environment, never in argv. */
function psql(conninfo: string, password: string | undefined, sql = 'select ssl from pg_stat_ssl where pid = pg_backend_pid()') {
  const env = { ...process.env, PGPASSFILE: '/dev/null', PGCONNECT_TIMEOUT: '10' } as NodeJS.ProcessEnv;
  if (password !== undefined) env['PGPASSWORD'] = password;
  else delete env['PGPASSWORD'];
  return run('psql', ['-X', '-A', '-t', '-q', '-w', '-d', conninfo, '-c', sql], { env });
}

const hashed = (h: string, extra: string[] = []) =>
  lab.sha256Tree(h, [CONF, KEYS, '/var/lib/jelastic', '/var/lib/postgresql/15/main/postgresql.auto.conf', '/var/lib/postgresql/.pgpass', ...extra]);

async function servedFingerprint(host: string): Promise<string> {
  const out = await lab.exec(host, `openssl s_client -starttls postgres -connect 127.0.0.1:5432 </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256`);
  return out.stdout.trim();
}

const ok = (r: CliRun) => `exit ${r.code}\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-2000)}`;

test('lab: primary pg1 + streaming standby pg2', async () => {
  if (!labAvailable()) {
    console.log(`skipping install e2e: ${labUnavailableReason()}`);
    return;
  }
  lab = await labUp({ hosts: 2, postgres: ['pg1', 'pg2'], standby: { pg2: 'pg1' }, dir: join(work, 'lab') });
  // The lab's inventory, plus what a real inventory for this playbook says: the replication role is
  // listed (it must keep logging in once the rules say scram-sha-256), a CA directory of this test.
  const inv = load(readFileSync(lab.inventoryPath, 'utf8')) as { all: { vars: Record<string, unknown>; children: Record<string, { hosts: Record<string, { ansible_host: string }> }> } };
  for (const [h, v] of Object.entries(inv.all.children['postgres']!.hosts)) ips[h] = v.ansible_host;
  inv.all.vars['pgtls_ca_dir'] = caDir;
  inv.all.vars['pgtls_users'] = [
    { name: 'appuser', password: lab.passwords.app },
    { name: 'replicator', password: lab.passwords.replicator },
  ];
  delete inv.all.children['lab'];
  // no Pgpool-II here: the lab's inventory keeps the pgpool group, empty (a play on an undefined group is bad input)
  inventory = join(work, 'inventory.yaml');
  writeFileSync(inventory, dump(inv));
  assert.ok(ips['pg1'] && ips['pg2']);
});

test('--check --diff on the fresh lab changes no byte and shows the diffs', async () => {
  if (!haveLab(lab)) return;
  const all = () => Promise.all(['pg1', 'pg2'].map((h) => hashed(h, [STATE, '/var/lib/pgtls'])));
  const before = await all();
  const r = await runInstall(['--check', '--diff'], join(work, 'check.json'));
  assert.is(r.code, 0, ok(r));
  assert.equal(await all(), before, 'check mode must not change any file');
  assert.not.ok(existsSync(join(caDir, 'ca.key')), 'check mode must not create the CA either');
  assert.ok(totalChanged(r.report!) > 10);
  assert.match(r.stdout, /\+ssl = on/);
  assert.match(r.stdout, /\+hostssl all {13}all {13}0\.0\.0\.0\/0 {15}scram-sha-256/);
  assert.match(r.stdout, /would issue server certificate CN=pg1/);
  // --check --json lists what would be done per host and task: kind, path, description; a hash and length, no content
  const planned = r.report!.hosts['pg1']!.tasks.flatMap((t) => t.planned ?? []);
  assert.ok(planned.some((p) => p.kind === 'write' && p.path?.endsWith('pg_hba.conf') && /^[0-9a-f]{64}$/.test(p.sha256 ?? '') && (p.bytes ?? 0) > 0), JSON.stringify(planned));
  assert.ok(planned.some((p) => p.kind === 'local' && /^create the CA in /.test(p.description)), 'the CA is created by the executor on the controller');
  // the host makes its keys first (planned again with the CSRs it prints), the CA is created after them
  // (the key directories are made by the same command, a fresh lab has none)
  assert.ok(planned.some((p) => p.kind === 'exec' && /^create key directories, generate .* on the host$/.test(p.description) && !p.conditional), JSON.stringify(planned));
  assert.ok(planned.some((p) => p.kind === 'local' && /^create the CA in /.test(p.description) && p.conditional), 'what follows the keygen is conditional');
  assert.not.match(readFileSync(join(work, 'check.json'), 'utf8'), /hostssl all +all +0\.0\.0\.0\/0 +scram-sha-256/, 'no file content in the report');
});

let firstRunMs = 0;
test('install converges both hosts', async () => {
  if (!haveLab(lab)) return;
  const t0 = Date.now();
  const r = await runInstall([], join(work, 'run1.json'));
  firstRunMs = Date.now() - t0;
  assert.is(r.code, 0, ok(r));
  for (const h of ['pg1', 'pg2']) assert.is(r.report!.hosts[h]!.status, 'ok');
  // legacy keeps an md5 password (nobody gave us its password): reported, per host
  const pg1 = r.report!.hosts['pg1']!;
  const warnings = [...pg1.warnings, ...pg1.tasks.flatMap((t) => t.warnings)];
  assert.ok(warnings.some((w) => /md5 passwords on pg1: legacy/.test(w)), JSON.stringify(warnings));
  console.log(`  install.yaml first run: ${firstRunMs} ms`);
  // No password on any remote command line (where `ps` shows it), in the output or in the report.
  const commands = readFileSync(commandLog, 'utf8');
  assert.ok(commands.length > 1000, 'the command log was written');
  const report = readFileSync(join(work, 'run1.json'), 'utf8');
  for (const pw of [lab.passwords.webadmin, lab.passwords.app, lab.passwords.replicator]) {
    for (const [what, text] of [['remote argv', commands], ['stdout', r.stdout], ['stderr', r.stderr], ['JSON report', report]] as const)
      assert.not.ok(text.includes(pw), `a password appears in the ${what}`);
  }
});

test('clients: verify-full + SCRAM with the unchanged passwords; no TLS, no entry', async () => {
  if (!haveLab(lab)) return;
  const root = join(caDir, 'ca.crt');
  for (const h of ['pg1', 'pg2']) {
    const base = `host=${ips[h]} port=5432 dbname=postgres sslmode=verify-full sslrootcert=${root}`;
    const admin = await psql(`${base} user=webadmin channel_binding=require`, lab.passwords.webadmin);
    assert.is(admin.stdout.trim(), 't', `${h} webadmin: ${admin.stderr}`);
    const app = await psql(`${base} user=appuser channel_binding=require`, lab.passwords.app);
    assert.is(app.stdout.trim(), 't', `${h} appuser: ${app.stderr}`);
    // verify-full by host name (SAN), not only by IP
    const byName = await psql(`host=${h}.lab.internal hostaddr=${ips[h]} dbname=postgres user=webadmin sslmode=verify-full sslrootcert=${root}`, lab.passwords.webadmin);
    assert.is(byName.stdout.trim(), 't', byName.stderr);
    const plain = await psql(`host=${ips[h]} dbname=postgres user=webadmin sslmode=disable`, lab.passwords.webadmin);
    assert.is.not(plain.code, 0);
    assert.match(plain.stderr, /no pg_hba\.conf entry .* no encryption/);
    const legacy = await psql(`${base} user=legacy`, lab.passwords.legacy);
    assert.is.not(legacy.code, 0, 'an md5-stored role cannot pass a scram-sha-256 rule (it was reported)');
  }
  // the server files: key 0600 and certs 0644 (postgres), directories root:postgres 0750 (postgres
  // can read its key, but cannot replace the directories pgtls works in as root)
  const ls = await lab.exec('pg1', `stat -c '%a %U %n' ${KEYS} ${KEYS}/server ${KEYS}/server/server.key ${KEYS}/server/server.crt ${KEYS}/client/client.key`);
  assert.equal(ls.stdout.trim().split('\n'), [
    `750 root ${KEYS}`,
    `750 root ${KEYS}/server`,
    `600 postgres ${KEYS}/server/server.key`,
    `644 postgres ${KEYS}/server/server.crt`,
    `600 postgres ${KEYS}/client/client.key`,
  ]);
  const conf = await lab.exec('pg1', `grep -c '^ssl = on' ${CONF}/postgresql.conf; grep -c '^password_encryption' ${CONF}/postgresql.conf`);
  assert.is(conf.stdout.trim(), '1\n1', 'each setting exactly once');
});

test('the standby still streams, and over TLS once the walreceiver reconnects', async () => {
  if (!haveLab(lab)) return;
  const q = `select r.application_name || ':' || r.state || ':' || coalesce(s.ssl::text, '?') from pg_stat_replication r left join pg_stat_ssl s on s.pid = r.pid`;
  assert.match(await lab.sql('pg1', q), /^pg2:streaming:/);
  // The stream that existed before the switch is plaintext; a reconnect must work with the new rules
  // (hostssl + scram-sha-256 for replicator) and be encrypted.
  await lab.sql('pg1', 'select pg_terminate_backend(pid) from pg_stat_replication');
  let state = '';
  for (let i = 0; i < 100 && state !== 'pg2:streaming:true'; i++) {
    await new Promise((r) => setTimeout(r, 200));
    state = await lab.sql('pg1', q);
  }
  assert.is(state, 'pg2:streaming:true');
});

test('second run: changed=0 (also in --check)', async () => {
  if (!haveLab(lab)) return;
  const t0 = Date.now();
  const r = await runInstall([], join(work, 'run2.json'));
  const ms = Date.now() - t0;
  assert.is(r.code, 0, ok(r));
  assert.is(totalChanged(r.report!), 0, ok(r));
  const c = await runInstall(['--check'], join(work, 'check2.json'));
  assert.is(c.code, 0, ok(c));
  assert.is(totalChanged(c.report!), 0, ok(c));
  console.log(`  install.yaml re-run: ${ms} ms`);
});

// appuser, not webadmin: a `cert` rule above the password rules makes that role certificate-only,
// and the playbook proves every reload with a webadmin PASSWORD login.
test('client certificate login (verify-ca) after adding a cert rule for appuser', async () => {
  if (!haveLab(lab)) return;
  const extra = ['-e', JSON.stringify({ pgtls_cert_users: ['appuser'], pgtls_client_user: 'appuser' })];
  const r = await runInstall(extra, join(work, 'cert.json'));
  assert.is(r.code, 0, ok(r));
  assert.ok(r.report!.hosts['pg1']!.tasks.some((t) => /pg_hba/.test(t.name) && t.changed), 'the cert rule was added');
  const dir = join(work, 'client');
  mkdirSync(dir, { recursive: true });
  for (const f of ['client.crt', 'client.key', 'root.crt']) {
    const c = await lab.exec('pg1', `cat ${KEYS}/client/${f}`);
    writeFileSync(join(dir, f), c.stdout, { mode: 0o600 });
  }
  const cert = await psql(
    `host=${ips['pg1']} dbname=postgres user=appuser sslmode=verify-ca sslrootcert=${dir}/root.crt sslcert=${dir}/client.crt sslkey=${dir}/client.key`,
    undefined,
    'select ssl || \':\' || client_dn from pg_stat_ssl where pid = pg_backend_pid()',
  );
  assert.is(cert.stdout.trim(), 'true:/CN=appuser', cert.stderr);
  const noCert = await psql(`host=${ips['pg1']} dbname=postgres user=appuser sslmode=verify-ca sslrootcert=${dir}/root.crt`, lab.passwords.app);
  assert.match(noCert.stderr, /certificate/, 'the cert rule comes first: a password is not enough any more');
  const again = await runInstall(extra, join(work, 'cert2.json'));
  assert.is(totalChanged(again.report!), 0, ok(again));
});

for (const variant of [
  { name: 'garbage server.key', plant: `echo garbage > ${KEYS}/server/server.key`, why: /not an unencrypted private key/ },
  { name: 'server.key chmod 0644', plant: `chmod 0644 ${KEYS}/server/server.key`, why: /has mode 644 owned by postgres/ },
]) {
  test(`bad key (${variant.name}): the host fails, its files are restored, TLS keeps being served`, async () => {
    if (!haveLab(lab)) return;
    const good = `${KEYS}/server/.e2e-good-key`;
    await lab.exec('pg1', `cp -p ${KEYS}/server/server.key ${good} && ${variant.plant}`);
    const before = await hashed('pg1');
    const fp = await servedFingerprint('pg1');
    assert.match(fp, /Fingerprint=/);
    // a config change forces a reload; gencert (which would re-issue and heal) is skipped
    const r = await runInstall(['-e', 'pgtls_min_tls=TLSv1.3', '--skip-tags', 'gencert', '--limit', 'pg1'], join(work, 'bad.json'));
    assert.is(r.code, 1, ok(r));
    const host = r.report!.hosts['pg1']!;
    assert.is(host.status, 'failed');
    assert.match(host.message ?? '', variant.why);
    assert.match(host.message ?? '', /previous files restored/);
    assert.equal(await hashed('pg1'), before, 'postgresql.conf is back as it was');
    const leftovers = await lab.exec('pg1', `find ${CONF} ${KEYS} -name '*.pgtls-rollback*' -o -name '*.pgtls-rb.*' -o -name '.pgtls-tmp.*'`);
    assert.is(leftovers.stdout.trim(), '');
    assert.is(await servedFingerprint('pg1'), fp, 'the old certificate is still served');
    const login = await psql(`host=${ips['pg1']} dbname=postgres user=webadmin sslmode=verify-full sslrootcert=${join(caDir, 'ca.crt')}`, lab.passwords.webadmin);
    assert.is(login.stdout.trim(), 't', login.stderr);
    await lab.exec('pg1', `mv -f ${good} ${KEYS}/server/server.key`);
  });
}

test('a later full run heals a broken key by re-issuing it', async () => {
  if (!haveLab(lab)) return;
  await lab.exec('pg1', `echo garbage > ${KEYS}/server/server.key`);
  const fp = await servedFingerprint('pg1');
  const r = await runInstall(['--limit', 'pg1'], join(work, 'heal.json'));
  assert.is(r.code, 0, ok(r));
  assert.is.not(await servedFingerprint('pg1'), fp, 'a new certificate is served');
  const login = await psql(`host=${ips['pg1']} dbname=postgres user=webadmin sslmode=verify-full sslrootcert=${join(caDir, 'ca.crt')}`, lab.passwords.webadmin);
  assert.is(login.stdout.trim(), 't', login.stderr);
});

// teardown, not a test: it is not counted (a test must be able to fail)
test.after(async () => {
  if (lab && process.env['LAB_KEEP'] !== '1') await lab.down();
});

test.run();
