// playbooks/uninstall.yaml on a real lab: pg1 primary, pg2 streaming standby, pg3 Pgpool-II in front
// of both. install, then uninstall: every config file byte-identical to before the install (but for
// hand edits made after it, which are kept, with a warning), every file the install wrote gone,
// plain logins work again, roles keep their SCRAM verifiers; a second uninstall changes nothing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump, load } from 'js-yaml';
import { pgtls, totalChanged, type CliRun } from './cli.js';
import { labAvailable, labUnavailableReason, labUp, run, type Lab, haveLab } from './lab.js';

// Not under /tmp: lab hosts get a private /tmp.
mkdirSync('/var/tmp', { recursive: true });
const work = mkdtempSync('/var/tmp/pgtls-e2e-uninstall-');
const CONF = '/etc/postgresql/15/main';
const KEYS = '/var/lib/jelastic/keys/SSL-TLS';
const STATE = '/var/lib/pgtls/state';
/** Everything the install may touch, per host (the keys and the records of originals included). */
const TREE = ['/etc/postgresql', '/etc/pgpool2', '/var/lib/postgresql/15/main/postgresql.auto.conf', '/var/lib/postgresql/.pgpoolkey', '/var/lib/jelastic', '/var/lib/pgtls'];
const HOSTS = ['pg1', 'pg2', 'pg3'];
const HAND_EDIT = 'work_mem = 8MB  # set by hand after the install';

let lab: Lab;
let inventory = '';
let caDir = '';
let n = 0;
const runPb = (pb: string, extra: string[] = []) => pgtls(['run', `playbooks/${pb}`, '-i', inventory, ...extra], { json: join(work, `run${++n}.json`) });
const ok = (r: CliRun) => `exit ${r.code}\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-2000)}`;
const trees = () => Promise.all(HOSTS.map((h) => lab.sha256Tree(h, TREE)));
const warningsOf = (r: CliRun) => Object.entries(r.report!.hosts).flatMap(([h, x]) => x.tasks.flatMap((t) => t.warnings).map((w) => `${h}: ${w}`));

/** psql from this machine; the password only in the child's environment. */
function psql(host: string, port: number, user: string, password: string, sslmode: string, sql = 'select 1') {
  const conninfo = `host=${lab.ip(host)} port=${port} user=${user} dbname=postgres sslmode=${sslmode} connect_timeout=5`;
  return run('psql', ['-X', '-A', '-t', '-q', '-w', '-c', sql, conninfo], { env: { ...process.env, PGPASSWORD: password, PGPASSFILE: '/dev/null' }, timeoutMs: 30_000 });
}

let before: Record<string, string>[] = [];
let origConf = '';
let origPoolHba = '';

test('lab: pg1 primary, pg2 standby, pg3 Pgpool-II; install', async () => {
  if (!labAvailable()) {
    console.log(`skipping uninstall e2e: ${labUnavailableReason()}`);
    return;
  }
  lab = await labUp({ hosts: 3, postgres: ['pg1', 'pg2'], standby: { pg2: 'pg1' }, pgpool: { pg3: ['pg1', 'pg2'] }, dir: join(work, 'lab') });
  const inv = load(readFileSync(lab.inventoryPath, 'utf8')) as { all: { vars: Record<string, unknown>; children: Record<string, unknown> } };
  caDir = join(work, 'ca');
  inv.all.vars['pgtls_ca_dir'] = caDir;
  // pgtls_users: the lab's (appuser, replicator, pgpool: every role that logs in over the network)
  delete inv.all.children['lab'];
  inventory = join(work, 'inventory.yaml');
  writeFileSync(inventory, dump(inv));

  before = await trees();
  origConf = (await lab.exec('pg1', `cat ${CONF}/postgresql.conf`)).stdout;
  origPoolHba = (await lab.exec('pg3', 'cat /etc/pgpool2/pool_hba.conf')).stdout;
  const r = await runPb('install.yaml');
  assert.is(r.code, 0, ok(r));
  const installed = await trees();
  for (const [i, h] of HOSTS.entries()) assert.is.not(JSON.stringify(installed[i]), JSON.stringify(before[i]), `${h}: the install changed files`);
  const tls = await psql('pg1', 5432, 'webadmin', lab.passwords.webadmin, 'disable');
  assert.match(tls.stderr, /no encryption/, 'after the install, no plain login');
});

test('a failed check during uninstall puts back the files AND the records of originals', async () => {
  if (!haveLab(lab)) return;
  const installed = await lab.sha256Tree('pg1', TREE);
  // the reload after pg_hba.conf is proven with a webadmin login: a wrong password makes it fail
  // both backends of Pgpool-II node pg3: a --limit that splits them is refused (they change together)
  const r = await runPb('uninstall.yaml', ['--limit', 'pg1,pg2', '-e', 'webadmin_password=not-the-password']);
  assert.is(r.code, 1, ok(r));
  assert.match(r.report!.hosts['pg1']!.message ?? '', /previous files restored/);
  assert.equal(await lab.sha256Tree('pg1', TREE), installed, 'pg_hba.conf and the records in the state dir are as after the install');
  const login = await psql('pg1', 5432, 'webadmin', lab.passwords.webadmin, 'require');
  assert.is(login.stdout.trim(), '1', login.stderr);
});

let uninstallMs = 0;
let first: CliRun;
test('uninstall: byte-identical config everywhere, hand edits kept with a warning, keys gone', async () => {
  if (!haveLab(lab)) return;
  // hand edits after the install: a line pgtls never touched (pg1), a comment on top of pool_hba.conf (pg3)
  await lab.exec('pg1', `echo '${HAND_EDIT}' >> ${CONF}/postgresql.conf`);
  await lab.exec('pg3', `sed -i '1i # edited by hand after the install' /etc/pgpool2/pool_hba.conf`);

  const t0 = Date.now();
  first = await runPb('uninstall.yaml');
  uninstallMs = Date.now() - t0;
  assert.is(first.code, 0, ok(first));
  console.log(`  uninstall.yaml (3 hosts, pgpool restart included): ${uninstallMs} ms`);
  const warnings = warningsOf(first);
  assert.ok(warnings.some((w) => /^pg1: .*postgresql\.conf was changed after the install: only the lines pgtls changed were reverted/.test(w)), warnings.join('\n'));
  assert.ok(warnings.some((w) => /^pg3: .*pool_hba\.conf was changed after the install/.test(w)), warnings.join('\n'));

  const after = await trees();
  for (const [i, h] of HOSTS.entries()) {
    const want = { ...before[i]! };
    const got = { ...after[i]! };
    if (h === 'pg1') {
      delete want[`${CONF}/postgresql.conf`];
      delete got[`${CONF}/postgresql.conf`];
    }
    if (h === 'pg3') {
      delete want['/etc/pgpool2/pool_hba.conf'];
      delete got['/etc/pgpool2/pool_hba.conf'];
    }
    assert.equal(got, want, `${h}: every file as before the install, nothing of the install left`);
  }
  assert.is((await lab.exec('pg1', `cat ${CONF}/postgresql.conf`)).stdout, `${origConf}${HAND_EDIT}\n`, 'the original plus the hand edit');
  assert.is((await lab.exec('pg3', 'cat /etc/pgpool2/pool_hba.conf')).stdout, `# edited by hand after the install\n${origPoolHba}`);
  for (const h of HOSTS) {
    const left = await lab.exec(h, `find ${KEYS} ${STATE} -type f 2>/dev/null`);
    assert.is(left.stdout.trim(), '', `${h}: no file of the install left`);
  }
  assert.ok(existsSync(join(caDir, 'ca.key')), 'the CA stays on the controller unless asked');
});

test('after uninstall: plain logins work (PostgreSQL and through Pgpool-II), TLS is off, SCRAM verifiers kept', async () => {
  if (!haveLab(lab)) return;
  for (const h of ['pg1', 'pg2']) {
    const plain = await psql(h, 5432, 'webadmin', lab.passwords.webadmin, 'disable');
    assert.is(plain.stdout.trim(), '1', `${h}: ${plain.stderr}`);
    const tls = await psql(h, 5432, 'webadmin', lab.passwords.webadmin, 'require');
    assert.match(tls.stderr, /does not support SSL/, `${h}: ssl is off`);
  }
  const pool = await psql('pg3', 9999, 'appuser', lab.passwords.app, 'disable');
  assert.is(pool.stdout.trim(), '1', pool.stderr);
  const verifiers = await lab.sql('pg1', `select string_agg(rolname || ':' || left(rolpassword, 14), ',' order by rolname) from pg_authid where rolname in ('webadmin', 'appuser')`);
  assert.is(verifiers, 'appuser:SCRAM-SHA-256$,webadmin:SCRAM-SHA-256$');
  // the standby kept (or got back) its stream
  let state = '';
  for (let i = 0; i < 50 && state !== 'pg2:streaming'; i++) {
    state = await lab.sql('pg1', `select application_name || ':' || state from pg_stat_replication`);
    if (state !== 'pg2:streaming') await new Promise((r) => setTimeout(r, 200));
  }
  assert.is(state, 'pg2:streaming');
});

test('second uninstall: changed=0 (also in --check); pgtls_remove_ca removes the CA, once', async () => {
  if (!haveLab(lab)) return;
  const t0 = Date.now();
  const again = await runPb('uninstall.yaml');
  const ms = Date.now() - t0;
  assert.is(again.code, 0, ok(again));
  assert.is(totalChanged(again.report!), 0, ok(again));
  console.log(`  uninstall.yaml again (nothing to do): ${ms} ms`);
  const check = await runPb('uninstall.yaml', ['--check']);
  assert.is(check.code, 0, ok(check));
  assert.is(totalChanged(check.report!), 0, ok(check));

  const ca = await runPb('uninstall.yaml', ['-e', 'pgtls_remove_ca=true']);
  assert.is(ca.code, 0, ok(ca));
  assert.is(totalChanged(ca.report!), 1, 'the CA is removed by one host, once');
  assert.not.ok(existsSync(join(caDir, 'ca.key')));
  assert.not.ok(existsSync(join(caDir, 'ca.crt')));
});

// teardown, not a test: it is not counted (a test must be able to fail)
test.after(async () => {
  if (lab && process.env['LAB_KEEP'] !== '1') await lab.down();
});

test.run();
