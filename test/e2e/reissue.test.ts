import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump, load } from 'js-yaml';
import { inspectCert, splitPemBundle } from '../../src/crypto/x509.js';
import { pgtls, totalChanged, type CliRun } from './cli.js';
import { labAvailable, labUnavailableReason, labUp, run, type ExecResult, type Lab, haveLab } from './lab.js';

// playbooks/reissue.yaml on a real lab: pg1 primary, pg2 streaming standby, pg3 Pgpool-II in front of both.
// After install: (a) pgbench over verify-full TLS against the primary DURING reissue=server, with zero failed
// transactions, and the servers present new certificates afterwards; (b) the whole CA rotation (ca, then
// ca-finish) under two psql loops connecting every 100 ms with sslmode=verify-full, one trusting only the
// old CA, one only the new CA: not one failure until ca-finish; afterwards the old CA no longer verifies.

// Not under /tmp: lab hosts get a private /tmp.
mkdirSync('/var/tmp', { recursive: true });
const work = mkdtempSync('/var/tmp/pgtls-e2e-reissue-');
const KEYS = '/var/lib/jelastic/keys/SSL-TLS';
const caDir = join(work, 'ca');
let lab: Lab;
let inventory = '';
let n = 0;
const ip: Record<string, string> = {};

const reissue = (args: string[]) => pgtls(['run', 'playbooks/reissue.yaml', '-i', inventory, ...args], { json: join(work, `r${++n}.json`) });
const install = (args: string[] = []) => pgtls(['run', 'playbooks/install.yaml', '-i', inventory, ...args], { json: join(work, `i${++n}.json`) });
const out = (r: CliRun) => `exit ${r.code}\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-2000)}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const timed = async <T>(f: () => Promise<T>): Promise<[T, number]> => {
  const t0 = Date.now();
  const r = await f();
  return [r, Date.now() - t0];
};

/**
 * What a server presents right now, asked on the host itself: leaf fingerprint and serial, and the
 * chain it sends as "subject <- issuer" CNs. (With nothing after the leaf in server.crt, OpenSSL
 * appends the issuing root from ssl_ca_file by itself, so the chain's length alone says little.)
 */
async function served(host: string, port = 5432): Promise<{ fingerprint: string; serial: string; chain: string[] }> {
  const r = await lab.exec(host, `openssl s_client -starttls postgres -showcerts -connect 127.0.0.1:${port} </dev/null 2>/dev/null`);
  const pems = splitPemBundle(r.stdout).filter((p) => p.includes('BEGIN CERTIFICATE'));
  const leaf = pems[0] ? inspectCert(pems[0]) : null;
  return {
    fingerprint: leaf?.fingerprintSha256 ?? '',
    serial: leaf?.serialHex ?? '',
    chain: pems.map((p) => inspectCert(p)).map((i) => `${i.subjectCN} <- ${i.issuerCN}`),
  };
}

/** sha256 of what install/reissue may touch on each host, and of the controller's CA directory. */
async function snapshot(): Promise<unknown> {
  const hosts = await Promise.all(['pg1', 'pg2', 'pg3'].map((h) => lab.sha256Tree(h, [KEYS, '/etc/postgresql', '/etc/pgpool2', '/var/lib/pgtls'])));
  const ca = (await run('bash', ['-c', `cd ${caDir} && find . -type f -print0 | sort -z | xargs -0 sha256sum`])).stdout;
  return { hosts, ca };
}

const conninfo = (host: string, caFile: string, port = 5432) =>
  `host=${ip[host]} port=${port} user=webadmin dbname=postgres sslmode=verify-full sslrootcert=${caFile} connect_timeout=5`;
const clientEnv = () => ({ ...process.env, PGPASSWORD: lab.passwords.webadmin, PGPASSFILE: '/dev/null' });
const psql = (ci: string): Promise<ExecResult> => run('psql', ['-X', '-A', '-t', '-q', '-w', '-c', 'select 1', ci], { env: clientEnv(), timeoutMs: 15_000 });

test('lab: pg1 primary, pg2 standby, pg3 Pgpool-II; install', async () => {
  if (!labAvailable()) {
    console.log(`skipping reissue e2e: ${labUnavailableReason()}`);
    return;
  }
  lab = await labUp({ hosts: 3, postgres: ['pg1', 'pg2'], standby: { pg2: 'pg1' }, pgpool: { pg3: ['pg1', 'pg2'] }, dir: join(work, 'lab') });
  const inv = load(readFileSync(lab.inventoryPath, 'utf8')) as { all: { vars: Record<string, unknown>; children: Record<string, { hosts: Record<string, { ansible_host: string }> }> } };
  for (const h of ['pg1', 'pg2', 'pg3']) ip[h] = lab.ip(h);
  inv.all.vars['pgtls_ca_dir'] = caDir;
  // the replication role must keep logging in once the rules say scram-sha-256
  inv.all.vars['pgtls_users'] = [{ name: 'appuser', password: lab.passwords.app }, { name: 'replicator', password: lab.passwords.replicator }];
  delete inv.all.children['lab'];
  inventory = join(work, 'inventory.yaml');
  writeFileSync(inventory, dump(inv));
  const r = await install();
  assert.is(r.code, 0, out(r));
  for (const h of ['pg1', 'pg2', 'pg3']) assert.is(r.report!.hosts[h]?.status, 'ok', out(r));
});

test('reissue=server --check: says what would be re-issued and changes no byte (hosts and CA directory)', async () => {
  if (!haveLab(lab)) return;
  const before = await snapshot();
  const r = await reissue(['-e', 'reissue=server', '--check']);
  assert.is(r.code, 0, out(r));
  assert.equal(await snapshot(), before);
  for (const h of ['pg1', 'pg2', 'pg3']) assert.match(r.stdout, new RegExp(`${h} \\| .* would issue server certificate CN=${h} .*re-issue forced \\(force: server\\)`));
  assert.match(r.stdout, /pg1 \| reload PostgreSQL.*would reload/);
  assert.match(r.stdout, /pg3 \| restart Pgpool-II.*would restart Pgpool-II via .*changed since it started/);
  assert.not.match(r.stdout, /client certificate CN=/);
});

/** pgbench as a client on this machine, over verify-full TLS; the password in its environment only. */
function pgbench(args: string[], timeoutMs: number) {
  return run('pgbench', [...args, conninfo('pg1', join(caDir, 'ca.crt'))], { env: clientEnv(), timeoutMs });
}

interface Bench {
  code: number;
  processed: number;
  failed: number;
  aborted: boolean;
  text: string;
}
function parseBench(r: ExecResult): Bench {
  const text = r.stdout + r.stderr;
  return {
    code: r.code,
    processed: Number(/number of transactions actually processed: (\d+)/.exec(text)?.[1] ?? -1),
    // pgbench 15: "number of failed transactions: 0 (0.000%)"; an aborted client: "client N aborted", "Run was aborted"
    failed: Number(/number of failed transactions: (\d+)/.exec(text)?.[1] ?? -1),
    aborted: /aborted/i.test(text),
    text,
  };
}

test('(a) pgbench over verify-full TLS DURING reissue=server: zero failed transactions; new certificates served', async () => {
  if (!haveLab(lab)) return;
  const init = await pgbench(['-i', '-q', '-s', '1'], 120_000);
  assert.is(init.code, 0, init.stdout + init.stderr);
  const before = await Promise.all([served('pg1'), served('pg2'), served('pg3', 9999)]);
  const clientBefore = await lab.sha256Tree('pg1', [`${KEYS}/client`]);

  const DURATION = 40; // long enough to cover the re-issue on a loaded CI machine (2 cores, several labs)
  const t0 = Date.now();
  // steady sessions (TPC-B, 4 clients) and a reconnecting client (-C: a new TLS handshake + SCRAM per
  // transaction), so both open sessions and new connections are exercised across the reload
  const steady = pgbench(['-c', '4', '-j', '2', '-T', String(DURATION), '-R', '200'], (DURATION + 60) * 1000);
  const reconnecting = pgbench(['-C', '-S', '-c', '2', '-T', String(DURATION), '-R', '20'], (DURATION + 60) * 1000);
  await sleep(3000);
  const [r, ms] = await timed(() => reissue(['-e', 'reissue=server']));
  const reissueEnd = (Date.now() - t0) / 1000;
  const [a, b] = (await Promise.all([steady, reconnecting])).map(parseBench);
  console.log(`  reissue.yaml -e reissue=server: ${ms} ms (ended ${reissueEnd.toFixed(1)} s into a ${DURATION} s pgbench)`);
  console.log(`  pgbench steady (-c 4): ${a!.processed} transactions, ${a!.failed} failed; reconnecting (-C -c 2): ${b!.processed} transactions, ${b!.failed} failed`);
  assert.is(r.code, 0, out(r));
  assert.ok(reissueEnd < DURATION - 2, 'the re-issue (and its reloads) happened while pgbench ran');
  for (const x of [a!, b!]) {
    assert.is(x.code, 0, x.text);
    assert.is(x.failed, 0, x.text);
    assert.not.ok(x.aborted, x.text);
    assert.ok(x.processed > 0, x.text);
  }

  const after = await Promise.all([served('pg1'), served('pg2'), served('pg3', 9999)]);
  for (const [i, h] of ['pg1', 'pg2', 'pg3'].entries()) {
    assert.match(after[i]!.fingerprint, /^[0-9A-F:]{95}$/, h);
    assert.is.not(after[i]!.fingerprint, before[i]!.fingerprint, `${h}: a new certificate is served`);
    assert.is.not(after[i]!.serial, before[i]!.serial, `${h}: with a new serial`);
  }
  assert.equal(await lab.sha256Tree('pg1', [`${KEYS}/client`]), clientBefore, 'reissue=server leaves client certificates alone');
  const login = await psql(conninfo('pg1', join(caDir, 'ca.crt')));
  assert.is(login.stdout.trim(), '1', login.stderr);
  // install.yaml accepts the re-issued certificates as they are
  const again = await install();
  assert.is(again.code, 0, out(again));
  assert.is(totalChanged(again.report!), 0, out(again));
});

test('reissue=client --limit pg2: only pg2\'s client certificate changes, nothing reloads', async () => {
  if (!haveLab(lab)) return;
  const pg1 = await lab.sha256Tree('pg1', [KEYS]);
  const pg2server = await lab.sha256Tree('pg2', [`${KEYS}/server`]);
  const pg2client = await lab.sha256Tree('pg2', [`${KEYS}/client/client.crt`, `${KEYS}/client/client.key`]);
  const fp = await served('pg2');
  const r = await reissue(['-e', 'reissue=client', '--limit', 'pg2']);
  assert.is(r.code, 0, out(r));
  assert.equal(Object.keys(r.report!.hosts), ['pg2']);
  assert.equal(await lab.sha256Tree('pg1', [KEYS]), pg1);
  assert.equal(await lab.sha256Tree('pg2', [`${KEYS}/server`]), pg2server);
  const now = await lab.sha256Tree('pg2', [`${KEYS}/client/client.crt`, `${KEYS}/client/client.key`]);
  for (const f of Object.keys(pg2client)) assert.is.not(now[f], pg2client[f], `${f} re-issued`);
  assert.ok(r.report!.hosts['pg2']!.tasks.some((t) => /reload PostgreSQL/.test(t.name) && !t.changed), 'no reload for a client certificate');
  assert.equal(await served('pg2'), fp);
});

test('a reload that fails during reissue=server: the host fails, its old key and certificate are put back and still served', async () => {
  if (!haveLab(lab)) return;
  const before = await lab.sha256Tree('pg1', [KEYS]);
  const fp = await served('pg1');
  // pg_reload_cmd replaces the reload: `false` makes it fail after the new key and certificate are in place
  const r = await reissue(['-e', 'reissue=server', '-e', 'pg_reload_cmd=false', '--limit', 'pg1']);
  assert.is(r.code, 1, out(r));
  assert.match(r.report!.hosts['pg1']!.message ?? '', /previous files restored/);
  assert.equal(await lab.sha256Tree('pg1', [KEYS]), before, 'server.key (generated on the host) and server.crt restored byte for byte');
  assert.equal(await served('pg1'), fp);
  const left = await lab.exec('pg1', `find ${KEYS} -name '*pgtls*'`);
  assert.is(left.stdout.trim(), '', 'no temp, rollback or new-key files left');
});

test('-e reissue=bogus is refused before any host is contacted (exit 2)', async () => {
  if (!haveLab(lab)) return;
  const r = await reissue(['-e', 'reissue=bogus']);
  assert.is(r.code, 2, out(r));
  assert.match(r.stderr + r.stdout, /reissue\.yaml:\d+:.*force: must be server, client, all or none/);
});

test('reissue=ca --check: says what the rotation would do and changes no byte (hosts and CA directory)', async () => {
  if (!haveLab(lab)) return;
  const before = await snapshot();
  const r = await reissue(['-e', 'reissue=ca', '--check']);
  assert.is(r.code, 0, out(r));
  assert.equal(await snapshot(), before);
  assert.match(r.stdout, /would create a new CA "pgtls CA \d{4}-\d\d-\d\d \d\d:\d\d:\d\d"/);
  assert.match(r.stdout, /pg1 \| root\.crt holds both CAs.*trusts "pgtls CA \d{4}-.*" \(new CA\) and "pgtls CA" \(old CA\)/);
  assert.match(r.stdout, /would publish the new CA/);
  for (const h of ['pg1', 'pg2', 'pg3']) assert.match(r.stdout, new RegExp(`${h} \\| .*would issue server certificate CN=${h} .* from CA "pgtls CA \\d{4}-`));
  assert.match(r.stdout, /pg3 \| restart Pgpool-II.*would restart Pgpool-II via .*changed since it started/);
});

// ---------------------------------------------------------------------------------------------------------
// (b) CA rotation under load

interface LoopStats {
  name: string;
  attempts: number;
  /** start time of every connection */
  starts: number[];
  failures: { at: number; host: string; error: string }[];
  startedAt: number;
}

/**
 * psql with sslmode=verify-full every 100 ms, alternating pg1 and pg2 (Pgpool-II is left out: with a single
 * pgpool node its restart is an outage by nature). Bounded: stops on `stop.done`, after `maxAttempts`, or
 * at `deadline`. `caFile` is awaited first: the new-CA client can only start once the new CA exists.
 */
async function clientLoop(name: string, caFile: Promise<string>, stop: { done: boolean }, maxAttempts: number, deadline: number): Promise<LoopStats> {
  const file = await caFile;
  const s: LoopStats = { name, attempts: 0, starts: [], failures: [], startedAt: Date.now() };
  const hosts = ['pg1', 'pg2'];
  while (!stop.done && s.attempts < maxAttempts && Date.now() < deadline) {
    const t = Date.now();
    const host = hosts[s.attempts % hosts.length]!;
    s.attempts++;
    s.starts.push(t);
    const r = await psql(conninfo(host, file));
    if (r.code !== 0 || r.stdout.trim() !== '1') s.failures.push({ at: t, host, error: r.stderr.trim().split('\n').pop() ?? `exit ${r.code}` });
    await sleep(Math.max(0, 100 - (Date.now() - t)));
  }
  return s;
}

/** Resolves with a copy of the new CA as soon as pgtls publishes it (ca.crt changes); bounded. */
async function newCaWhenPublished(oldCa: string, deadline: number): Promise<string> {
  const dest = join(work, 'new-ca.crt');
  while (Date.now() < deadline) {
    const now = readFileSync(join(caDir, 'ca.crt'), 'utf8');
    if (now !== oldCa) {
      writeFileSync(dest, now);
      return dest;
    }
    await sleep(50);
  }
  throw new Error('the new CA was never published in ca.crt');
}

/** Connections started before `t`, and how many of them failed. */
const countBefore = (s: LoopStats, t: number) => ({ attempts: s.starts.filter((x) => x < t).length, failures: s.failures.filter((f) => f.at < t).length });

test('(b) CA rotation: old-CA and new-CA verify-full clients every 100 ms, not one failure until ca-finish; then only the new CA', async () => {
  if (!haveLab(lab)) return;
  const oldCaFile = join(work, 'old-ca.crt');
  copyFileSync(join(caDir, 'ca.crt'), oldCaFile);
  const oldCa = readFileSync(oldCaFile, 'utf8');
  const oldCn = inspectCert(oldCa).subjectCN!;
  const stop = { done: false };
  const deadline = Date.now() + 300_000;
  const oldLoop = clientLoop('old CA', Promise.resolve(oldCaFile), stop, 3000, deadline);
  const newCa = newCaWhenPublished(oldCa, deadline);
  const newLoop = clientLoop('new CA', newCa, stop, 3000, deadline);
  newCa.catch(() => (stop.done = true));
  await sleep(1000);

  try {
    const [ca, caMs] = await timed(() => reissue(['-e', 'reissue=ca']));
    assert.is(ca.code, 0, out(ca));
    console.log(`  reissue.yaml -e reissue=ca: ${caMs} ms`);
    assert.ok(existsSync(join(caDir, 'previous', 'ca.key')), 'the old CA is kept until ca-finish');
    // each server: leaf of the new CA, then the new CA cross-signed by the old one
    const newCn = inspectCert(readFileSync(await newCa, 'utf8')).subjectCN!;
    for (const [h, port] of [['pg1', 5432], ['pg2', 5432], ['pg3', 9999]] as const)
      assert.equal((await served(h, port)).chain, [`${h} <- ${newCn}`, `${newCn} <- ${oldCn}`], h);
    const pgpoolOld = await psql(conninfo('pg3', oldCaFile, 9999));
    assert.is(pgpoolOld.stdout.trim(), '1', `old-CA client through Pgpool-II: ${pgpoolOld.stderr}`);
    const pgpoolNew = await psql(conninfo('pg3', await newCa, 9999));
    assert.is(pgpoolNew.stdout.trim(), '1', `new-CA client through Pgpool-II: ${pgpoolNew.stderr}`);

    // between the two steps: install.yaml neither undoes nor advances the rotation, re-running `ca` changes nothing
    const inst = await install();
    assert.is(inst.code, 0, out(inst));
    assert.is(totalChanged(inst.report!), 0, out(inst));
    const again = await reissue(['-e', 'reissue=ca']);
    assert.is(again.code, 0, out(again));
    assert.is(totalChanged(again.report!), 0, out(again));
    assert.match(again.stdout, /already in progress .* it continues; run reissue=ca-finish/);
    await sleep(1000);

    const finishAt = Date.now();
    const [fin, finMs] = await timed(() => reissue(['-e', 'reissue=ca-finish']));
    console.log(`  reissue.yaml -e reissue=ca-finish: ${finMs} ms`);
    assert.is(fin.code, 0, out(fin));
    await sleep(1000);
    stop.done = true;
    const [o, w] = await Promise.all([oldLoop, newLoop]);
    const oBefore = countBefore(o, finishAt);
    const wBefore = countBefore(w, finishAt);
    console.log(`  old-CA client: ${o.attempts} connections; before ca-finish ${oBefore.attempts}, of which ${oBefore.failures} failed; during/after ca-finish ${o.failures.length - oBefore.failures} failed (expected: the old CA is dropped)`);
    console.log(`  new-CA client: ${w.attempts} connections from the new CA's publication on (${((finishAt - w.startedAt) / 1000).toFixed(1)} s before ca-finish began), ${wBefore.failures} failed before ca-finish, ${w.failures.length} in all`);
    assert.is(oBefore.failures, 0, `old-CA client failed during the rotation: ${JSON.stringify(o.failures.slice(0, 3))}`);
    assert.is(w.failures.length, 0, `new-CA client failed: ${JSON.stringify(w.failures.slice(0, 3))}`);
    assert.ok(o.attempts > 50 && w.attempts > 20, `enough connections: old ${o.attempts}, new ${w.attempts}`);
    assert.ok(w.startedAt < finishAt - 3000, 'the new-CA client ran during step ca, not only after it');
  } finally {
    stop.done = true;
    await Promise.allSettled([oldLoop, newLoop]);
  }

  // after ca-finish: the old CA verifies nothing any more, the new one everything
  const newCaFile = join(work, 'new-ca.crt');
  for (const [h, port] of [['pg1', 5432], ['pg2', 5432], ['pg3', 9999]] as const) {
    const old = await psql(conninfo(h, oldCaFile, port));
    assert.is.not(old.code, 0, `${h}: old-CA client must fail now`);
    assert.match(old.stderr, /certificate verify failed/);
    const fresh = await psql(conninfo(h, newCaFile, port));
    assert.is(fresh.stdout.trim(), '1', `${h}: ${fresh.stderr}`);
    const chain = (await served(h, port)).chain;
    assert.ok(chain.every((c) => !c.split(' <- ').includes(oldCn)), `${h}: nothing of the old CA is served any more: ${chain.join(', ')}`);
  }
  assert.not.ok(existsSync(join(caDir, 'previous')), 'the old CA left the controller');
  const retired = readdirSync(join(caDir, 'retired'));
  assert.is(retired.length, 1);
  assert.not.ok(existsSync(join(caDir, 'retired', retired[0]!, 'ca.key')), 'a retired CA keeps no key');
  const rootCrt = await lab.exec('pg1', `grep -c 'BEGIN CERTIFICATE' ${KEYS}/server/root.crt ${KEYS}/client/root.crt`);
  assert.is(rootCrt.stdout.trim(), `${KEYS}/server/root.crt:1\n${KEYS}/client/root.crt:1`);
  const again = await reissue(['-e', 'reissue=ca-finish']);
  assert.is(again.code, 0, out(again));
  assert.is(totalChanged(again.report!), 0, out(again));
  const inst = await install();
  assert.is(totalChanged(inst.report!), 0, out(inst));
  // the standby still streams (over TLS) after all of it
  assert.match(await lab.sql('pg1', `select r.application_name || ':' || r.state from pg_stat_replication r`), /^pg2:streaming$/);
});

// teardown, not a test: it is not counted (a test must be able to fail)
test.after(async () => {
  if (lab && process.env['LAB_KEEP'] !== '1') await lab.down();
});

test.run();
