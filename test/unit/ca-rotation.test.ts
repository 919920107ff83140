// CA rotation and forced re-issue: gencert's pure decisions per stage (rotation.ts + decide.ts) on real
// certificates, the chains they produce checked with the real `openssl verify` as an old-CA client and a
// new-CA client would, and the controller's CA directory state machine (rotation-store.ts) on a temp dir.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCA, createCsr, crossSign, generateKeyPair, inspectCert, signCsr, splitPemBundle, type CertAndKey } from '../../src/crypto/x509.js';
import { decideCert, type WantedCert } from '../../src/modules/gencert/decide.js';
import { caView, certFile, forced, type Force, type Rotation, type RotationMode } from '../../src/ca/rotation.js';
import {
  beginRotation,
  finishRotation,
  nextCommonName,
  publishRotation,
  readRotation,
  viewRotation,
} from '../../src/ca/rotation-store.js';
import { loadOrCreateCa } from '../../src/ca/ca.js';
import { CaRun, caRunOf } from '../../src/ca/ca-run.js';
import { MapRunState } from '../../src/core/run-state.js';

/** This file's run: its CA cache and simulated rotations (one per run, never module-level in the product). */
const caRun = new CaRun();

const tmp = mkdtempSync(join(tmpdir(), 'pgtls-ca-rotation-test-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const tmpDir = () => mkdtempSync(join(tmp, 'd-'));

interface World {
  old: CertAndKey;
  next: CertAndKey;
  rotation: Rotation;
  key: { keyPem: string; publicKeyPem: string };
  leafOld: string;
  leafNew: string;
  clientOld: string;
}
let W: World;

const SANS = { dns: ['pg1', 'pg1.lab.internal'], ip: ['10.231.0.11'] };
function leaf(by: CertAndKey, keyPem: string, kind: 'server' | 'client' = 'server'): string {
  return signCsr({ csrPem: createCsr({ keyPem, commonName: 'x' }), ca: by, kind, commonName: kind === 'server' ? 'pg1' : 'webadmin', sans: kind === 'server' ? SANS : {}, days: 825 });
}
const want = (caCertPem: string | string[], kind: 'server' | 'client' = 'server'): WantedCert => ({
  kind,
  commonName: kind === 'server' ? 'pg1' : 'webadmin',
  sans: kind === 'server' ? ['pg1', 'pg1.lab.internal', '10.231.0.11'] : [],
  caCertPem,
  renewBeforeDays: 30,
});

// A first test, not test.before(): uvu 0.5 swallows errors thrown in before().
test('setup: an old CA, a new CA, the two cross certificates, leaves of each', async () => {
  const [old, next, key] = await Promise.all([
    createCA({ commonName: 'pgtls CA', keyBits: 2048 }),
    createCA({ commonName: 'pgtls CA 2030-01-01 00:00:00', keyBits: 2048 }),
    generateKeyPair(2048),
  ]);
  const rotation: Rotation = {
    oldCaPem: old.certPem,
    next,
    forward: crossSign({ certPem: next.certPem, by: old }),
    back: crossSign({ certPem: old.certPem, by: next }),
    published: false,
  };
  W = { old, next, rotation, key, leafOld: leaf(old, key.keyPem), leafNew: leaf(next, key.keyPem), clientOld: leaf(old, key.keyPem, 'client') };
});

// ---------------------------------------------------------------------------------------------------------
// Bundle contents and accepted issuers, per stage

const stages: { mode: RotationMode; rotation: () => Rotation | null; bundle: () => string[]; accepted: () => string[] }[] = [
  { mode: 'auto', rotation: () => null, bundle: () => [W.old.certPem], accepted: () => [W.old.certPem] },
  { mode: 'finish', rotation: () => null, bundle: () => [W.old.certPem], accepted: () => [W.old.certPem] }, // finishing twice: steady
  { mode: 'auto', rotation: () => W.rotation, bundle: () => [W.next.certPem, W.old.certPem], accepted: () => [W.next.certPem, W.old.certPem] },
  { mode: 'trust', rotation: () => W.rotation, bundle: () => [W.next.certPem, W.old.certPem], accepted: () => [W.next.certPem, W.old.certPem] },
  { mode: 'rotate', rotation: () => W.rotation, bundle: () => [W.next.certPem, W.old.certPem], accepted: () => [W.next.certPem] },
  { mode: 'finish', rotation: () => ({ ...W.rotation, published: true }), bundle: () => [W.next.certPem], accepted: () => [W.next.certPem] },
];
for (const [i, s] of stages.entries()) {
  test(`caView #${i}: ${s.mode}${s.rotation === stages[0]!.rotation ? '' : ' during a rotation'} -> root.crt and accepted issuers`, () => {
    const v = caView(s.mode, s.rotation()?.next ?? W.old, s.rotation());
    assert.equal(v.bundle, s.bundle());
    assert.equal(v.accepted, s.accepted());
    // whatever the stage, new leaves come from the newest CA
    assert.is(v.issuer.certPem, (s.rotation()?.next ?? W.old).certPem);
  });
}

test('caView: trust/rotate need a rotation; finish needs it published', () => {
  assert.throws(() => caView('trust', W.old, null), /no CA rotation in progress/);
  assert.throws(() => caView('rotate', W.old, null), /no CA rotation in progress/);
  assert.throws(() => caView('finish', W.next, W.rotation), /not published yet\): run reissue=ca again/);
});

test('chains: a leaf is followed by the cross certificate that links its issuer to the other CA', () => {
  const v = caView('auto', W.next, W.rotation);
  assert.equal(v.chainFor(W.leafNew), [W.rotation.forward]);
  assert.equal(v.chainFor(W.leafOld), [W.rotation.back]);
  assert.equal(caView('finish', W.next, { ...W.rotation, published: true }).chainFor(W.leafNew), []);
  assert.equal(caView('auto', W.old, null).chainFor(W.leafOld), []);
});

// ---------------------------------------------------------------------------------------------------------
// Which leaves are re-issued

const leaves: { name: string; mode: RotationMode; cert: () => string; kind?: 'server' | 'client'; keep: boolean }[] = [
  { name: 'install during a rotation keeps an old-CA leaf (does not advance it)', mode: 'auto', cert: () => W.leafOld, keep: true },
  { name: 'install during a rotation keeps a new-CA leaf (does not undo it)', mode: 'auto', cert: () => W.leafNew, keep: true },
  { name: 'step 1 (trust) keeps an old-CA leaf', mode: 'trust', cert: () => W.leafOld, keep: true },
  { name: 'step 2 (rotate) re-issues an old-CA server leaf', mode: 'rotate', cert: () => W.leafOld, keep: false },
  { name: 'step 2 (rotate) re-issues an old-CA client leaf', mode: 'rotate', cert: () => W.clientOld, kind: 'client', keep: false },
  { name: 'step 2 run again keeps the new-CA leaf (idempotent)', mode: 'rotate', cert: () => W.leafNew, keep: true },
  { name: 'finish keeps the new-CA leaf', mode: 'finish', cert: () => W.leafNew, keep: true },
  { name: 'finish re-issues a straggler still on the old CA', mode: 'finish', cert: () => W.leafOld, keep: false },
];
for (const l of leaves) {
  test(`leaf: ${l.name}`, () => {
    const rot = { ...W.rotation, published: l.mode === 'finish' };
    const v = caView(l.mode, W.next, rot);
    const d = decideCert({ certPem: l.cert(), keyPem: W.key.publicKeyPem }, want(v.accepted, l.kind));
    assert.is(d.keep, l.keep, JSON.stringify(d));
    if (!d.keep) assert.match(d.reason, /not issued by the wanted CA/);
  });
}

test('decideCert still takes a single CA (install.yaml outside a rotation)', () => {
  assert.ok(decideCert({ certPem: W.leafOld, keyPem: W.key.publicKeyPem }, want(W.old.certPem)).keep);
  assert.not.ok(decideCert({ certPem: W.leafNew, keyPem: W.key.publicKeyPem }, want(W.old.certPem)).keep);
});

const forceTable: [Force, boolean, boolean][] = [
  ['none', false, false],
  ['server', true, false],
  ['client', false, true],
  ['all', true, true],
];
for (const [f, server, client] of forceTable) {
  test(`force: ${f} re-issues server=${server} client=${client}`, () => {
    assert.is(forced(f, 'server'), server);
    assert.is(forced(f, 'client'), client);
  });
}

test('certFile: leaf then chain, each block newline-terminated; splitPemBundle reads the leaf back', () => {
  const text = certFile(W.leafNew.trimEnd(), [W.rotation.forward]);
  assert.ok(text.endsWith('-----END CERTIFICATE-----\n'));
  assert.equal(splitPemBundle(text), [W.leafNew, W.rotation.forward]);
  assert.is(certFile(W.leafNew, []), W.leafNew);
});

// ---------------------------------------------------------------------------------------------------------
// The chains, verified by the real openssl as the two kinds of clients would (libpq uses OpenSSL)

function opensslVerify(caPem: string, chain: string[]): boolean {
  const d = tmpDir();
  writeFileSync(join(d, 'ca.pem'), caPem);
  writeFileSync(join(d, 'leaf.pem'), chain[0]!);
  const args = ['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', join(d, 'ca.pem')];
  if (chain.length > 1) {
    writeFileSync(join(d, 'untrusted.pem'), chain.slice(1).join(''));
    args.push('-untrusted', join(d, 'untrusted.pem'));
  }
  try {
    execFileSync('openssl', [...args, join(d, 'leaf.pem')], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

const served: { name: string; mode: RotationMode; published: boolean; leaf: () => string; old: boolean; new: boolean }[] = [
  { name: 'step 1: old leaf + back cross', mode: 'trust', published: false, leaf: () => W.leafOld, old: true, new: true },
  { name: 'step 2: new leaf + forward cross', mode: 'rotate', published: false, leaf: () => W.leafNew, old: true, new: true },
  { name: 'after ca-finish: new leaf alone', mode: 'finish', published: true, leaf: () => W.leafNew, old: false, new: true },
];
for (const s of served) {
  test(`served chain, ${s.name}: old-CA client ${s.old ? 'verifies' : 'fails'}, new-CA client ${s.new ? 'verifies' : 'fails'}`, () => {
    const v = caView(s.mode, W.next, { ...W.rotation, published: s.published });
    const chain = splitPemBundle(certFile(s.leaf(), v.chainFor(s.leaf())));
    assert.is(opensslVerify(W.old.certPem, chain), s.old, 'old-CA client');
    assert.is(opensslVerify(W.next.certPem, chain), s.new, 'new-CA client');
    // and a client given root.crt of this stage (what pgtls's own checks use)
    assert.ok(opensslVerify(v.bundle.join(''), chain), 'root.crt of the stage');
  });
}

// ---------------------------------------------------------------------------------------------------------
// The controller's CA directory

async function steadyDir(): Promise<string> {
  const dir = join(tmpDir(), `ca-${n++}`);
  await loadOrCreateCa(caRun, { dir, commonName: 'pgtls CA', days: 3650, keyBits: 2048, create: true });
  return dir;
}
const opts = { days: 3650, keyBits: 2048 };

test('store: begin once for many concurrent hosts; publish; finish retires the old CA without its key', async () => {
  const dir = await steadyDir();
  const oldCa = readFileSync(join(dir, 'ca.crt'), 'utf8');
  assert.is(await readRotation(caRun, dir), null);

  const begins = Array.from({ length: 6 }, () => beginRotation(caRun, dir, { ...opts, simulate: false }));
  const results = await Promise.all(begins.map((b) => b.done));
  assert.is(begins.filter((b) => b.mine).length, 1, 'one host reports the change');
  assert.match(results[0]!, /created a new CA "pgtls CA \d{4}-\d\d-\d\d \d\d:\d\d:\d\d"/);
  const staged = (await readRotation(caRun, dir))!;
  assert.is(staged.published, false);
  assert.is(staged.oldCaPem, oldCa);
  assert.is(readFileSync(join(dir, 'ca.crt'), 'utf8'), oldCa, 'ca.crt unchanged until publish');
  assert.is(statSync(join(dir, 'next', 'ca.key')).mode & 0o777, 0o600);
  assert.is(statSync(join(dir, 'next')).mode & 0o777, 0o700);
  assert.is(await beginRotation(caRun, dir, { ...opts, simulate: false }).done, null, 'a second begin continues the same rotation');

  assert.match((await publishRotation(caRun, dir, false).done)!, /published the new CA/);
  const published = (await readRotation(caRun, dir))!;
  assert.ok(published.published);
  assert.is(readFileSync(join(dir, 'ca.crt'), 'utf8'), staged.next.certPem);
  assert.is(readFileSync(join(dir, 'previous', 'ca.crt'), 'utf8'), oldCa);
  assert.not.ok(existsSync(join(dir, 'next')));
  assert.is(published.forward, staged.forward, 'the cross certificates are kept byte for byte (server.crt stays stable)');
  assert.is(await publishRotation(caRun, dir, false).done, null, 'publishing twice is a no-op');
  // gencert's cached CA was dropped: it now reads the new CA
  assert.is((await loadOrCreateCa(caRun, { dir, commonName: 'x', days: 1, keyBits: 2048, create: false }))?.certPem, staged.next.certPem);

  assert.match((await finishRotation(caRun, dir, false).done)!, /retired the old CA "pgtls CA"/);
  assert.is(await readRotation(caRun, dir), null);
  const retired = readdirSync(join(dir, 'retired'));
  assert.is(retired.length, 1);
  assert.equal(readdirSync(join(dir, 'retired', retired[0]!)).sort(), ['ca.crt', 'cross-back.crt', 'cross.crt'], 'no key');
  assert.equal(readdirSync(dir).sort(), ['ca.crt', 'ca.key', 'retired'], 'no temp files left');
  assert.is(await finishRotation(caRun, dir, false).done, null, 'finishing twice is a no-op');
});

test('store: ca-finish refuses a rotation that was never published; begin refuses a missing CA', async () => {
  const dir = await steadyDir();
  await beginRotation(caRun, dir, { ...opts, simulate: false }).done;
  try {
    await finishRotation(caRun, dir, false).done;
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /not published yet/);
  }
  try {
    await beginRotation(caRun, tmpDir(), { ...opts, simulate: false }).done;
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /no CA in .* to rotate: run install\.yaml first/);
  }
});

test('store: a publish that stopped half-way (previous/ written, next/ still there) is read consistently and resumed', async () => {
  const dir = await steadyDir();
  await beginRotation(caRun, dir, { ...opts, simulate: false }).done;
  const staged = (await readRotation(caRun, dir))!;
  // simulate the crash: previous/ made, ca.key already swapped, ca.crt not
  execFileSync('cp', ['-a', dir, `${dir}.copy`]);
  execFileSync('mkdir', [join(dir, 'previous')]);
  for (const f of ['ca.crt', 'ca.key', 'cross.crt', 'cross-back.crt'])
    writeFileSync(join(dir, 'previous', f), f.startsWith('ca.') ? readFileSync(join(`${dir}.copy`, f)) : readFileSync(join(dir, 'next', f)), { mode: f === 'ca.key' ? 0o600 : 0o644 });
  writeFileSync(join(dir, 'ca.key'), staged.next.keyPem);
  const mid = (await readRotation(caRun, dir))!;
  assert.is(mid.oldCaPem, staged.oldCaPem, 'old CA taken from previous/, not the half-swapped top level');
  assert.is(mid.next.certPem, staged.next.certPem);
  assert.is(mid.published, false);
  await publishRotation(caRun, dir, false).done;
  const done = (await readRotation(caRun, dir))!;
  assert.ok(done.published);
  assert.is(done.next.certPem, staged.next.certPem);
});

test('store: --check changes nothing on disk and lets later steps plan against the simulated state', async () => {
  const dir = await steadyDir();
  const before = readdirSync(dir).sort();
  assert.match((await beginRotation(caRun, dir, { ...opts, simulate: true }).done)!, /^would create a new CA/);
  assert.equal(readdirSync(dir).sort(), before);
  assert.is(await readRotation(caRun, dir), null, 'nothing on disk');
  const sim = (await viewRotation(caRun, dir))!;
  assert.is(sim.published, false);
  assert.match((await publishRotation(caRun, dir, true).done)!, /^would publish/);
  assert.ok((await viewRotation(caRun, dir))!.published);
  assert.match((await finishRotation(caRun, dir, true).done)!, /^would retire the old CA/);
  assert.is(await viewRotation(caRun, dir), null);
  assert.equal(readdirSync(dir).sort(), before);
  caRun.simulated.clear();
});

test('store: cross certificates that do not link the two CAs are refused', async () => {
  const dir = await steadyDir();
  await beginRotation(caRun, dir, { ...opts, simulate: false }).done;
  const stranger = await createCA({ commonName: 'stranger', keyBits: 2048 });
  writeFileSync(join(dir, 'next', 'cross.crt'), crossSign({ certPem: stranger.certPem, by: W.old }));
  try {
    await readRotation(caRun, dir);
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /do not link the old and the new CA/);
  }
});

test('nextCommonName: stamped, never the old name, restamped (not stacked) on the next rotation, <= 64 bytes', () => {
  const t = new Date('2030-05-06T07:08:09Z');
  assert.is(nextCommonName('pgtls CA', undefined, t), 'pgtls CA 2030-05-06 07:08:09');
  assert.is(nextCommonName('pgtls CA 2030-05-06 07:08:09', undefined, new Date('2031-01-01T00:00:00Z')), 'pgtls CA 2031-01-01 00:00:00');
  assert.is(nextCommonName('pgtls CA', 'Acme DB CA', t), 'Acme DB CA 2030-05-06 07:08:09');
  assert.ok(Buffer.byteLength(nextCommonName('x'.repeat(80), undefined, t)) <= 64);
  assert.is(inspectCert(W.next.certPem).subjectCN, 'pgtls CA 2030-01-01 00:00:00');
});

test.run();
