import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump, load } from 'js-yaml';
import { pgtls, totalChanged, type CliRun } from './cli.js';
import { labAvailable, labUnavailableReason, labUp, run, type Lab, haveLab } from './lab.js';

// The lifecycle on hosts laid out like the original add-on's (lab.sh --layout rhel): data directory
// /var/lib/pgsql/data with its config inside, started by pg_ctl, `local all all md5` (so SQL on the
// host needs webadmin's password), Pgpool-II under /etc/pgpool-II with /etc/init.d/pgpool-II (and
// Debian's /etc/init.d/pgpool2 left around), SSH as a sudo user. pg1 primary, pg2 its standby,
// pg3 Pgpool-II in front of both. On the same lab: facts first (a host that cannot answer SQL, a
// backend that is unreachable: nothing changes anywhere), and --limit never splits Pgpool-II's backends.

mkdirSync('/var/tmp', { recursive: true });
const work = mkdtempSync('/var/tmp/pgtls-e2e-rhel-');
const DATA = '/var/lib/pgsql/data';
const POOL = '/etc/pgpool-II';
const KEYS = '/var/lib/jelastic/keys/SSL-TLS';
let lab: Lab;
let inventory: string;
const caDir = join(work, 'ca');
let n = 0;

const out = (r: CliRun) => `exit ${r.code}\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-2000)}`;
const runPlaybook = (book: string, extra: string[] = [], inv = inventory) =>
  pgtls(['run', `playbooks/${book}`, '-i', inv, ...extra], { json: join(work, `r${n++}.json`) });

/** Every file pgtls may touch, per host. */
async function snapshot(): Promise<Record<string, Record<string, string>>> {
  const paths = [`${DATA}/postgresql.conf`, `${DATA}/pg_hba.conf`, `${DATA}/postgresql.auto.conf`, POOL, '/var/lib/jelastic', '/var/lib/pgsql/.pgpoolkey'];
  const [a, b, c] = await Promise.all(['pg1', 'pg2', 'pg3'].map((h) => lab.sha256Tree(h, paths)));
  return { pg1: a!, pg2: b!, pg3: c! };
}

/** A client of Pgpool-II on this machine (password in the child's environment, never argv). */
function viaPgpool(sslmode: string, extra = '') {
  const conninfo = `host=${lab.ip('pg3')} port=9999 dbname=postgres user=webadmin sslmode=${sslmode} ${extra}`;
  const env = { ...process.env, PGPASSFILE: '/dev/null', PGCONNECT_TIMEOUT: '10', PGPASSWORD: lab.passwords.webadmin } as NodeJS.ProcessEnv;
  return run('psql', ['-X', '-A', '-t', '-q', '-w', '-d', conninfo, '-c', 'select 1'], { env });
}

let pristine: Record<string, Record<string, string>>;

test('lab: RHEL-style hosts, sudo user, local md5 rules', async () => {
  if (!labAvailable()) {
    if (process.env['CI']) assert.unreachable(`the lab is needed: ${labUnavailableReason()}`);
    console.log(`skipping rhel e2e: ${labUnavailableReason()}`);
    return;
  }
  lab = await labUp({ hosts: 3, layout: 'rhel', user: 'admin', postgres: ['pg1', 'pg2'], standby: { pg2: 'pg1' }, pgpool: { pg3: ['pg1', 'pg2'] }, dir: join(work, 'lab') });
  const inv = load(readFileSync(lab.inventoryPath, 'utf8')) as { all: { vars: Record<string, unknown>; children: Record<string, unknown> } };
  inv.all.vars['pgtls_ca_dir'] = caDir;
  delete inv.all.children['lab'];
  inventory = join(work, 'inventory.yaml');
  writeFileSync(inventory, dump(inv));
  // what makes the layout RHEL-like, checked on the hosts themselves
  const pg1 = await lab.exec('pg1', `test -f ${DATA}/postgresql.conf && test ! -e /etc/postgresql/15 && grep -c '^local *all *all *md5' ${DATA}/pg_hba.conf && runuser -u postgres -- psql -Xw -c 'select 1' 2>&1; true`);
  assert.match(pg1.stdout, /^1\n.*no password supplied/s, pg1.stdout);
  const pg3 = await lab.exec('pg3', `test -x /etc/init.d/pgpool-II && test -x /etc/init.d/pgpool2 && tr '\\0' ' ' < /proc/$(cat /var/run/pgpool/pgpool.pid)/cmdline`);
  assert.match(pg3.stdout, /-f \/etc\/pgpool-II\/pgpool\.conf/);
  assert.is((await viaPgpool('disable')).stdout.trim(), '1', 'pgpool lets clients in before the install');
  pristine = await snapshot();
});

test('facts first: a host that cannot answer SQL changes nothing on any host, and says why', async () => {
  if (!haveLab(lab)) return;
  const inv = load(readFileSync(inventory, 'utf8')) as { all: { children: { postgres: { hosts: Record<string, Record<string, unknown>> } } } };
  inv.all.children.postgres.hosts['pg2']!['webadmin_password'] = 'not-the-password';
  const bad = join(work, 'bad-password.yaml');
  writeFileSync(bad, dump(inv));
  const r = await runPlaybook('install.yaml', [], bad);
  assert.is(r.code, 1, out(r));
  assert.match(r.stdout, /pg2: failed: .*facts.*neither OS user postgres .*nor webadmin/s, out(r));
  assert.match(r.stdout, /no host was changed/, out(r));
  assert.not.ok(r.stdout.includes('not-the-password'));
  assert.equal(await snapshot(), pristine, 'no file changed on any host');
  // --check says the same
  const c = await runPlaybook('install.yaml', ['--check'], bad);
  assert.is(c.code, 1, out(c));
  assert.match(c.stdout, /pg2: failed: .*facts/s);
});

test('--limit with half of a Pgpool-II node\'s backends is refused, naming the missing ones', async () => {
  if (!haveLab(lab)) return;
  const r = await runPlaybook('install.yaml', ['--limit', 'pg1']);
  assert.is(r.code, 2, out(r));
  assert.match(r.stderr, /pg3.*pg2/s, out(r));
  assert.equal(await snapshot(), pristine, 'no file changed on any host');
  assert.is((await viaPgpool('disable')).stdout.trim(), '1', 'Pgpool-II clients still get in');
});

test('install: webadmin password login for SQL, pg_ctl, /etc/init.d/pgpool-II; clients through Pgpool-II with verify-full', async () => {
  if (!haveLab(lab)) return;
  const r = await runPlaybook('install.yaml');
  assert.is(r.code, 0, out(r));
  assert.match(r.stdout, /pg1: .*local rules of pg_hba\.conf want a password, so pgtls logs in as webadmin/);
  assert.match(r.stdout, /pg_ctl reload -D \/var\/lib\/pgsql\/data/);
  assert.match(r.stdout, /\/etc\/init\.d\/pgpool-II stop\/start/);
  assert.match(r.stdout, /Pgpool-II lets clients in/, 'the login through Pgpool-II is checked after the PostgreSQL play');
  const tls = await viaPgpool('verify-full', `sslrootcert=${join(caDir, 'ca.crt')}`);
  assert.is(tls.stdout.trim(), '1', tls.stderr);
  assert.is.not((await viaPgpool('disable')).code, 0, 'no plaintext through Pgpool-II');
  const conf = await lab.exec('pg1', `grep -c '^ssl = on' ${DATA}/postgresql.conf; stat -c '%a %U' ${KEYS}/server/server.key`);
  assert.is(conf.stdout.trim(), '1\n600 postgres');
  const again = await runPlaybook('install.yaml');
  assert.is(again.code, 0, out(again));
  assert.is(totalChanged(again.report!), 0, out(again));
});

test('reissue=server: new certificates, Pgpool-II clients keep verifying', async () => {
  if (!haveLab(lab)) return;
  const fp = () => lab.exec('pg1', `openssl x509 -noout -fingerprint -sha256 -in ${KEYS}/server/server.crt`).then((x) => x.stdout.trim());
  const before = await fp();
  const r = await runPlaybook('reissue.yaml', ['-e', 'reissue=server']);
  assert.is(r.code, 0, out(r));
  assert.is.not(await fp(), before);
  assert.is((await viaPgpool('verify-full', `sslrootcert=${join(caDir, 'ca.crt')}`)).stdout.trim(), '1');
});

test('one backend unreachable: the run changes nothing anywhere and Pgpool-II keeps its clients', async () => {
  if (!haveLab(lab)) return;
  const bump = await lab.exec('pg1', `sed -i 's/^ssl_min_protocol_version.*/ssl_min_protocol_version = '"'"'TLSv1.3'"'"'/' ${DATA}/postgresql.conf`);
  assert.is(bump.code, 0);
  const before = await snapshot();
  await run('bash', [join(process.cwd(), 'lab', 'lab.sh'), 'sshd', '--dir', lab.dir, 'pg2', 'stop']);
  try {
    const r = await runPlaybook('install.yaml');
    assert.is(r.code, 3, out(r));
    assert.match(r.stdout, /pg2: unreachable/, out(r));
    assert.match(r.stdout, /no host was changed/, out(r));
    const after = await snapshot();
    assert.equal(after.pg1, before.pg1, 'pg1 was not changed while pg2 could not be read');
    assert.equal(after.pg3, before.pg3);
    assert.is((await viaPgpool('verify-full', `sslrootcert=${join(caDir, 'ca.crt')}`)).stdout.trim(), '1');
  } finally {
    await run('bash', [join(process.cwd(), 'lab', 'lab.sh'), 'sshd', '--dir', lab.dir, 'pg2', 'start']);
  }
  const fix = await runPlaybook('install.yaml');
  assert.is(fix.code, 0, out(fix));
});

test('uninstall: every file back byte for byte, plain logins through Pgpool-II again; a second uninstall changes nothing', async () => {
  if (!haveLab(lab)) return;
  const r = await runPlaybook('uninstall.yaml');
  assert.is(r.code, 0, out(r));
  const after = await snapshot();
  for (const h of ['pg1', 'pg2', 'pg3']) assert.equal(after[h], pristine[h], `${h} files as before the install`);
  assert.is((await viaPgpool('disable')).stdout.trim(), '1');
  const again = await runPlaybook('uninstall.yaml');
  assert.is(again.code, 0, out(again));
  assert.is(totalChanged(again.report!), 0, out(again));
});

// teardown, not a test: it is not counted (a test must be able to fail)
test.after(async () => {
  if (lab) await lab.down();
});

test.run();
