// Streaming replication through install.yaml and uninstall.yaml, on one lab: primary pg1, standby pg2
// (through a replication slot, its primary_conninfo in an included file conf.d/), cascading standby
// pg3 of pg2 (primary_conninfo in postgresql.auto.conf with an inline password, as ALTER SYSTEM
// writes it), Pgpool-II pg4 in front of pg1 and pg2.
//   - right after the install (no waiting for a reconnect) every walsender is ssl = t and every
//     walreceiver's conninfo says sslmode=verify-full with the fleet CA; a re-run changes nothing;
//   - the verification is real: pg3 with another CA in its sslrootcert cannot stream, and streams
//     again once the fleet CA is back;
//   - a standby never switches when its upstream does not pass verify-full (checked first);
//   - a standby that cannot stream with verify-full gets its file back and keeps streaming;
//   - the replication password is never in --diff, the output or a remote command line;
//   - after uninstall.yaml the standbys' configuration files are byte-identical and they stream.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump, load } from 'js-yaml';
import { pgtls, totalChanged, type CliRun } from './cli.js';
import { labAvailable, labUnavailableReason, labUp, shq, type Lab } from './lab.js';

mkdirSync('/var/tmp', { recursive: true }); // not /tmp: lab hosts get a private /tmp
const work = mkdtempSync('/var/tmp/pgtls-e2e-replication-');
const CONF = '/etc/postgresql/15/main';
const AUTO = '/var/lib/postgresql/15/main/postgresql.auto.conf';
const ROOT_CRT = '/var/lib/jelastic/keys/SSL-TLS/server/root.crt';
const STANDBY_CONF = `${CONF}/conf.d/standby.conf`;
const commandLog = join(work, 'remote-commands.log');

let lab: Lab;
let inventory = '';
let n = 0;
const runPb = (pb: string, extra: string[] = []) =>
  pgtls(['run', `playbooks/${pb}`, '-i', inventory, ...extra], { json: join(work, `run${++n}.json`), env: { PGTLS_COMMAND_LOG: commandLog } });
const ok = (r: CliRun) => `exit ${r.code}\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-2000)}`;
const configFiles = (h: string) => lab.sha256Tree(h, [CONF, AUTO]);

/** Polls `probe` until it returns true, at most `seconds` (the machine is shared and slow: no fixed sleeps). */
async function until(what: string, seconds: number, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${seconds}s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

const receiver = (h: string) => lab.sql(h, `select status || '|' || conninfo from pg_stat_wal_receiver`);
const streams = async (h: string) => (await receiver(h)).startsWith('streaming|');
/** application_name|ssl of every walsender over TCP on `h`. */
const walsenders = (h: string) =>
  lab.sql(h, `select r.application_name || '|' || coalesce(l.ssl, false) from pg_stat_replication r left join pg_stat_ssl l using (pid) where r.client_addr is not null order by 1`);

test('lab: pg1 primary, pg2 standby (slot, conf.d), pg3 cascading standby of pg2 (inline password), pg4 Pgpool-II', async () => {
  if (!labAvailable()) {
    if (process.env['CI']) assert.unreachable(`the replication e2e needs the lab: ${labUnavailableReason()}`);
    console.log(`skipping replication e2e: ${labUnavailableReason()}`);
    return;
  }
  lab = await labUp({
    hosts: 4,
    postgres: ['pg1', 'pg2', 'pg3'],
    standby: { pg2: 'pg1', pg3: 'pg2' },
    replicationSlots: ['pg2'],
    pgpool: { pg4: ['pg1', 'pg2'] },
    dir: join(work, 'lab'),
  });
  const inv = load(readFileSync(lab.inventoryPath, 'utf8')) as { all: { vars: Record<string, unknown>; children: Record<string, unknown> } };
  inv.all.vars['pgtls_ca_dir'] = join(work, 'ca');
  delete inv.all.children['lab'];
  inventory = join(work, 'inventory.yaml');
  writeFileSync(inventory, dump(inv));

  // pg2: primary_conninfo from an included file (Debian's include_dir = 'conf.d'), not postgresql.auto.conf
  const conninfo2 = (await lab.sql('pg2', 'show primary_conninfo')).replace(/'/g, "''");
  await lab.exec('pg2', `printf '%s\\n' '# replication, set by hand' ${shq(`primary_conninfo = '${conninfo2}'`)} > ${STANDBY_CONF} && chown postgres: ${STANDBY_CONF}`);
  await lab.sql('pg2', `alter system reset primary_conninfo; select pg_reload_conf();`);
  // pg3: an inline password, as `pg_basebackup -R` writes one when the password was given
  const pw = lab.passwords.replicator.replace(/'/g, "''");
  await lab.sql('pg3', `alter system set primary_conninfo = 'host=${lab.ip('pg2')} port=5432 user=replicator password=''${pw}'' sslmode=prefer application_name=pg3'; select pg_reload_conf();`);
  await until('pg3 to stream with its inline password', 60, async () => (await receiver('pg3')).includes('password=********'));
  assert.match(await lab.sql('pg2', `select sourcefile from pg_file_settings where name = 'primary_conninfo'`), /conf\.d\/standby\.conf$/);
  assert.match(await lab.sql('pg1', `select slot_name || ' ' || active from pg_replication_slots`), /^pg2 true$/);
  for (const h of ['pg2', 'pg3']) await until(`${h} streaming`, 60, () => streams(h));
  assert.is(await walsenders('pg1'), 'pg2|false', 'before the install, the stream is plaintext');
});

let before: Record<string, Record<string, string>> = {};

test('--check --diff: the conninfo changes shown, the password masked, nothing changed', async () => {
  assert.ok(lab, 'the lab is up');
  before = { pg2: await configFiles('pg2'), pg3: await configFiles('pg3') };
  const r = await runPb('install.yaml', ['--check', '--diff']);
  assert.is(r.code, 0, ok(r));
  assert.match(r.stdout, /\+primary_conninfo = '.*sslmode=verify-full.*sslrootcert=/);
  assert.match(r.stdout, /standby\.conf \(after\)/);
  assert.match(r.stdout, /password=\*\*\*\*\*\*\*\* sslmode=verify-full/);
  assert.not.ok(r.stdout.includes(lab.passwords.replicator) || r.stderr.includes(lab.passwords.replicator), 'the replication password is shown');
  assert.equal({ pg2: await configFiles('pg2'), pg3: await configFiles('pg3') }, before, '--check changed nothing');
});

test('install: right after it, every walsender is TLS and every walreceiver verifies its upstream', async () => {
  assert.ok(lab, 'the lab is up');
  const r = await runPb('install.yaml');
  assert.is(r.code, 0, ok(r));
  // no waiting: the install itself made the walreceivers reconnect (and proved it)
  assert.is(await walsenders('pg1'), 'pg2|true');
  assert.is(await walsenders('pg2'), 'pg3|true', 'the cascade: pg2 serves pg3 over TLS');
  for (const h of ['pg2', 'pg3']) {
    const wr = await receiver(h);
    assert.match(wr, /^streaming\|/, `${h}: ${wr}`);
    assert.match(wr, / sslmode=verify-full /, `${h}: ${wr}`);
    assert.match(wr, new RegExp(` sslrootcert=${ROOT_CRT} `), `${h}: ${wr}`);
  }
  assert.match(await lab.sql('pg1', `select slot_name || ' ' || active from pg_replication_slots`), /^pg2 true$/, 'still through its slot');
  assert.match(await lab.exec('pg2', `cat ${STANDBY_CONF}`).then((x) => x.stdout), /^# replication, set by hand\nprimary_conninfo = '.*sslmode=verify-full/);
  const auto3 = (await lab.exec('pg3', `cat ${AUTO}`)).stdout;
  assert.ok(auto3.includes(`password=''${lab.passwords.replicator.replace(/'/g, "''")}''`), 'the inline password is kept as it was');
  const log = readFileSync(commandLog, 'utf8');
  assert.ok(log.length > 0, 'the command log was written');
  assert.not.ok(log.includes(lab.passwords.replicator), 'the replication password was on a command line');
  assert.not.ok(r.stdout.includes(lab.passwords.replicator), 'the replication password is in the output');
});

test('re-run: changed=0', async () => {
  assert.ok(lab, 'the lab is up');
  const r = await runPb('install.yaml');
  assert.is(r.code, 0, ok(r));
  assert.is(totalChanged(r.report!), 0, ok(r));
});

test('an upstream whose certificate lacks the name the inventory promises: the standby keeps its conninfo, fails', async () => {
  assert.ok(lab, 'the lab is up');
  // the inventory says pg2's certificate carries an alias; pg2 (outside --limit) was not re-issued yet
  const alias = 'pg2-alias.lab.internal';
  const inv = load(readFileSync(inventory, 'utf8')) as { all: { children: Record<string, { hosts: Record<string, Record<string, unknown>> }> } };
  inv.all.children['postgres']!.hosts['pg2']!['pgtls_cert_sans'] = [alias];
  const inventory2 = join(work, 'inventory-alias.yaml');
  writeFileSync(inventory2, dump(inv));
  await lab.exec('pg3', `echo ${shq(`${lab.ip('pg2')} ${alias}`)} >> /etc/hosts`);
  const pw = lab.passwords.replicator.replace(/'/g, "''");
  await lab.sql('pg3', `alter system set primary_conninfo = 'host=${alias} port=5432 user=replicator password=''${pw}'' sslmode=prefer application_name=pg3'; select pg_reload_conf();`);
  await until('pg3 streaming from the alias', 60, async () => new RegExp(` host=${alias} .*sslmode=prefer `).test(await receiver('pg3')) && (await streams('pg3')));
  const files = await configFiles('pg3');
  const r = await pgtls(['run', 'playbooks/install.yaml', '-i', inventory2, '--limit', 'pg3'], { json: join(work, `run${++n}.json`) });
  assert.is(r.code, 1, ok(r));
  const msg = r.report!.hosts['pg3']!.message ?? '';
  assert.ok(new RegExp(`upstream pg2 serves TLS that passes verify-full failed: the upstream ${alias}:5432 does not pass verify-full`).test(msg), msg);
  assert.equal(await configFiles('pg3'), files, 'nothing written');
  assert.ok(await streams('pg3'), 'pg3 still streams');
});

test('a standby that cannot stream with verify-full: its file goes back, it streams as before, the host fails', async () => {
  assert.ok(lab, 'the lab is up');
  // pg2 (outside this run: --limit pg3) takes pg3's stream only WITHOUT TLS: the TLS handshake a
  // standby checks first passes, the walreceiver under verify-full (no plaintext fallback) is rejected
  const hba = '/etc/postgresql/15/main/pg_hba.conf';
  const rules = `hostssl replication replicator ${lab.ip('pg3')}/32 reject\nhostnossl replication replicator ${lab.ip('pg3')}/32 scram-sha-256\n`;
  const edit = await lab.exec('pg2', `cp -p ${hba} /var/tmp/hba.keep && { printf ${shq(rules)}; cat /var/tmp/hba.keep; } > ${hba}`);
  assert.is(edit.code, 0, edit.stderr);
  await lab.sql('pg2', 'select pg_reload_conf()');
  const pw = lab.passwords.replicator.replace(/'/g, "''");
  await lab.sql('pg3', `alter system set primary_conninfo = 'host=${lab.ip('pg2')} port=5432 user=replicator password=''${pw}'' sslmode=prefer application_name=pg3'; select pg_reload_conf();`);
  await until('pg3 streaming with sslmode=prefer (in plaintext)', 60, async () => / sslmode=prefer /.test(await receiver('pg3')) && (await streams('pg3')) && (await walsenders('pg2')) === 'pg3|false');
  const files = await configFiles('pg3');
  const r = await runPb('install.yaml', ['--limit', 'pg3', '-e', 'pgtls_replication_wait=8']);
  assert.is(r.code, 1, ok(r));
  assert.match(r.report!.hosts['pg3']!.message ?? '', /did not stream again with sslmode=verify-full.*previous files restored/);
  assert.equal(await configFiles('pg3'), files, 'primary_conninfo is back as it was');
  await until('pg3 streaming again with its previous conninfo', 60, async () => / sslmode=prefer /.test(await receiver('pg3')) && (await streams('pg3')));
  // pg2 as the install left it: pg3 converges
  await lab.exec('pg2', `cat /var/tmp/hba.keep > ${hba} && rm -f /var/tmp/hba.keep`);
  await lab.sql('pg2', 'select pg_reload_conf()');
  const again = await runPb('install.yaml', ['--limit', 'pg3']);
  assert.is(again.code, 0, ok(again));
  assert.match(await receiver('pg3'), /^streaming\|.* sslmode=verify-full /);
  assert.is(await walsenders('pg2'), 'pg3|true');
});

test('the verification is real: another CA in pg3\'s sslrootcert, and pg3 cannot stream', async () => {
  assert.ok(lab, 'the lab is up');
  const other = await lab.exec(
    'pg3',
    `set -e; d=$(mktemp -d /var/tmp/other-ca.XXXXXX); openssl req -x509 -newkey rsa:2048 -nodes -keyout $d/ca.key -out $d/ca.crt -days 2 -subj '/CN=another CA' 2>/dev/null
     cp -p ${ROOT_CRT} $d/fleet.crt; cat $d/ca.crt > ${ROOT_CRT}; echo $d`,
  );
  assert.is(other.code, 0, other.stderr);
  const dir = other.stdout.trim();
  // the running stream keeps its TLS session: make pg3 reconnect
  await lab.sql('pg2', `select pg_terminate_backend(pid) from pg_stat_replication where application_name = 'pg3'`);
  await until('pg3 to refuse pg2\'s certificate', 60, async () =>
    /certificate verify failed/.test((await lab.exec('pg3', 'tail -n 20 /var/log/postgresql/postgresql-15-main.log')).stdout),
  );
  assert.not.ok(await streams('pg3'), 'pg3 streams although it cannot verify its upstream');
  assert.is(await walsenders('pg2'), '', 'no stream from pg2 to pg3');
  await lab.exec('pg3', `cat ${dir}/fleet.crt > ${ROOT_CRT} && rm -rf ${dir}`);
  await until('pg3 to stream again with the fleet CA', 60, () => streams('pg3'));
  assert.is(await walsenders('pg2'), 'pg3|true');
});

test('uninstall: the standbys\' files byte-identical to before, they stream, the password never shown', async () => {
  assert.ok(lab, 'the lab is up');
  const r = await runPb('uninstall.yaml', ['--diff']);
  assert.is(r.code, 0, ok(r));
  assert.not.ok(r.stdout.includes(lab.passwords.replicator), 'the replication password is in the uninstall diff');
  assert.match(r.stdout, /put primary_conninfo back as before the install/);
  assert.equal({ pg2: await configFiles('pg2'), pg3: await configFiles('pg3') }, before);
  for (const h of ['pg2', 'pg3']) {
    await until(`${h} streaming after the uninstall`, 60, () => streams(h));
    assert.match(await receiver(h), / sslmode=prefer /);
  }
  assert.match(await walsenders('pg1'), /^pg2\|/, 'pg2 streams from pg1');
  const again = await runPb('uninstall.yaml');
  assert.is(again.code, 0, ok(again));
  assert.is(totalChanged(again.report!), 0, ok(again));
});

// teardown, not a test: it is not counted (a test must be able to fail)
test.after(async () => {
  if (lab) await lab.down();
});

test.run();
