// The secrets scan (issue 9, point 4): install, an extra playbook that templates a password into a
// lineinfile line and into a shell command via stdin, reissue (-e reissue=server), status and
// uninstall, all with --diff and --json, on pg1 primary + pg2 standby + pg3 Pgpool-II, with distinctive
// passwords (quotes, spaces, a $). Meanwhile every lab host's process list is sampled (ps -eo args,
// ~every 100 ms), PGTLS_COMMAND_LOG is on, and PostgreSQL logs every statement. Afterwards: zero hits of
// any password (raw, base64 or hex) in controller stdout/stderr, the JSON reports, the sampled argv,
// the command log, the PostgreSQL logs (/var/log/postgresql) and Pgpool-II's log (/var/log/syslog).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump, load } from 'js-yaml';
import { factProviders } from '../../src/facts/index.js';
import { ROOT, pgtls, type CliRun } from './cli.js';
import { labAvailable, labUnavailableReason, labUp, type Lab, haveLab } from './lab.js';

mkdirSync('/var/tmp', { recursive: true });
const work = mkdtempSync('/var/tmp/pgtls-e2e-secrets-');
const HOSTS = ['pg1', 'pg2', 'pg3'];

// Distinctive passwords; lab.sh creates the roles with them (LAB_* variables).
const PASSWORDS = {
  LAB_WEBADMIN_PASSWORD: `pw'with "q" $HOME sp`,
  LAB_APP_PASSWORD: `app "pw" $PATH it's`,
  LAB_PGPOOL_PASSWORD: `pool 'pw' $USER x`,
};
const secrets = Object.values(PASSWORDS);
/** Every form a password could leak in: raw, base64 and hex. */
const forms = secrets.flatMap((pw) => [pw, Buffer.from(pw).toString('base64'), Buffer.from(pw).toString('hex')]);

let lab: Lab;
let inventory = '';
const commandLog = join(work, 'commands.log');
const outputs: { what: string; text: string }[] = [];
let n = 0;

async function cli(args: string[]): Promise<CliRun> {
  const json = args[0] === 'run' ? join(work, `report-${++n}.json`) : undefined;
  const r = await pgtls(args, { json, env: { PGTLS_COMMAND_LOG: commandLog } });
  outputs.push({ what: `stdout of ${args.join(' ')}`, text: r.stdout }, { what: `stderr of ${args.join(' ')}`, text: r.stderr });
  if (json && existsSync(json)) outputs.push({ what: `JSON report of ${args.join(' ')}`, text: readFileSync(json, 'utf8') });
  return r;
}
const ok = (r: CliRun) => `exit ${r.code}\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-2000)}`;

// A ps sampler inside each lab host: its own PID namespace, so it sees every process pgtls starts there.
const SAMPLER = `nohup setsid bash -c 'while :; do ps -eo args >> /root/pgtls-ps.log; sleep 0.1; done' >/dev/null 2>&1 & echo $! > /root/pgtls-ps.pid`;

test('lab: pg1 primary, pg2 standby, pg3 pgpool, with distinctive passwords', async () => {
  if (!labAvailable()) {
    assert.ok(!process.env['CI'], `the lab is required under CI: ${labUnavailableReason()}`);
    console.log(`skipping secrets e2e: ${labUnavailableReason()}`);
    return;
  }
  Object.assign(process.env, PASSWORDS);
  lab = await labUp({ hosts: 3, postgres: ['pg1', 'pg2'], standby: { pg2: 'pg1' }, pgpool: { pg3: ['pg1', 'pg2'] }, dir: join(work, 'lab') });
  assert.is(lab.passwords.webadmin, PASSWORDS.LAB_WEBADMIN_PASSWORD);
  const inv = load(readFileSync(lab.inventoryPath, 'utf8')) as { all: { vars: Record<string, unknown>; children: Record<string, Record<string, unknown>> } };
  inv.all.vars['pgtls_ca_dir'] = join(work, 'ca');
  if (!factProviders['pg_config_file'])
    inv.all.children['postgres']!['vars'] = { pg_config_file: '/etc/postgresql/15/main/postgresql.conf', pg_hba_file: '/etc/postgresql/15/main/pg_hba.conf', pg_os_user: 'postgres', pg_version: 15 };
  delete inv.all.children['lab'];
  inventory = join(work, 'inventory.yaml');
  writeFileSync(inventory, dump(inv));
  // The hostile-but-common server setting: every statement in the log, and the failing ones with their text.
  await lab.sql('pg1', "ALTER SYSTEM SET log_statement = 'all'; ALTER SYSTEM SET log_min_error_statement = 'error'; SELECT pg_reload_conf();");
  for (const h of HOSTS) assert.is((await lab.exec(h, SAMPLER)).code, 0);
});

test('install, with --check --diff first', async () => {
  if (!haveLab(lab)) return;
  const check = await cli(['run', join(ROOT, 'playbooks', 'install.yaml'), '-i', inventory, '--check', '--diff']);
  assert.is(check.code, 0, ok(check));
  const r = await cli(['run', join(ROOT, 'playbooks', 'install.yaml'), '-i', inventory, '--diff']);
  assert.is(r.code, 0, ok(r));
  assert.match(r.stdout, /\+ssl = on/, 'diffs are shown');
});

test('a password templated into a lineinfile line and into a shell command (via stdin) works, masked', async () => {
  if (!haveLab(lab)) return;
  const play = join(work, 'extras.yaml');
  writeFileSync(
    play,
    `- hosts: postgres
  tasks:
    - name: app.conf carries the password
      lineinfile:
        path: /etc/pgtls-secret-test.conf
        create: true
        mode: "0600"
        regexp: '^password\\s*='
        line: "password = {{ webadmin_password }}"
    - name: a command that reads the password on stdin
      shell:
        cmd: "umask 077; cat > /root/pgtls-stdin-check"
        stdin: "{{ webadmin_password }}"
`,
  );
  const r = await cli(['run', play, '-i', inventory, '--diff']);
  assert.is(r.code, 0, ok(r));
  assert.match(r.stdout, /\+\*{8} \(secret line\)/, 'the diff says a secret line is added');
  for (const h of ['pg1', 'pg2']) {
    assert.is((await lab.exec(h, 'cat /etc/pgtls-secret-test.conf')).stdout, `password = ${PASSWORDS.LAB_WEBADMIN_PASSWORD}\n`);
    assert.is((await lab.exec(h, 'cat /root/pgtls-stdin-check')).stdout, PASSWORDS.LAB_WEBADMIN_PASSWORD);
  }
  // and a shell command line that holds the password is refused before any host is contacted
  const bad = join(work, 'bad.yaml');
  writeFileSync(bad, `- hosts: postgres\n  tasks:\n    - name: leaky\n      shell: "echo {{ webadmin_password }} > /root/leak"\n`);
  const refused = await cli(['run', bad, '-i', inventory]);
  assert.is(refused.code, 2, ok(refused));
  assert.match(refused.stderr, /bad\.yaml:4: .*cmd: the command line holds a secret/);
  assert.is.not((await lab.exec('pg1', 'test -e /root/leak')).code, 0);
});

test('reissue -e reissue=server', async () => {
  if (!haveLab(lab)) return;
  const r = await cli(['run', join(ROOT, 'playbooks', 'reissue.yaml'), '-i', inventory, '-e', 'reissue=server', '--diff']);
  assert.is(r.code, 0, ok(r));
});

test('status --json', async () => {
  if (!haveLab(lab)) return;
  const r = await cli(['status', '-i', inventory, '--json']);
  assert.ok([0, 1].includes(r.code), ok(r));
  assert.ok(JSON.parse(r.stdout), 'status JSON');
  // host keys not verified: said loudly, with every accepted fingerprint
  const insecure = await cli(['status', '-i', inventory, '--insecure-skip-host-key-check']);
  assert.ok([0, 1].includes(insecure.code), ok(insecure));
  assert.match(insecure.stderr, /WARNING: --insecure-skip-host-key-check: host keys are NOT verified/);
  for (const h of HOSTS) assert.match(insecure.stderr, new RegExp(`${h} \\(.*\\): host key NOT verified, accepted \\S+ SHA256:\\S+`));
});

test('uninstall --diff, with --check first', async () => {
  if (!haveLab(lab)) return;
  const check = await cli(['run', join(ROOT, 'playbooks', 'uninstall.yaml'), '-i', inventory, '--check', '--diff']);
  assert.is(check.code, 0, ok(check));
  const r = await cli(['run', join(ROOT, 'playbooks', 'uninstall.yaml'), '-i', inventory, '--diff']);
  assert.is(r.code, 0, ok(r));
});

test('zero hits of any password anywhere', async () => {
  if (!haveLab(lab)) return;
  for (const h of HOSTS) await lab.exec(h, 'kill $(cat /root/pgtls-ps.pid) 2>/dev/null; true');
  const places: { what: string; text: string }[] = [...outputs];
  const log = readFileSync(commandLog, 'utf8');
  assert.ok(log.split('\n').length > 200, 'the command log was written');
  assert.is(statSync(commandLog).mode & 0o777, 0o600, 'the command log is 0600');
  for (const f of readdirSync(work).filter((x) => x.startsWith('report-'))) assert.is(statSync(join(work, f)).mode & 0o777, 0o600, `${f} is 0600`);
  places.push({ what: 'PGTLS_COMMAND_LOG', text: log });
  let samples = 0;
  for (const h of HOSTS) {
    const ps = (await lab.exec(h, 'cat /root/pgtls-ps.log', { timeoutMs: 60_000 })).stdout;
    samples += ps.split('\n').filter((l) => l.startsWith('COMMAND')).length;
    // pgtls's own processes were caught in the act (the sampler was fast enough to see some)
    places.push({ what: `argv sampled on ${h}`, text: ps });
    const logs = await lab.exec(h, 'cat /var/log/postgresql/* /var/log/syslog /var/log/pgpool/* 2>/dev/null; true', { timeoutMs: 60_000 });
    places.push({ what: `server logs of ${h}`, text: logs.stdout });
  }
  console.log(`  ${samples} process list samples; ${places.length} places scanned`);
  assert.ok(samples > 100, `the process lists were sampled (${samples})`);
  assert.ok(places.some((p) => p.what === 'argv sampled on pg1' && /psql|runuser|sh -c/.test(p.text)), 'the sampler saw pgtls at work');
  assert.ok(places.some((p) => p.what === 'server logs of pg1' && /statement: /.test(p.text)), 'PostgreSQL logged statements');
  const hits: string[] = [];
  for (const p of places)
    for (const f of forms) if (p.text.includes(f)) hits.push(`${p.what}: ${createHash('sha256').update(f).digest('hex').slice(0, 8)} (${f === secrets.find((s) => s === f) ? 'raw' : 'encoded'})`);
  assert.equal(hits, []);
});

// teardown, not a test: it is not counted (a test must be able to fail)
test.after(async () => {
  if (lab) await lab.down();
});

test.run();
