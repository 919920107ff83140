// Encryption in transit on every live connection (issue 8, points 2-5), on one lab: pg1 PostgreSQL,
// pg2 Pgpool-II in front of it with its health check and streaming-replication check on.
// A client session opened with sslmode=disable before the install is reported by the install and by
// status (exit 1, plaintext-session), then ended by pgtls_terminate_plaintext=true (status exits 0);
// every session from the Pgpool-II host to the backend is ssl = t; status exits 1 on a planted remote
// trust rule and on a server accepting TLSv1.2 under pgtls_min_tls=TLSv1.3; pgtls_reject_plaintext
// puts hostnossl … reject rules in pg_hba.conf and pool_hba.conf; a bad pgtls_min_tls is exit 2;
// Pgpool-II given another CA as ssl_ca_cert cannot reach its backend (its verification is real).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump, load } from 'js-yaml';
import { pgtls, type CliRun } from './cli.js';
import { labAvailable, labUp, run, type Lab } from './lab.js';

mkdirSync('/var/tmp', { recursive: true });
const work = mkdtempSync('/var/tmp/pgtls-e2e-transit-');
const PG_HBA = '/etc/postgresql/15/main/pg_hba.conf';
const POOL_CONF = '/etc/pgpool2/pgpool.conf';
const APP = 'pgtls-e2e-plain';

interface Finding {
  code: string;
  severity: string;
  message: string;
}
interface StatusJson {
  exitCode: number;
  hosts: Record<string, { state: string; findings: Finding[]; services: { service: string; tlsVersions: string[] }[] }>;
}

let lab: Lab;
let inventory = '';
let n = 0;
const ok = (r: { code: number; stdout: string; stderr: string }) => `exit ${r.code}\n${r.stdout.slice(-5000)}\n${r.stderr.slice(-2000)}`;
const install = (extra: string[] = []) => pgtls(['run', 'playbooks/install.yaml', '-i', inventory, ...extra], { json: join(work, `run${++n}.json`) });
async function status(extra: string[] = []): Promise<CliRun & { json: StatusJson }> {
  const r = await pgtls(['status', '-i', inventory, '--json', ...extra]);
  let json: StatusJson;
  try {
    json = JSON.parse(r.stdout) as StatusJson;
  } catch {
    throw new Error(`status printed no JSON: ${ok(r)}`);
  }
  return { ...r, json };
}
const codes = (j: StatusJson, host: string) => j.hosts[host]!.findings.filter((f) => f.severity === 'action').map((f) => f.code);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// stop, wait until the old processes are gone (a loaded machine is slow to let go of port 9999), start
const RESTART_PGPOOL = `/etc/init.d/pgpool2 stop >/dev/null 2>&1; for i in $(seq 150); do pgrep -x pgpool >/dev/null || break; sleep 0.2; done; /etc/init.d/pgpool2 start`;
const pgpoolLog = async () => (await lab.exec('pg2', 'tail -n 30 /var/log/pgpool/*.log 2>/dev/null')).stdout;

/** Polls `probe` until it returns a truthy value or the deadline passes (the machine is shared: no fixed sleeps). */
async function until<T>(what: string, probe: () => Promise<T>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(500);
  }
}

/** A psql session kept open (its stdin never ends), as a long-lived application connection would be. */
interface OpenSession {
  child: ChildProcessWithoutNullStreams;
  out: () => string;
  exited: () => boolean;
}
async function openSession(conninfo: string, password: string): Promise<OpenSession> {
  const child = spawn('psql', ['-X', '-A', '-t', '-q', conninfo], { env: { ...process.env, PGPASSWORD: password, PGCONNECT_TIMEOUT: '10' } });
  let out = '';
  let exited = false;
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  child.on('exit', () => (exited = true));
  child.stdin.write("select 'ready';\n");
  await until('the plaintext session to be up', async () => out.includes('ready') || exited, 30_000);
  assert.ok(out.includes('ready'), `psql: ${out}`);
  return { child, out: () => out, exited: () => exited };
}

/** pg1's sessions coming from the Pgpool-II host, with their TLS state. */
async function pgpoolSessions(): Promise<{ ssl: boolean; type: string; user: string }[]> {
  const rows = await lab.sql(
    'pg1',
    `select l.ssl, a.backend_type, coalesce(a.usename, '') from pg_stat_activity a join pg_stat_ssl l on l.pid = a.pid where a.client_addr = '${lab.ip('pg2')}'`,
  );
  return rows
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [ssl, type, user] = l.split('|');
      return { ssl: ssl === 't', type: type!, user: user! };
    });
}

let plain: OpenSession | undefined;

test('lab: pg1 PostgreSQL, pg2 Pgpool-II (health check and sr_check on); a session opened with sslmode=disable', async () => {
  assert.ok(labAvailable(), 'the lab is needed');
  lab = await labUp({ hosts: 2, postgres: ['pg1'], pgpool: { pg2: ['pg1'] }, dir: join(work, 'lab') });
  const inv = load(readFileSync(lab.inventoryPath, 'utf8')) as { all: { vars: Record<string, unknown>; children: Record<string, unknown> } };
  inv.all.vars['pgtls_ca_dir'] = join(work, 'ca');
  delete inv.all.children['lab'];
  inventory = join(work, 'inventory.yaml');
  writeFileSync(inventory, dump(inv));
  // Pgpool-II's health check connects for a moment every 2 s: pg1 logs each connection and its TLS
  await lab.sql('pg1', 'alter system set log_connections = on;\nselect pg_reload_conf();');
  // the lab leaves the health check off: on, every 2 s, as the pgpool role (password from pool_passwd)
  const conf = await lab.exec(
    'pg2',
    `sed -i -E '/^#?[[:space:]]*health_check_(period|user|password)[[:space:]]*=/d' ${POOL_CONF} && ` +
      `printf "health_check_period = 2\nhealth_check_user = 'pgpool'\nhealth_check_password = ''\n" >> ${POOL_CONF} && ` +
      `grep -E '^(sr_check_period|health_check_period)' ${POOL_CONF} && ${RESTART_PGPOOL}`,
  );
  assert.is(conf.code, 0, conf.stderr + conf.stdout);
  assert.match(conf.stdout, /sr_check_period = 10/);
  // up again and through to pg1 (before the install: plaintext all the way)
  const through = () =>
    run('psql', ['-X', '-A', '-t', '-q', '-c', 'select ssl from pg_stat_ssl where pid = pg_backend_pid()', `host=${lab.ip('pg2')} port=9999 dbname=postgres user=appuser sslmode=disable connect_timeout=5`], {
      env: { ...process.env, PGPASSWORD: lab.passwords.app },
      timeoutMs: 20_000,
    });
  try {
    const r = await until('Pgpool-II to let a client through to pg1', async () => ((await through()).stdout.trim() === 'f' ? true : null), 90_000);
    assert.ok(r);
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${await pgpoolLog()}`);
  }
  plain = await openSession(`host=${lab.ip('pg1')} port=5432 dbname=postgres user=appuser sslmode=disable application_name=${APP}`, lab.passwords.app);
});

test('bad pgtls_min_tls: exit 2 before any connection, naming the field', async () => {
  for (const args of [['status', '-i', inventory, '-e', 'pgtls_min_tls=TLSv1.1'], ['run', 'playbooks/install.yaml', '-i', inventory, '-e', 'pgtls_min_tls=SSLv3']]) {
    const r = await pgtls(args);
    assert.is(r.code, 2, `${args.join(' ')}: ${ok(r)}`);
    assert.match(r.stderr, /-e: pgtls_min_tls: must be TLSv1\.2 or TLSv1\.3/);
    assert.match(r.stderr, /bad input, no host was contacted/);
  }
});

test('install: reports the plaintext session (count, address, user, application_name) and leaves it running', async () => {
  const r = await install();
  assert.is(r.code, 0, ok(r));
  const task = r.report!.hosts['pg1']!.tasks.find((t) => /TCP sessions without TLS/.test(t.name));
  assert.ok(task, JSON.stringify(r.report!.hosts['pg1']!.tasks.map((t) => t.name)));
  const w = task!.warnings.join('\n');
  assert.match(w, new RegExp(`1 TCP client session without TLS .*1× \\S+ user appuser application_name ${APP}`), w);
  assert.match(w, /pgtls_terminate_plaintext=true/);
  assert.is(task!.changed, false);
  assert.match(r.stdout, new RegExp(`application_name ${APP}`), 'the warning is on the console too');
  assert.not.ok(plain!.exited(), 'not ended without pgtls_terminate_plaintext');
  plain!.child.stdin.write("select 'still here';\n");
  await until('the session to answer', async () => plain!.out().includes('still here'), 20_000);
});

test('every session from the Pgpool-II host to its backend is TLS (pooled, health check, sr_check)', async () => {
  const LOG = '/var/log/postgresql/postgresql-15-main.log';
  const offset = Number((await lab.exec('pg1', `wc -c < ${LOG}`)).stdout.trim());
  // a client session through Pgpool-II, kept open: its backend connection is in use
  const through = await openSession(`host=${lab.ip('pg2')} port=9999 dbname=postgres user=appuser sslmode=verify-full sslrootcert=${join(work, 'ca', 'ca.crt')} application_name=via-pgpool`, lab.passwords.app);
  let seen: { ssl: boolean; type: string; user: string }[] = [];
  try {
    await until('a session from Pgpool-II as appuser', async () => {
      seen = await pgpoolSessions();
      return seen.some((x) => x.user === 'appuser');
    });
  } finally {
    through.child.kill();
  }
  assert.equal(seen.filter((x) => !x.ssl), [], `every session from Pgpool-II in pg_stat_ssl is TLS: ${JSON.stringify(seen)}`);
  // the checks' connections (user pgpool: health check every 2 s, sr_check) are short-lived: from pg1's log
  const checks = await until('connections of the health check in pg1\'s log', async () => {
    const lines = (await lab.exec('pg1', `tail -c +${offset + 1} ${LOG} | grep 'connection authorized: user=pgpool'`)).stdout.split('\n').filter(Boolean);
    return lines.length >= 3 ? lines : null;
  });
  assert.equal(checks!.filter((l) => !/SSL enabled \(protocol=TLSv1\.[23]/.test(l)), [], checks!.join('\n'));
  // the install's own proof (pgpool_backend_tls) passed on pg1
  const conf = await lab.exec('pg2', `grep -E '^ssl_ca_cert' ${POOL_CONF}`);
  assert.match(conf.stdout, /^ssl_ca_cert = '.*\/server\/root\.crt'$/m, 'Pgpool-II checks the backends against the fleet CA');
});

test('status: exit 1, plaintext-session on pg1 (table and --json); nothing else needs action', async () => {
  const s = await status();
  assert.is(s.code, 1, ok(s));
  assert.equal(codes(s.json, 'pg1'), ['plaintext-session'], JSON.stringify(s.json.hosts['pg1']!.findings));
  assert.match(s.json.hosts['pg1']!.findings[0]!.message, new RegExp(`user appuser application_name ${APP}`));
  assert.equal(codes(s.json, 'pg2'), []);
  const table = await pgtls(['status', '-i', inventory]);
  assert.is(table.code, 1);
  assert.match(table.stdout, /^ {2}! \[plaintext-session\] 1 TCP client session without TLS/m);
  assert.match(table.stdout, new RegExp(`sessions w/o TLS +\\S+ appuser ${APP} \\(pid \\d+\\)`));
});

test('pgtls_terminate_plaintext=true ends it (the client sees the termination); then status exits 0', async () => {
  const check = await install(['--check', '-e', 'pgtls_terminate_plaintext=true']);
  assert.is(check.code, 0, ok(check));
  assert.not.ok(plain!.exited(), '--check ends nothing');
  const r = await install(['-e', 'pgtls_terminate_plaintext=true']);
  assert.is(r.code, 0, ok(r));
  const task = r.report!.hosts['pg1']!.tasks.find((t) => /TCP sessions without TLS/.test(t.name))!;
  assert.is(task.changed, true, JSON.stringify(task));
  assert.match(task.summaries.join('\n'), /end 1 TCP session without TLS \(pg_terminate_backend\)/);
  plain!.child.stdin.write("select 'after';\n");
  await until('the plaintext session to be ended', async () => plain!.exited() || /terminating connection|server closed the connection/.test(plain!.out()), 20_000);
  assert.match(plain!.out(), /terminating connection due to administrator command|server closed the connection/);
  plain!.child.kill();
  assert.equal((await pgpoolSessions()).filter((x) => !x.ssl), [], "Pgpool-II's sessions are never ended (and all TLS)");
  const s = await status();
  assert.is(s.code, 0, ok(s));
  // a client reconnecting now gets TLS or nothing
  const again = await run('psql', ['-X', '-A', '-t', '-q', '-c', 'select 1', `host=${lab.ip('pg1')} dbname=postgres user=appuser sslmode=disable connect_timeout=10`], {
    env: { ...process.env, PGPASSWORD: lab.passwords.app },
  });
  assert.is.not(again.code, 0);
  assert.match(again.stderr, /no encryption/);
});

test('status: exit 1 (hba-no-tls) on a planted "host all all 10.0.0.0/8 trust" rule; 0 once it is gone', async () => {
  await lab.exec('pg1', `cp -p ${PG_HBA} ${PG_HBA}.e2e && echo 'host all all 10.0.0.0/8 trust' >> ${PG_HBA}`);
  try {
    const s = await status();
    assert.is(s.code, 1, ok(s));
    assert.equal(codes(s.json, 'pg1'), ['hba-no-tls']);
    assert.match(s.json.hosts['pg1']!.findings[0]!.message, /lets remote clients in without TLS and without a password \(1 rule: line \d+: host all all 10\.0\.0\.0 255\.0\.0\.0 trust\)/);
    // the install warns about it (and leaves it)
    const r = await install(['--check', '--tags', 'hba']);
    assert.match(r.stdout, /'host … trust' still accepts connections without TLS from remote addresses/);
  } finally {
    await lab.exec('pg1', `mv -f ${PG_HBA}.e2e ${PG_HBA}`);
  }
  assert.is((await status()).code, 0);
});

test('status: exit 1 (min-tls-below-policy) when the servers accept TLSv1.2 and pgtls_min_tls is TLSv1.3', async () => {
  const s = await status(['-e', 'pgtls_min_tls=TLSv1.3']);
  assert.is(s.code, 1, ok(s));
  for (const h of ['pg1', 'pg2']) {
    assert.ok(s.json.hosts[h]!.services[0]!.tlsVersions.includes('TLSv1.2'), h);
    assert.equal(codes(s.json, h), ['min-tls-below-policy'], h);
  }
  assert.match(s.json.hosts['pg2']!.findings[0]!.message, /^Pgpool-II accepts TLSv1\.2, below pgtls_min_tls TLSv1\.3$/);
});

test('pgtls_reject_plaintext=true: hostnossl … reject above the remote rules (pg_hba and pool_hba); loopback untouched; status 0', async () => {
  const before = (await lab.exec('pg1', `grep -E '^(host|hostssl)[[:space:]].*(127\\.0\\.0\\.1|::1)' ${PG_HBA}`)).stdout;
  const r = await install(['-e', 'pgtls_reject_plaintext=true']);
  assert.is(r.code, 0, ok(r));
  const hba = (await lab.exec('pg1', `grep -vE '^[[:space:]]*(#|$)' ${PG_HBA}`)).stdout.split('\n');
  const first = hba.findIndex((l) => /^host/.test(l) && !/127\.0\.0\.1|::1\//.test(l));
  assert.match(hba[first]!, /^hostnossl\s+all\s+all\s+0\.0\.0\.0\/0\s+reject$/, hba.join('\n'));
  for (const re of [/^hostnossl\s+all\s+all\s+::\/0\s+reject$/m, /^hostnossl\s+replication\s+all\s+0\.0\.0\.0\/0\s+reject$/m, /^hostnossl\s+replication\s+all\s+::\/0\s+reject$/m])
    assert.match(hba.join('\n'), re);
  assert.is((await lab.exec('pg1', `grep -E '^(host|hostssl)[[:space:]].*(127\\.0\\.0\\.1|::1)' ${PG_HBA}`)).stdout, before, 'loopback rules as they were');
  const pool = (await lab.exec('pg2', 'grep -vE "^[[:space:]]*(#|$)" /etc/pgpool2/pool_hba.conf')).stdout;
  assert.match(pool, /^hostnossl\s+all\s+all\s+0\.0\.0\.0\/0\s+reject$/m);
  assert.not.match(pool, /replication/);
  const refused = await run('psql', ['-X', '-A', '-t', '-q', '-c', 'select 1', `host=${lab.ip('pg1')} dbname=postgres user=appuser sslmode=disable connect_timeout=10`], {
    env: { ...process.env, PGPASSWORD: lab.passwords.app },
  });
  assert.match(refused.stderr, /rejects connection .*no encryption/);
  const s = await status();
  assert.is(s.code, 0, ok(s));
  const again = await install(['-e', 'pgtls_reject_plaintext=true']);
  assert.is(again.code, 0, ok(again));
  assert.is(Object.values(again.report!.hosts).reduce((k, h) => k + h.recap.changed, 0), 0, ok(again));
});

// Last: it leaves Pgpool-II with its backend detached (it fails over the only node it cannot verify).
test("Pgpool-II's backend verification is real: with another CA as ssl_ca_cert it cannot reach pg1", async () => {
  const other = '/var/lib/postgresql/other-ca.crt';
  const made = await lab.exec(
    'pg2',
    `openssl req -x509 -newkey rsa:2048 -nodes -keyout /dev/null -subj '/CN=another CA' -days 2 -out ${other} 2>&1 && chown postgres ${other} && ` +
      `cp -p ${POOL_CONF} ${POOL_CONF}.e2e && sed -i "s#^ssl_ca_cert = .*#ssl_ca_cert = '${other}'#" ${POOL_CONF} && grep -c '^ssl_ca_cert' ${POOL_CONF} && ${RESTART_PGPOOL}`,
  );
  assert.is(made.code, 0, made.stdout + made.stderr);
  assert.match((await lab.exec('pg2', `grep '^ssl_ca_cert' ${POOL_CONF}`)).stdout, /other-ca\.crt/);
  const login = () =>
    run('psql', ['-X', '-A', '-t', '-q', '-c', 'select 1', `host=${lab.ip('pg2')} port=9999 dbname=postgres user=appuser sslmode=verify-full sslrootcert=${join(work, 'ca', 'ca.crt')} connect_timeout=10`], {
      env: { ...process.env, PGPASSWORD: lab.passwords.app },
      timeoutMs: 30_000,
    });
  const r = (await until('Pgpool-II to answer', async () => {
    const x = await login();
    return /Connection refused|starting up/i.test(x.stderr) ? null : x;
  }))!;
  assert.is.not(r.stdout.trim(), '1', 'no login through a Pgpool-II that cannot verify its backend');
  const log = (await lab.exec('pg2', 'cat /var/log/pgpool/*.log /var/log/postgresql/pgpool* 2>/dev/null | tail -200')).stdout;
  console.log(`  through Pgpool-II with another CA: ${r.stderr.trim().split('\n')[0]}${/certificate verify failed/.test(log) ? ' (log: certificate verify failed)' : ''}`);
  assert.equal((await pgpoolSessions()).filter((x) => x.user === 'appuser'), [], 'no session reached pg1');
  await lab.exec('pg2', `mv -f ${POOL_CONF}.e2e ${POOL_CONF}; rm -f ${other}`);
});

// teardown, not a test: it is not counted (a test must be able to fail)
test.after(async () => {
  plain?.child.kill();
  if (lab && process.env['LAB_KEEP'] !== '1') await lab.down();
});

test.run();
