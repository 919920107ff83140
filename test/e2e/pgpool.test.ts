// Pgpool-II on the lab: pg1 primary, pg2 standby, pg3 Debian pgpool2 in front of both
// (and a second lab with two pgpools, pg3 and pg4, for the one-node-at-a-time rollout).
// Through pgpool after install: TLS with the fleet CA (verify-full), SCRAM from pool_passwd,
// no plaintext; idempotent; --check changes no byte; failed checks put the node back as it was.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { join } from 'node:path';
import { dump, load } from 'js-yaml';
import { factProviders } from '../../src/facts/index.js';
import { fingerprint, servedCertFromController, sslRequest } from '../../src/tls/served-cert.js';
import { labAvailable, labUp, run, type Lab, type LabOptions } from './lab.js';
import { ROOT, pgtls, totalChanged, type CliRun } from './cli.js';

// Not under /tmp: lab hosts get a private /tmp.
mkdirSync('/var/tmp', { recursive: true });
const work = mkdtempSync('/var/tmp/pgtls-e2e-pgpool-');
const INSTALL = join(ROOT, 'playbooks', 'install.yaml');
const PGPOOL_PLAY = join(ROOT, 'playbooks', 'install-pgpool.yaml');
// Until install.yaml imports the pgpool play, "install" means install.yaml then install-pgpool.yaml.
const imported = readFileSync(INSTALL, 'utf8').includes('install-pgpool.yaml');
// /var/lib/jelastic (and /var/lib/pgtls) are shared by every lab host and this machine; ~postgres is private to each host.
const KEYS = '/var/lib/postgresql/keys/SSL-TLS';
const CONF = '/etc/pgpool2/pgpool.conf';
const PGPOOL_FILES = ['/etc/pgpool2', KEYS, '/var/lib/postgresql/.pgpoolkey'];
const PORT = 9999;

let lab: Lab;
let inventory = '';
let caDir = '';
let n = 0;
const json = () => join(work, `run${++n}.json`);

/** A lab plus its inventory: this test's CA and keys dirs (and the PostgreSQL paths while those facts are not registered). */
async function bringUp(name: string, opts: LabOptions): Promise<void> {
  lab = await labUp({ ...opts, dir: join(work, name) });
  caDir = join(work, name, 'pgtls-ca');
  const inv = load(readFileSync(lab.inventoryPath, 'utf8')) as { all: { vars: Record<string, unknown>; children: Record<string, Record<string, unknown>> } };
  inv.all.vars['pgtls_ca_dir'] = caDir;
  inv.all.vars['pgtls_keys_dir'] = KEYS;
  // the executor's record of originals: pgtls's default /var/lib/pgtls/state, private to each lab host
  if (!factProviders['pg_config_file'])
    inv.all.children['postgres']!['vars'] = { pg_config_file: '/etc/postgresql/15/main/postgresql.conf', pg_hba_file: '/etc/postgresql/15/main/pg_hba.conf', pg_os_user: 'postgres', pg_version: 15 };
  inventory = join(work, name, 'pgtls-inventory.yaml');
  writeFileSync(inventory, dump(inv));
}

/** install.yaml (+ the pgpool play while it is not imported); one CliRun per playbook. */
async function install(args: string[] = []): Promise<CliRun[]> {
  const out = [await pgtls(['run', INSTALL, '-i', inventory, ...args], { json: json() })];
  if (!imported && out[0]!.code === 0) out.push(await pgtls(['run', PGPOOL_PLAY, '-i', inventory, ...args], { json: json() }));
  return out;
}
const pgpoolRun = (args: string[] = []) => pgtls(['run', PGPOOL_PLAY, '-i', inventory, ...args], { json: json() });
const changed = (runs: CliRun[]) => runs.reduce((s, r) => s + (r.report ? totalChanged(r.report) : 1000), 0);
const okAll = (runs: CliRun[]) => runs.forEach((r) => assert.is(r.code, 0, r.stdout.slice(-3000) + r.stderr));

/** psql from the controller through pgpool; the password only in the child's environment. */
function psql(host: string, user: string, password: string, sslmode: string, sql = 'select 1') {
  const conninfo = `host=${lab.ip(host)} port=${PORT} user=${user} dbname=postgres sslmode=${sslmode} sslrootcert=${join(caDir, 'ca.crt')} connect_timeout=5`;
  return run('psql', ['-X', '-A', '-t', '-q', '-w', '-c', sql, conninfo], { env: { ...process.env, PGPASSWORD: password }, timeoutMs: 30_000 });
}

/** SHA-256 fingerprint of what pgpool on `host` serves, asked with a PostgreSQL SSLRequest from here. */
async function servedFingerprint(host: string): Promise<string | null> {
  const served = await servedCertFromController(lab.ip(host), PORT, 5000);
  return served.pem ? fingerprint(served.pem) : null;
}

async function fileFingerprint(host: string, path: string): Promise<string> {
  const r = await lab.exec(host, `cat ${path}`);
  return fingerprint(r.stdout);
}
const pgpoolPid = async (host: string) => (await lab.exec(host, 'cat /var/run/postgresql/pgpool.pid')).stdout.trim();
const hashes = (host = 'pg3') => lab.sha256Tree(host, PGPOOL_FILES);

test('lab: pg1 primary, pg2 standby, pg3 pgpool', async () => {
  await bringUp('lab3', { hosts: 3, postgres: ['pg1', 'pg2'], standby: { pg2: 'pg1' }, pgpool: { pg3: ['pg1', 'pg2'] } });
});

test('--check on the fresh lab changes no byte on the pgpool node and announces the restart', async () => {
  const before = await hashes();
  const runs = await install(['--check']);
  okAll(runs);
  assert.equal(await hashes(), before);
  const pg3 = runs.flatMap((r) => r.report!.hosts['pg3']?.tasks ?? []);
  assert.ok(pg3.some((t) => t.status === 'changed' && t.summaries.some((s) => /restart Pgpool-II/.test(s))), JSON.stringify(pg3));
});

test('install converges pgpool: settings, hostssl rules, pool_passwd entries, served certificate', async () => {
  const t0 = Date.now();
  const runs = await install();
  okAll(runs);
  console.log(`  install (first run): ${Date.now() - t0} ms`);
  const conf = (await lab.exec('pg3', `grep -E '^(ssl|enable_pool_hba|ssl_key|ssl_cert|ssl_ca_cert|pool_passwd) *=' ${CONF}`)).stdout;
  for (const l of ['ssl = on', 'enable_pool_hba = on', `ssl_key = '${KEYS}/server/server.key'`, `ssl_cert = '${KEYS}/server/server.crt'`, `ssl_ca_cert = '${KEYS}/server/root.crt'`, "pool_passwd = 'pool_passwd'"])
    assert.ok(conf.split('\n').includes(l), `${l} in\n${conf}`);
  const hba = (await lab.exec('pg3', 'grep -vE "^(#|$)" /etc/pgpool2/pool_hba.conf')).stdout;
  assert.match(hba, /^hostssl\s+all\s+all\s+0\.0\.0\.0\/0\s+scram-sha-256$/m);
  assert.match(hba, /^hostssl\s+all\s+all\s+::\/0\s+scram-sha-256$/m);
  assert.not.match(hba, /^host\s.*md5/m);
  const pp = (await lab.exec('pg3', 'cut -d: -f1 /etc/pgpool2/pool_passwd; stat -c "%a %U" /var/lib/postgresql/.pgpoolkey')).stdout;
  // the lab's pgpool entry is kept in place; webadmin and every pgtls_users role (appuser, replicator) follow
  assert.equal(pp.trim().split('\n'), ['pgpool', 'webadmin', 'appuser', 'replicator', '600 postgres']);
  assert.not.ok(await lab.exec('pg3', `test -e ${KEYS}/client`).then((r) => r.code === 0), 'no client certificate on a pgpool node');
  assert.is(await servedFingerprint('pg3'), await fileFingerprint('pg3', `${KEYS}/server/server.crt`));
  // the pgpool certificate is from the same CA as the PostgreSQL nodes'
  assert.is((await lab.exec('pg3', `cat ${KEYS}/server/root.crt`)).stdout, readFileSync(join(caDir, 'ca.crt'), 'utf8'));
  const report = JSON.stringify(runs.map((r) => r.report));
  for (const pw of [lab.passwords.webadmin, lab.passwords.app, lab.passwords.pgpool]) assert.not.ok(report.includes(pw), 'no password in the report');
  if (imported) {
    // the node's own tasks ran while its backends' play still ran; its restart only after that play
    const tasks = runs[0]!.report!.hosts['pg3']!.tasks;
    const ahead = tasks.filter((t) => t.ranAhead).map((t) => t.name);
    assert.ok(ahead.includes('Pgpool-II server certificate (no client certificate on pgpool nodes)'), JSON.stringify(ahead));
    assert.ok(ahead.includes('pool_passwd entries (AES, computed here; no password on any command line)'), JSON.stringify(ahead));
    assert.not.ok(tasks.some((t) => t.ranAhead && /restart/.test(t.name)), 'never the restart');
  }
});

test('through pgpool: verify-full + SCRAM as webadmin and appuser; plaintext refused', async () => {
  for (const [user, pw] of [['webadmin', lab.passwords.webadmin], ['appuser', lab.passwords.app]] as const) {
    const r = await psql('pg3', user, pw, 'verify-full', "select current_user || ' ' || (select ssl from pg_stat_ssl where pid = pg_backend_pid())");
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout.trim(), `${user} true`, 'pgpool -> backend is TLS too');
  }
  const plain = await psql('pg3', 'webadmin', lab.passwords.webadmin, 'disable');
  assert.is.not(plain.code, 0);
  assert.match(plain.stderr, /pool_hba\.conf|SSL off|no encryption/i);
  const wrong = await psql('pg3', 'appuser', 'wrong password', 'verify-full');
  assert.is.not(wrong.code, 0);
});

test('re-run: changed=0, pgpool not restarted', async () => {
  const pid = await pgpoolPid('pg3');
  const t0 = Date.now();
  const runs = await install();
  okAll(runs);
  console.log(`  install (re-run): ${Date.now() - t0} ms`);
  assert.is(changed(runs), 0, runs.map((r) => r.stdout).join('\n'));
  assert.is(await pgpoolPid('pg3'), pid);
});

test('--check on the converged lab: changed=0 and no byte changes', async () => {
  const before = await hashes();
  const runs = await install(['--check']);
  okAll(runs);
  assert.is(changed(runs), 0);
  assert.equal(await hashes(), before);
});

test('a password pgpool cannot decrypt (80 bytes) stops the run at validation, before any host', async () => {
  const before = await hashes();
  const r = await pgtls(['run', PGPOOL_PLAY, '-i', inventory, '-e', JSON.stringify({ pgtls_users: [{ name: 'appuser', password: 'x'.repeat(80) }] })]);
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, /80 bytes.*79 bytes/);
  assert.not.ok(r.stderr.includes('x'.repeat(80)));
  assert.equal(await hashes(), before);
});

test('a planted unreadable key is repaired before pgpool is restarted', async () => {
  const key = `${KEYS}/server/server.key`;
  await lab.exec('pg3', `chown root:root ${key} && chmod 600 ${key}`);
  const pid = await pgpoolPid('pg3');
  const r = await pgpoolRun();
  assert.is(r.code, 0, r.stdout + r.stderr);
  assert.is((await lab.exec('pg3', `stat -c '%a %U' ${key}`)).stdout.trim(), '600 postgres');
  assert.is.not(await pgpoolPid('pg3'), pid, 'restarted: the key ownership is read at start');
  assert.is((await psql('pg3', 'webadmin', lab.passwords.webadmin, 'verify-full')).code, 0);
});

test('keys pgpool cannot read: not restarted, this run\'s files put back, still serving', async () => {
  // /root is 0700: postgres cannot reach a key there, and pgpool would start WITHOUT SSL (silently)
  const before = await hashes();
  const pid = await pgpoolPid('pg3');
  const fp = await servedFingerprint('pg3');
  const r = await pgpoolRun(['-e', 'pgtls_keys_dir=/root/pgtls-keys']);
  assert.is(r.code, 1, r.stdout + r.stderr);
  assert.is(r.report!.hosts['pg3']!.status, 'failed');
  assert.match(r.report!.hosts['pg3']!.message ?? '', /cannot be read by postgres.*previous files restored/);
  assert.equal(await hashes(), before, 'pgpool.conf back as it was');
  assert.is((await lab.exec('pg3', 'ls -A /root/pgtls-keys/server')).stdout.trim(), '', 'new key and certificate removed');
  assert.is(await pgpoolPid('pg3'), pid, 'never restarted');
  assert.is(await servedFingerprint('pg3'), fp);
});

test('a SCRAM login that fails after the restart: pool_passwd put back, restarted again, still serving', async () => {
  const before = await hashes();
  const fp = await servedFingerprint('pg3');
  // pool_passwd gets an entry the backend rejects: the restart happens, the verify login fails
  const r = await pgpoolRun(['-e', 'webadmin_password=not-the-real-one']);
  assert.is(r.code, 1, r.stdout + r.stderr);
  assert.match(r.report!.hosts['pg3']!.message ?? '', /SCRAM login as webadmin.*previous files restored, restart Pgpool-II with the previous files done/);
  assert.equal(await hashes(), before);
  assert.is(await servedFingerprint('pg3'), fp);
  assert.is((await psql('pg3', 'webadmin', lab.passwords.webadmin, 'verify-full')).code, 0, 'the real password works again');
  // and the next normal run has nothing to do
  const again = await pgpoolRun();
  assert.is(again.code, 0, again.stdout);
  assert.is(totalChanged(again.report!), 0, again.stdout);
});

test('two pgpools, serial: 1: a client logging in every 100 ms through either one always gets in', async () => {
  await lab.down();
  await bringUp('lab4', { hosts: 4, postgres: ['pg1', 'pg2'], standby: { pg2: 'pg1' }, pgpool: { pg3: ['pg1', 'pg2'], pg4: ['pg1', 'pg2'] } });
  // The pgpool play on its own, backends untouched: clients can log in before (clear text replayed as md5),
  // during (through the other node) and after (TLS + SCRAM from pool_passwd; pgpool -> backend falls back to
  // plaintext md5 while the backends have no TLS). sslmode=prefer, as an existing client would have.
  const ticks: { pg3: boolean; pg4: boolean; login: boolean }[] = [];
  let running = true;
  const poller = (async () => {
    const deadline = Date.now() + 300_000; // bounded even if the run hangs
    while (running && Date.now() < deadline) {
      const t = Date.now();
      const [a, b] = await Promise.all([answers('pg3'), answers('pg4')]);
      const login = (await psql('pg3', 'webadmin', lab.passwords.webadmin, 'prefer')).code === 0 || (await psql('pg4', 'webadmin', lab.passwords.webadmin, 'prefer')).code === 0;
      ticks.push({ pg3: a, pg4: b, login });
      await new Promise((r) => setTimeout(r, Math.max(0, 100 - (Date.now() - t))));
    }
  })();
  const r = await pgpoolRun();
  running = false;
  await poller;
  assert.is(r.code, 0, r.stdout + r.stderr);
  const count = (f: (t: (typeof ticks)[number]) => boolean) => ticks.filter(f).length;
  console.log(`  ${ticks.length} polls: pg3 down ${count((t) => !t.pg3)}, pg4 down ${count((t) => !t.pg4)}, both down ${count((t) => !t.pg3 && !t.pg4)}, login failed ${count((t) => !t.login)}`);
  assert.is(count((t) => !t.pg3 && !t.pg4), 0, 'never both down');
  assert.is(count((t) => !t.login), 0, 'a client always got in through one of them');
  assert.ok(count((t) => !t.pg3) > 0 && count((t) => !t.pg4) > 0, 'each pgpool was restarted (and seen down) during the run');

  // then the whole install: both pgpools serve verify-full + SCRAM with TLS to the backends. They were
  // started while the backends had no TLS, so their connections to them were plaintext: the install
  // restarts them once the backends serve TLS, and proves it from the backends' pg_stat_ssl.
  // a client connected through each pgpool across the install: its backend connection is plaintext
  const held = ['pg3', 'pg4'].map((h) =>
    spawn('psql', ['-X', '-A', '-t', '-q', `host=${lab.ip(h)} port=${PORT} user=appuser dbname=postgres sslmode=require connect_timeout=10`], { env: { ...process.env, PGPASSWORD: lab.passwords.app } }),
  );
  for (const c of held) c.stdin.write('select 1;\n');
  const plainBefore = async () => Number(await lab.sql('pg1', `select count(*) from pg_stat_activity a join pg_stat_ssl l on l.pid = a.pid where not l.ssl and a.usename = 'appuser' and a.client_addr in ('${lab.ip('pg3')}', '${lab.ip('pg4')}')`));
  for (let i = 0; i < 60 && (await plainBefore()) < 2; i++) await new Promise((r) => setTimeout(r, 500));
  assert.ok((await plainBefore()) >= 2, 'both pgpools hold a plaintext connection to pg1');
  const whole = await install();
  for (const c of held) c.kill();
  okAll(whole);
  const restarts = whole.flatMap((r) => ['pg3', 'pg4'].flatMap((h) => r.report!.hosts[h]?.tasks ?? [])).flatMap((t) => t.summaries).filter((x) => /restart Pgpool-II/.test(x));
  assert.is(restarts.length, 2, restarts.join('\n'));
  for (const x of restarts) assert.match(x, /sessions to backend .* run without TLS \(opened before that backend served TLS\)/);
  for (const h of ['pg3', 'pg4']) {
    const app = await psql(h, 'appuser', lab.passwords.app, 'verify-full', 'select ssl from pg_stat_ssl where pid = pg_backend_pid()');
    assert.is(app.stdout.trim(), 't', `${h}: ${app.stderr}`);
  }
  // clients held through both pgpools again: every backend connection they open now is TLS
  const again = ['pg3', 'pg4'].map((h) =>
    spawn('psql', ['-X', '-A', '-t', '-q', `host=${lab.ip(h)} port=${PORT} user=appuser dbname=postgres sslmode=verify-full sslrootcert=${join(caDir, 'ca.crt')} connect_timeout=10`], { env: { ...process.env, PGPASSWORD: lab.passwords.app } }),
  );
  for (const c of again) c.stdin.write('select 1;\n');
  try {
    // pg1 is the primary: every Pgpool-II session connects to it (the standby only when load balancing picks it)
    for (const b of ['pg1']) {
      const q = `select l.ssl from pg_stat_activity a join pg_stat_ssl l on l.pid = a.pid where a.usename = 'appuser' and a.client_addr in ('${lab.ip('pg3')}', '${lab.ip('pg4')}')`;
      let rows = '';
      for (let i = 0; i < 60 && (rows = await lab.sql(b, q)).split('\n').filter(Boolean).length < 2; i++) await new Promise((r) => setTimeout(r, 500));
      assert.ok(rows.split('\n').filter(Boolean).length >= 2, `${b}: sessions from both pgpools: ${rows}`);
      assert.not.match(rows, /f/, `${b}: every session from a Pgpool-II host is TLS`);
    }
  } finally {
    for (const c of again) c.kill();
  }
});

/** pgpool answers a PostgreSQL SSLRequest within 500 ms (up, whatever its TLS state). */
function answers(host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(PORT, lab.ip(host), () => {
      sock.write(sslRequest());
    });
    const done = (ok: boolean) => (sock.destroy(), resolve(ok));
    sock.setTimeout(500, () => done(false));
    sock.on('error', () => done(false));
    sock.once('data', (d) => done(d[0] === 0x53 || d[0] === 0x4e));
  });
}

test.after(async () => {
  await lab?.down();
});

if (labAvailable()) test.run();
else console.log('pgpool.test: skipped, needs root, iproute2 and sshd (run .ci/run)');
