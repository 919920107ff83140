// Pgpool-II on the lab: pg1 primary, pg2 standby, pg3 Debian pgpool2 in front of both
// (and a second lab with two pgpools, pg3 and pg4, for the one-node-at-a-time rollout).
// Through pgpool after install: TLS with the fleet CA (verify-full), SCRAM from pool_passwd,
// no plaintext; idempotent; --check changes no byte; failed checks put the node back as it was.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labAvailable, labUp, run, type Lab } from './lab.js';
import { ROOT, pgtls, totalChanged, type CliRun } from './cli.js';

const work = mkdtempSync(join(tmpdir(), 'pgtls-e2e-pgpool-'));
const INSTALL = join(ROOT, 'playbooks', 'install.yaml');
const PGPOOL_PLAY = join(ROOT, 'playbooks', 'install-pgpool.yaml');
// Until install.yaml imports the pgpool play, "install" means install.yaml then install-pgpool.yaml.
const imported = readFileSync(INSTALL, 'utf8').includes('install-pgpool.yaml');
const KEYS = '/var/lib/jelastic/keys/SSL-TLS';
const CONF = '/etc/pgpool2/pgpool.conf';
const PGPOOL_FILES = ['/etc/pgpool2', KEYS, '/var/lib/postgresql/.pgpoolkey'];
const PORT = 9999;

let lab: Lab;
let n = 0;
const json = () => join(work, `run${++n}.json`);

/** install.yaml (+ the pgpool play while it is not imported); one CliRun per playbook. */
async function install(args: string[] = []): Promise<CliRun[]> {
  const out = [await pgtls(['run', INSTALL, '-i', lab.inventoryPath, ...args], { json: json() })];
  if (!imported && out[0]!.code === 0) out.push(await pgtls(['run', PGPOOL_PLAY, '-i', lab.inventoryPath, ...args], { json: json() }));
  return out;
}
const changed = (runs: CliRun[]) => runs.reduce((s, r) => s + (r.report ? totalChanged(r.report) : 1000), 0);
const okAll = (runs: CliRun[]) => runs.forEach((r) => assert.is(r.code, 0, r.stdout.slice(-3000) + r.stderr));

/** psql from the controller through pgpool; the password only in the child's environment. */
function psql(host: string, user: string, password: string, sslmode: string, sql = 'select 1') {
  const conninfo = `host=${lab.ip(host)} port=${PORT} user=${user} dbname=postgres sslmode=${sslmode} sslrootcert=${join(lab.dir, 'ca', 'ca.crt')} connect_timeout=5`;
  return run('psql', ['-X', '-A', '-t', '-q', '-w', '-c', sql, conninfo], { env: { ...process.env, PGPASSWORD: password }, timeoutMs: 30_000 });
}

/** SHA-256 fingerprint of what pgpool on `host` serves, asked with a PostgreSQL SSLRequest from here. */
function servedFingerprint(host: string): Promise<string | null> {
  return new Promise((resolve) => {
    const sock = net.connect(PORT, lab.ip(host), () => {
      const req = Buffer.alloc(8);
      req.writeInt32BE(8, 0);
      req.writeInt32BE(80877103, 4);
      sock.write(req);
    });
    sock.setTimeout(5000, () => (sock.destroy(), resolve(null)));
    sock.on('error', () => resolve(null));
    sock.once('data', async (d) => {
      if (d[0] !== 0x53) return sock.destroy(), resolve(null);
      const tls = await import('node:tls');
      const t = tls.connect({ socket: sock, rejectUnauthorized: false }, () => {
        const fp = new X509Certificate(t.getPeerCertificate().raw).fingerprint256;
        t.destroy();
        resolve(fp);
      });
      t.on('error', () => resolve(null));
    });
  });
}

async function fileFingerprint(host: string, path: string): Promise<string> {
  const r = await lab.exec(host, `cat ${path}`);
  return new X509Certificate(r.stdout).fingerprint256;
}
const pgpoolPid = async (host: string) => (await lab.exec(host, 'cat /var/run/postgresql/pgpool.pid')).stdout.trim();
const hashes = (host = 'pg3') => lab.sha256Tree(host, PGPOOL_FILES);

test('lab: pg1 primary, pg2 standby, pg3 pgpool', async () => {
  lab = await labUp({ hosts: 3, dir: join(work, 'lab'), postgres: ['pg1', 'pg2'], standby: { pg2: 'pg1' }, pgpool: { pg3: ['pg1', 'pg2'] } });
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
  assert.equal(pp.trim().split('\n'), ['pgpool', 'webadmin', 'appuser', '600 postgres']);
  assert.not.ok(await lab.exec('pg3', `test -e ${KEYS}/client`).then((r) => r.code === 0), 'no client certificate on a pgpool node');
  assert.is(await servedFingerprint('pg3'), await fileFingerprint('pg3', `${KEYS}/server/server.crt`));
  // the pgpool certificate is from the same CA as the PostgreSQL nodes'
  assert.is((await lab.exec('pg3', `cat ${KEYS}/server/root.crt`)).stdout, readFileSync(join(lab.dir, 'ca', 'ca.crt'), 'utf8'));
  const report = JSON.stringify(runs.map((r) => r.report));
  for (const pw of [lab.passwords.webadmin, lab.passwords.app, lab.passwords.pgpool]) assert.not.ok(report.includes(pw), 'no password in the report');
});

test('through pgpool: verify-full + SCRAM as webadmin and appuser; plaintext refused', async () => {
  for (const [user, pw] of [['webadmin', lab.passwords.webadmin], ['appuser', lab.passwords.app]] as const) {
    const r = await psql('pg3', user, pw, 'verify-full', "select current_user || ' ' || (select ssl from pg_stat_ssl where pid = pg_backend_pid())");
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout.trim(), `${user} t`, 'pgpool -> backend is TLS too');
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
  const r = await pgtls(['run', PGPOOL_PLAY, '-i', lab.inventoryPath, '-e', JSON.stringify({ pgtls_users: [{ name: 'appuser', password: 'x'.repeat(80) }] })]);
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, /80 bytes.*79 bytes/);
  assert.not.ok(r.stderr.includes('x'.repeat(80)));
  assert.equal(await hashes(), before);
});

test('a planted unreadable key is repaired before pgpool is restarted', async () => {
  const key = `${KEYS}/server/server.key`;
  await lab.exec('pg3', `chown root:root ${key} && chmod 600 ${key}`);
  const pid = await pgpoolPid('pg3');
  const r = await pgtls(['run', PGPOOL_PLAY, '-i', lab.inventoryPath], { json: json() });
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
  const r = await pgtls(['run', PGPOOL_PLAY, '-i', lab.inventoryPath, '-e', 'pgtls_keys_dir=/root/pgtls-keys'], { json: json() });
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
  const r = await pgtls(['run', PGPOOL_PLAY, '-i', lab.inventoryPath, '-e', 'webadmin_password=not-the-real-one'], { json: json() });
  assert.is(r.code, 1, r.stdout + r.stderr);
  assert.match(r.report!.hosts['pg3']!.message ?? '', /SCRAM login as webadmin.*previous files restored, restart Pgpool-II with the previous files done/);
  assert.equal(await hashes(), before);
  assert.is(await servedFingerprint('pg3'), fp);
  assert.is((await psql('pg3', 'webadmin', lab.passwords.webadmin, 'verify-full')).code, 0, 'the real password works again');
  // and the next normal run has nothing to do
  const again = await pgtls(['run', PGPOOL_PLAY, '-i', lab.inventoryPath], { json: json() });
  assert.is(again.code, 0, again.stdout);
  assert.is(totalChanged(again.report!), 0, again.stdout);
});

test('two pgpools, serial: 1 — a client polling every 100 ms always finds one of them up', async () => {
  await lab.down();
  lab = await labUp({
    hosts: 4,
    dir: join(work, 'lab4'),
    postgres: ['pg1', 'pg2'],
    standby: { pg2: 'pg1' },
    pgpool: { pg3: ['pg1', 'pg2'], pg4: ['pg1', 'pg2'] },
  });
  // PostgreSQL first, so that the timed run restarts only pgpools
  const pg = await pgtls(['run', INSTALL, '-i', lab.inventoryPath, '--limit', 'postgres'], { json: json() });
  assert.is(pg.code, 0, pg.stdout + pg.stderr);

  const ticks: { pg3: boolean; pg4: boolean }[] = [];
  let running = true;
  const poller = (async () => {
    const deadline = Date.now() + 300_000; // bounded even if the run hangs
    while (running && Date.now() < deadline) {
      const t = Date.now();
      const [a, b] = await Promise.all([answers('pg3'), answers('pg4')]);
      ticks.push({ pg3: a, pg4: b });
      await new Promise((r) => setTimeout(r, Math.max(0, 100 - (Date.now() - t))));
    }
  })();
  const r = await pgtls(['run', imported ? INSTALL : PGPOOL_PLAY, '-i', lab.inventoryPath], { json: json() });
  running = false;
  await poller;
  assert.is(r.code, 0, r.stdout + r.stderr);
  const down = ticks.filter((t) => !t.pg3 && !t.pg4).length;
  console.log(`  ${ticks.length} polls: pg3 down ${ticks.filter((t) => !t.pg3).length}, pg4 down ${ticks.filter((t) => !t.pg4).length}, both down ${down}`);
  assert.is(down, 0, 'never both down');
  assert.ok(ticks.some((t) => !t.pg3) && ticks.some((t) => !t.pg4), 'each pgpool was restarted (and seen down) during the run');
  for (const h of ['pg3', 'pg4']) assert.is((await psql(h, 'appuser', lab.passwords.app, 'verify-full')).code, 0);
});

/** pgpool answers a PostgreSQL SSLRequest within 500 ms (up, whatever its TLS state). */
function answers(host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(PORT, lab.ip(host), () => {
      const req = Buffer.alloc(8);
      req.writeInt32BE(8, 0);
      req.writeInt32BE(80877103, 4);
      sock.write(req);
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
