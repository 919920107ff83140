import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { certMatchesKey, createCA, createCsr, generateKeyPair, inspectCert, signCsr, type CertAndKey } from '../../src/crypto/x509.js';
import { loadOrCreateCa, warmCaKey } from '../../src/ca/ca.js';
import { decideCert, type ExistingCert, type WantedCert } from '../../src/modules/gencert/decide.js';
import { parseCsrs, parseProbe } from '../../src/modules/gencert/host.js';
import { CaRun, caRunOf } from '../../src/ca/ca-run.js';
import { MapRunState } from '../../src/core/run-state.js';

/** This file's run: its CA cache and simulated rotations (one per run, never module-level in the product). */
const caRun = new CaRun();

// gencert's "may the existing certificate stay?" decision, on real certificates made with src/crypto/x509.ts.

const DAY = 86_400_000;
const tmp = mkdtempSync(join(tmpdir(), 'pgtls-gencert-test-'));
const tmpDir = () => mkdtempSync(join(tmp, 'ca-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));
let ca: CertAndKey;
let otherCa: CertAndKey;
let key: { keyPem: string; publicKeyPem: string };
let otherKey: { keyPem: string; publicKeyPem: string };

function issue(opts: { kind?: 'server' | 'client'; cn?: string; sans?: { dns?: string[]; ip?: string[] }; days?: number; by?: CertAndKey; keyPem?: string }): string {
  return signCsr({
    csrPem: createCsr({ keyPem: opts.keyPem ?? key.keyPem, commonName: 'ignored' }),
    ca: opts.by ?? ca,
    kind: opts.kind ?? 'server',
    commonName: opts.cn ?? 'pg1',
    sans: opts.sans ?? { dns: ['pg1', 'pg1.lab.internal'], ip: ['10.231.0.11'] },
    days: opts.days ?? 825,
  });
}

const want = (over: Partial<WantedCert> = {}): WantedCert => ({
  kind: 'server',
  commonName: 'pg1',
  sans: ['pg1', 'pg1.lab.internal', '10.231.0.11'],
  caCertPem: ca.certPem,
  renewBeforeDays: 30,
  ...over,
});

// A first test, not test.before(): uvu 0.5 swallows errors thrown in before().
test('setup', async () => {
  [ca, otherCa, key, otherKey] = await Promise.all([
    createCA({ commonName: 'test CA', keyBits: 2048 }),
    createCA({ commonName: 'other CA', keyBits: 2048 }),
    generateKeyPair(2048),
    generateKeyPair(2048),
  ]);
});

interface Row {
  name: string;
  existing: () => ExistingCert;
  want?: () => Partial<WantedCert>;
  now?: () => Date;
  keep: boolean;
  reason?: RegExp;
}

const rows: Row[] = [
  { name: 'no certificate', existing: () => ({ certPem: null, keyPem: key.keyPem }), keep: false, reason: /no certificate yet/ },
  { name: 'garbage certificate', existing: () => ({ certPem: 'garbage\n', keyPem: key.keyPem }), keep: false, reason: /not a readable certificate/ },
  { name: 'key missing or unreadable', existing: () => ({ certPem: issue({}), keyPem: null }), keep: false, reason: /private key is missing/ },
  { name: 'key of another pair', existing: () => ({ certPem: issue({}), keyPem: otherKey.keyPem }), keep: false, reason: /does not match the private key/ },
  { name: 'garbage key', existing: () => ({ certPem: issue({}), keyPem: 'not a key' }), keep: false, reason: /does not match/ },
  { name: 'issued by another CA', existing: () => ({ certPem: issue({ by: otherCa }), keyPem: key.keyPem }), keep: false, reason: /not issued by the wanted CA/ },
  { name: 'CN differs (host renamed)', existing: () => ({ certPem: issue({ cn: 'old-name' }), keyPem: key.keyPem }), keep: false, reason: /CN is old-name, want pg1/ },
  {
    name: 'a wanted SAN is missing (ansible_host added)',
    existing: () => ({ certPem: issue({ sans: { dns: ['pg1', 'pg1.lab.internal'] } }), keyPem: key.keyPem }),
    keep: false,
    reason: /SANs are \[pg1, pg1\.lab\.internal\], want \[pg1, pg1\.lab\.internal, 10\.231\.0\.11\]/,
  },
  {
    name: 'an extra SAN (pgtls_cert_sans entry removed)',
    existing: () => ({ certPem: issue({ sans: { dns: ['pg1', 'pg1.lab.internal', 'db.example.com'], ip: ['10.231.0.11'] } }), keyPem: key.keyPem }),
    keep: false,
    reason: /SANs are/,
  },
  {
    name: 'same SANs in another order and case, IPv6 written differently: keep',
    existing: () => ({ certPem: issue({ sans: { dns: ['PG1.lab.internal', 'pg1'], ip: ['2001:db8::1', '10.231.0.11'] } }), keyPem: key.keyPem }),
    want: () => ({ sans: ['10.231.0.11', 'pg1', 'pg1.LAB.internal', '2001:0db8:0:0:0:0:0:1'] }),
    keep: true,
  },
  {
    name: 'server certificate where a client certificate is wanted',
    existing: () => ({ certPem: issue({ cn: 'webadmin' }), keyPem: key.keyPem }),
    want: () => ({ kind: 'client', commonName: 'webadmin', sans: [] }),
    keep: false,
    reason: /lacks extended key usage clientAuth/,
  },
  {
    name: 'client certificate for another role',
    existing: () => ({ certPem: issue({ kind: 'client', cn: 'appuser', sans: {} }), keyPem: key.keyPem }),
    want: () => ({ kind: 'client', commonName: 'webadmin', sans: [] }),
    keep: false,
    reason: /CN is appuser, want webadmin/,
  },
  {
    name: 'good client certificate',
    existing: () => ({ certPem: issue({ kind: 'client', cn: 'webadmin', sans: {} }), keyPem: key.keyPem }),
    want: () => ({ kind: 'client', commonName: 'webadmin', sans: [] }),
    keep: true,
  },
  { name: 'expires inside the renewal window', existing: () => ({ certPem: issue({ days: 20 }), keyPem: key.keyPem }), keep: false, reason: /expires in 1\d days \(renew before 30\)/ },
  { name: 'just outside the renewal window: keep', existing: () => ({ certPem: issue({ days: 32 }), keyPem: key.keyPem }), keep: true },
  {
    name: 'expired',
    existing: () => ({ certPem: issue({ days: 825 }), keyPem: key.keyPem }),
    now: () => new Date(Date.now() + 900 * DAY),
    keep: false,
    reason: /has expired/,
  },
  { name: 'not valid yet (clock far behind)', existing: () => ({ certPem: issue({}), keyPem: key.keyPem }), now: () => new Date(Date.now() - 2 * DAY), keep: false, reason: /not valid yet/ },
  { name: 'renew_before_days 0 keeps a short certificate', existing: () => ({ certPem: issue({ days: 2 }), keyPem: key.keyPem }), want: () => ({ renewBeforeDays: 0 }), keep: true },
  { name: 'matching, key given as its public half (openssl pkey -pubout on the host)', existing: () => ({ certPem: issue({}), keyPem: key.publicKeyPem }), keep: true },
  { name: 'matching, private key PEM (keygen: controller)', existing: () => ({ certPem: issue({}), keyPem: key.keyPem }), keep: true },
  {
    name: 'the CA itself is not a server certificate',
    existing: () => ({ certPem: ca.certPem, keyPem: ca.keyPem }),
    keep: false,
    reason: /CN is test CA|lacks extended key usage/,
  },
];

for (const r of rows) {
  test(`decideCert: ${r.name}`, () => {
    const d = decideCert(r.existing(), want(r.want?.()), r.now?.());
    assert.is(d.keep, r.keep, JSON.stringify(d));
    if (!d.keep && r.reason) assert.match(d.reason, r.reason);
  });
}

test('CA store: concurrent callers get one CA; files 0600/0644; --check never creates', async () => {
  const dir = join(tmpDir(), 'ca');
  const opts = { dir, commonName: 'pgtls CA', days: 3650, keyBits: 2048 };
  assert.is(await loadOrCreateCa(caRun, { ...opts, create: false }), null, 'check mode: absent CA is not created');
  assert.not.ok(readdirSafe(dir).length);
  const all = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateCa(caRun, { ...opts, create: true })));
  assert.ok(all.every((c) => c && c.certPem === all[0]!.certPem), 'one CA for everybody');
  assert.equal(readdirSync(dir).sort(), ['ca.crt', 'ca.key'], 'no temp files left');
  assert.is(statSync(join(dir, 'ca.key')).mode & 0o777, 0o600);
  assert.is(statSync(dir).mode & 0o777, 0o700);
  assert.is(inspectCert(readFileSync(join(dir, 'ca.crt'), 'utf8')).subjectCN, 'pgtls CA');
});

test('CA store: a key warmed ahead (warmCaKey) writes nothing, is the key of the CA then created, and is used once', async () => {
  const run = new CaRun();
  const dir = join(tmpDir(), 'ca');
  warmCaKey(run, dir, 2048);
  assert.is(run.spareKeys.size, 1);
  assert.not.ok(readdirSafe(dir).length, 'warming writes nothing');
  const spare = await [...run.spareKeys.values()][0]!;
  const made = await loadOrCreateCa(run, { dir, commonName: 'pgtls CA', days: 3650, keyBits: 2048, create: true });
  assert.ok(made && certMatchesKey(made.certPem, spare), 'the CA is made with the warmed key');
  assert.is(run.spareKeys.size, 0, 'taken once');
  warmCaKey(run, dir, 2048);
  assert.is(run.spareKeys.size, 0, 'a CA that exists needs no key');
  // a key of another size is not taken for this CA
  const other = join(tmpDir(), 'ca');
  warmCaKey(run, other, 2048);
  const big = await loadOrCreateCa(run, { dir: other, commonName: 'pgtls CA', days: 3650, keyBits: 3072, create: true });
  assert.not.ok(certMatchesKey(big!.certPem, await [...run.spareKeys.values()][0]!));
  // at most two in flight (per-node CAs of a fleet are made when they are created)
  for (const d of ['n1', 'n2', 'n3']) warmCaKey(run, join(tmpDir(), d), 2048);
  assert.is(run.spareKeys.size, 2);
});

test('CA store: a second process losing the link() race uses the winner\'s CA', async () => {
  const dir = tmpDir();
  // the "other process" already published its CA: we must read it, not overwrite it
  const theirs = await createCA({ commonName: 'theirs', keyBits: 2048 });
  writeFileSync(join(dir, 'ca.key'), theirs.keyPem, { mode: 0o600 });
  writeFileSync(join(dir, 'ca.crt'), theirs.certPem);
  const got = await loadOrCreateCa(caRun, { dir, commonName: 'ours', days: 10, keyBits: 2048, create: true });
  assert.is(got?.certPem, theirs.certPem);
});

test('CA store: a key that does not match the certificate is refused', async () => {
  const dir = tmpDir();
  writeFileSync(join(dir, 'ca.key'), otherCa.keyPem, { mode: 0o600 });
  writeFileSync(join(dir, 'ca.crt'), ca.certPem);
  try {
    await loadOrCreateCa(caRun, { dir, commonName: 'x', days: 10, keyBits: 2048, create: true });
    assert.unreachable('should have thrown');
  } catch (e) {
    assert.match((e as Error).message, /ca\.key does not match ca\.crt/);
  }
});

test('host probe output: modes, owners and public keys are parsed', () => {
  const p = parseProbe(
    [
      'stat 600 postgres postgres /k/server/server.key',
      'absent /k/client/client.key',
      'stat 700 postgres postgres /k/server dir',
      'openssl=1',
      'pub /k/server/server.key',
      key.publicKeyPem.trimEnd(),
      '',
    ].join('\n'),
  );
  assert.equal(p.paths.get('/k/server/server.key'), { exists: true, mode: '600', owner: 'postgres', group: 'postgres' });
  assert.is(p.paths.get('/k/client/client.key')?.exists, false);
  assert.is(p.paths.get('/k/server dir')?.mode, '700');
  assert.ok(p.openssl);
  assert.is(p.publicKeys.get('/k/server/server.key'), key.publicKeyPem);
});

test('keygen output: one CSR per key name', () => {
  const csr = createCsr({ keyPem: key.keyPem, commonName: 'pgtls-csr' });
  const m = parseCsrs(`new server /k/server/.pgtls-tmp.r1.AbC\n${csr}new client /k/client dir/.pgtls-tmp.r1.XyZ\n${csr}`);
  assert.equal([...m.keys()], ['server', 'client']);
  assert.equal(m.get('client'), { tempPath: '/k/client dir/.pgtls-tmp.r1.XyZ', csrPem: csr });
  assert.throws(() => parseCsrs('openssl: error\n'), /printed no certificate request/);
});

function readdirSafe(d: string): string[] {
  try {
    return readdirSync(d);
  } catch {
    return [];
  }
}

test.run();
