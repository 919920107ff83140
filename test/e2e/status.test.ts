// `pgtls status` on a real lab (pg1 primary, pg2 standby, pg3 Pgpool-II), before and after install;
// certificate renewal by install.yaml; client certificates fetched to the controller and used.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { dump, load } from 'js-yaml';
import { pgtls, totalChanged, type CliRun } from './cli.js';
import { labAvailable, labUnavailableReason, labUp, run, type Lab, haveLab } from './lab.js';

mkdirSync('/var/tmp', { recursive: true });
const work = mkdtempSync('/var/tmp/pgtls-e2e-status-');
const TREE = ['/etc/postgresql', '/etc/pgpool2', '/var/lib/postgresql/15/main/postgresql.auto.conf', '/var/lib/postgresql/.pgpoolkey', '/var/lib/jelastic', '/var/lib/pgtls'];
const HOSTS = ['pg1', 'pg2', 'pg3'];

interface StatusJson {
  exitCode: number;
  hosts: Record<
    string,
    {
      state: string;
      problems: string[];
      findings: { code: string; severity: string; message: string }[];
      services: {
        service: string;
        tls: boolean;
        cert?: { subject: string; sans: string[]; issuer: string; daysLeft: number };
        tlsVersions: string[];
        plainPasswordRules: string[];
        md5Roles?: string[];
        poolPasswd?: { missing: string[]; undecryptable: string[] };
      }[];
    }
  >;
}

let lab: Lab;
let inventory = '';
let n = 0;
const ok = (r: { code: number; stdout: string; stderr: string }) => `exit ${r.code}\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-2000)}`;
const install = (extra: string[] = []) => pgtls(['run', 'playbooks/install.yaml', '-i', inventory, ...extra], { json: join(work, `run${++n}.json`) });
let statusMs = 0;
async function status(extra: string[] = [], inv = inventory): Promise<CliRun & { json?: StatusJson }> {
  const t0 = Date.now();
  const r = await pgtls(['status', '-i', inv, '--json', ...extra]);
  statusMs = Date.now() - t0;
  let json: StatusJson | undefined;
  try {
    json = JSON.parse(r.stdout) as StatusJson;
  } catch {
    json = undefined;
  }
  return { ...r, json };
}
const trees = () => Promise.all(HOSTS.map((h) => lab.sha256Tree(h, TREE)));

test('lab: pg1 primary, pg2 standby, pg3 Pgpool-II', async () => {
  if (!labAvailable()) {
    console.log(`skipping status e2e: ${labUnavailableReason()}`);
    return;
  }
  lab = await labUp({ hosts: 3, postgres: ['pg1', 'pg2'], standby: { pg2: 'pg1' }, pgpool: { pg3: ['pg1', 'pg2'] }, dir: join(work, 'lab') });
  const inv = load(readFileSync(lab.inventoryPath, 'utf8')) as { all: { vars: Record<string, unknown>; children: Record<string, unknown> } };
  inv.all.vars['pgtls_ca_dir'] = join(work, 'ca');
  // pgtls_users: the lab's (appuser, replicator, pgpool: every role that logs in over the network)
  delete inv.all.children['lab'];
  inventory = join(work, 'inventory.yaml');
  writeFileSync(inventory, dump(inv));
});

test('bad input: exit 2 before any connection', async () => {
  if (!haveLab(lab)) return;
  for (const args of [[], ['-i', join(work, 'nope.yaml')], ['-i', inventory, '--limit', 'nosuchhost'], ['-i', inventory, '--bogus'], ['-i', inventory, '-e', '{not json']]) {
    const r = await pgtls(['status', ...args]);
    assert.is(r.code, 2, `${args.join(' ')}: ${ok(r)}`);
    assert.match(r.stderr, /bad input, no host was contacted/);
  }
});

test('before install: TLS off everywhere, password rules without TLS, md5 roles; exit 1; nothing changed', async () => {
  if (!haveLab(lab)) return;
  const before = await trees();
  const r = await status();
  assert.is(r.code, 1, ok(r));
  const j = r.json!;
  assert.is(j.exitCode, 1);
  for (const h of HOSTS) {
    assert.is(j.hosts[h]!.state, 'attention', h);
    assert.is(j.hosts[h]!.services[0]!.tls, false, h);
    assert.ok(j.hosts[h]!.services[0]!.plainPasswordRules.length > 0, h);
  }
  assert.ok(j.hosts['pg1']!.services[0]!.md5Roles!.includes('webadmin'));
  // the reasons, with their codes: the primary streams to pg2 in plaintext, pg2 does not verify pg1
  const codes = (h: string) => j.hosts[h]!.findings.filter((f) => f.severity === 'action').map((f) => f.code);
  for (const h of HOSTS) assert.ok(codes(h).includes('no-tls') && codes(h).includes('hba-no-tls'), `${h}: ${codes(h)}`);
  assert.ok(codes('pg1').includes('plaintext-replication'), `pg1: ${codes('pg1')}`);
  assert.match(j.hosts['pg1']!.findings.find((f) => f.code === 'plaintext-replication')!.message, /user replicator application_name pg2/);
  assert.ok(codes('pg2').includes('standby-unverified'), `pg2: ${codes('pg2')}`);
  assert.match(j.hosts['pg2']!.findings.find((f) => f.code === 'standby-unverified')!.message, /sslmode=prefer \(from pg_stat_wal_receiver\)/);
  assert.ok(j.hosts['pg1']!.findings.some((f) => f.code === 'md5-roles' && f.severity === 'info'));
  assert.equal(j.hosts['pg3']!.services[0]!.poolPasswd!.missing.sort(), ['appuser', 'replicator', 'webadmin']);
  assert.equal(await trees(), before, 'status changes nothing on any host');
  // the table, for people
  const table = await pgtls(['status', '-i', inventory, '--limit', 'pg1']);
  assert.is(table.code, 1);
  assert.match(table.stdout, /pg1 .* NEEDS ACTION/, table.stdout + table.stderr);
  assert.match(table.stdout, /TLS \(handshake\) +OFF/);
  assert.match(table.stdout, /^ {2}! \[plaintext-replication\] 1 replication stream without TLS/m);
  console.log(`  status (3 hosts, before install): ${statusMs} ms`);
});

let shortLived = '';
test('install with short-lived certificates: TLS on, hostssl enforced, but status exits 1 (expiry inside the window)', async () => {
  if (!haveLab(lab)) return;
  // pgtls_cert_days must stay above the renewal window used for THIS install, hence 10/5
  const r = await install(['-e', 'pgtls_cert_days=10', '-e', 'pgtls_renew_before_days=5']);
  assert.is(r.code, 0, ok(r));
  const s = await status();
  assert.is(s.code, 1, ok(s));
  for (const h of HOSTS) {
    const svc = s.json!.hosts[h]!.services[0]!;
    assert.ok(svc.tls, h);
    assert.equal(svc.plainPasswordRules, [], h);
    assert.ok(svc.cert!.daysLeft <= 10 && svc.cert!.daysLeft >= 9, `${h}: ${svc.cert!.daysLeft}`);
    assert.match(svc.cert!.subject, new RegExp(`CN=${h}`));
    assert.ok(svc.cert!.sans.includes(lab.ip(h)), `${h} SANs ${svc.cert!.sans}`);
    assert.is(svc.cert!.issuer, 'CN=pgtls CA');
    assert.ok(svc.tlsVersions.includes('TLSv1.2') && !svc.tlsVersions.includes('TLSv1'), `${h}: ${svc.tlsVersions}`);
    assert.ok(s.json!.hosts[h]!.problems.some((p) => /expires in \d+ days \(renewal window 30\)/.test(p)), s.json!.hosts[h]!.problems.join('\n'));
  }
  assert.equal(s.json!.hosts['pg3']!.services[0]!.poolPasswd, { file: '/etc/pgpool2/pool_passwd', missing: [], undecryptable: [] });
  // monitoring: Nagios WARNING (inside the renewal window), textfile metrics with the expiry in seconds
  const prom = join(work, 'pgtls.prom');
  const nagios = await pgtls(['status', '-i', inventory, '--nagios', '--format', 'prometheus', '--output', prom]);
  assert.is(nagios.code, 1, ok(nagios));
  assert.match(nagios.stdout, /^PGTLS WARNING - 3 certificates to re-issue: pg1, pg2, pg3 \| hosts=3 /);
  const metrics = readFileSync(prom, 'utf8');
  for (const h of HOSTS) {
    const m = new RegExp(`^pgtls_cert_expiry_seconds\\{host="${h}",service="(postgresql|pgpool)",endpoint="[^"]+",port="(5432|9999)"\\} (\\d+)$`, 'm').exec(metrics);
    assert.ok(m, `${h} expiry metric in:\n${metrics}`);
    assert.ok(Number(m![3]) > 8 * 86400 && Number(m![3]) <= 10 * 86400, `${h}: ${m![3]}`);
    assert.match(metrics, new RegExp(`^pgtls_tls_served\\{host="${h}",[^}]*\\} 1$`, 'm'));
    assert.match(metrics, new RegExp(`^pgtls_rules_without_tls\\{host="${h}",[^}]*\\} 0$`, 'm'));
  }
  assert.match(metrics, /^pgtls_plaintext_sessions\{host="pg1",[^}]*\} \d+$/m);
  // with the window the install used, the same certificates are fine
  const narrow = await status(['-e', 'pgtls_renew_before_days=5']);
  assert.is(narrow.code, 0, ok(narrow));
  shortLived = s.json!.hosts['pg1']!.services[0]!.cert!.subject;
});

const certDir = join(work, 'client-certs');
test('the next plain install re-issues the expiring certificates; status exits 0; client certificates fetched', async () => {
  if (!haveLab(lab)) return;
  const r = await install(['-e', JSON.stringify({ pgtls_cert_auth_users: ['appuser'], pgtls_fetch_client_certs: certDir })]);
  assert.is(r.code, 0, ok(r));
  const gencert = r.report!.hosts['pg1']!.tasks.find((t) => /certificates/.test(t.name) && t.changed);
  assert.ok(gencert?.summaries.some((s) => /expires in 9 days \(renew before 30\)/.test(s)), JSON.stringify(gencert));
  const s = await status();
  assert.is(s.code, 0, ok(s));
  for (const h of HOSTS) assert.ok(s.json!.hosts[h]!.services[0]!.cert!.daysLeft > 800, h);
  for (const h of HOSTS) assert.equal(s.json!.hosts[h]!.findings.filter((f) => f.severity === 'action'), [], h);
  assert.ok(shortLived);
  console.log(`  status (3 hosts, after install): ${statusMs} ms`);
});

test('fetched client certificate: 0600 key, CN = the cert-auth role, logs in with verify-full and no password', async () => {
  if (!haveLab(lab)) return;
  for (const h of ['pg1', 'pg2']) {
    const dir = join(certDir, h);
    assert.is(statSync(dir).mode & 0o777, 0o700);
    assert.is(statSync(join(dir, 'client.key')).mode & 0o777, 0o600);
    assert.is(new X509Certificate(readFileSync(join(dir, 'client.crt'))).subject, 'CN=appuser');
    const r = await run(
      'psql',
      ['-X', '-A', '-t', '-q', '-w', '-c', 'select ssl::text || client_dn from pg_stat_ssl where pid = pg_backend_pid()',
        `host=${lab.ip(h)} port=5432 dbname=postgres user=appuser sslmode=verify-full sslrootcert=${dir}/root.crt sslcert=${dir}/client.crt sslkey=${dir}/client.key connect_timeout=5`],
      { env: { ...process.env, PGPASSWORD: '', PGPASSFILE: '/dev/null' } },
    );
    assert.is(r.stdout.trim(), 'true/CN=appuser', `${h}: ${r.stderr}`);
  }
  // nothing new: no change, no key moved
  const again = await install(['-e', JSON.stringify({ pgtls_cert_auth_users: ['appuser'], pgtls_fetch_client_certs: certDir })]);
  assert.is(again.code, 0, ok(again));
  assert.is(totalChanged(again.report!), 0, ok(again));
});

test('an unreachable host: exit 3 when the others are fine', async () => {
  if (!haveLab(lab)) return;
  const inv = load(readFileSync(inventory, 'utf8')) as { all: { children: Record<string, { hosts: Record<string, unknown> }> } };
  inv.all.children['postgres']!.hosts['ghost'] = { ansible_host: '127.0.0.1', ansible_port: 1, ansible_connect_timeout: 3 };
  const ghost = join(work, 'ghost.yaml');
  writeFileSync(ghost, dump(inv));
  const r = await status([], ghost);
  assert.is(r.code, 3, ok(r));
  assert.is(r.json!.hosts['ghost']!.state, 'unreachable');
  assert.is(r.json!.hosts['pg1']!.state, 'ok');
  const nagios = await pgtls(['status', '-i', ghost, '--nagios']);
  assert.is(nagios.code, 3, ok(nagios));
  assert.match(nagios.stdout, /^PGTLS UNKNOWN - 1 host not inspected: ghost \|/);
  const ok0 = await pgtls(['status', '-i', inventory, '--nagios']);
  assert.is(ok0.code, 0, ok(ok0));
  assert.match(ok0.stdout, /^PGTLS OK - 3 hosts encrypted, next certificate expiry in \d+ days/);
});

// teardown, not a test: it is not counted (a test must be able to fail)
test.after(async () => {
  if (lab && process.env['LAB_KEEP'] !== '1') await lab.down();
});

test.run();
