// X.509 checked with the real `openssl` CLI (verify -x509_strict with the right -purpose, x509 -text, req
// -verify), with Node's TLS stack (hostname/IP matching, mutual TLS) and with a real PostgreSQL 15 + libpq
// (verify-full, cert auth, a cross-signed chain during CA rotation). openssl only ever gets file paths:
// keys are written to 0600 files, subjects come from config files.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import forge from 'node-forge';
import { execFileSync, spawn } from 'node:child_process';
import { chmod, chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import {
  certIssuedBy,
  certMatchesKey,
  classifySan,
  createCA,
  createCsr,
  crossSign,
  generateKeyPair,
  inspectCert,
  normalizeIp,
  signCsr,
  splitPemBundle,
  splitSans,
  type CertAndKey,
  type KeyPairPem,
} from '../../src/crypto/x509.js';
import { psql, start, stop, type PgCluster } from './pg-throwaway.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function openssl(args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

const S: { dir: string; ca?: CertAndKey; n: number; pool: Promise<KeyPairPem>[] } = { dir: '', n: 0, pool: [] };

/**
 * RSA-2048 keygen costs ~0.2 s of CPU; the tests need ~20 distinct keys. They are generated up front, in
 * parallel on the threadpool (which is the point of generateKeyPair being async), and handed out once each.
 */
function pooledKey(): Promise<KeyPairPem> {
  return S.pool.shift() ?? generateKeyPair(2048);
}

/** Writes `content` to a fresh file in the test dir (0600: some are keys) and returns its path. */
async function file(name: string, content: string): Promise<string> {
  const p = path.join(S.dir, `${S.n++}-${name}`);
  await writeFile(p, content, { mode: 0o600 });
  return p;
}

async function verify(caFile: string, cert: string, extra: string[] = []): Promise<Run> {
  return openssl(['verify', '-x509_strict', '-CAfile', caFile, ...extra, cert], S.dir);
}

async function x509Text(cert: string): Promise<string> {
  const r = await openssl(['x509', '-noout', '-text', '-nameopt', 'RFC2253,-esc_msb', '-in', cert], S.dir);
  assert.is(r.code, 0, r.stderr);
  return r.stdout;
}

/** Issuer or subject Name of a certificate as raw DER (to prove byte-exact copies). */
function nameDer(pem: string, which: 'issuer' | 'subject'): string {
  const cert = forge.asn1.fromDer(forge.util.decode64(pem.replace(/-----[^-]+-----|\s/g, '')));
  const tbs = (cert.value as forge.asn1.Asn1[])[0]!.value as forge.asn1.Asn1[];
  return forge.asn1.toDer(tbs[which === 'issuer' ? 3 : 5]!).toHex();
}

const test = suite('x509');

// A first test, not test.before(): uvu 0.5 swallows errors thrown in before().
test('setup', async () => {
  S.dir = await mkdtemp(path.join(os.tmpdir(), 'pgtls-x509-'));
  S.pool = Array.from({ length: 18 }, () => generateKeyPair(2048));
  S.ca = await createCA({ commonName: 'pgtls test CA', days: 30, keyPem: (await pooledKey()).keyPem });
});
test.after(async () => {
  if (S.dir) await rm(S.dir, { recursive: true, force: true });
});

test('classifySan / splitSans / normalizeIp', () => {
  const table: [string, 'ip' | 'dns' | 'invalid'][] = [
    ['localhost', 'dns'],
    ['db-1.example.com', 'dns'],
    ['DB_2.internal', 'dns'],
    ['*.db.example.com', 'dns'],
    ['db.example.com.', 'dns'],
    ['127.0.0.1', 'ip'],
    ['10.0.0.5', 'ip'],
    ['::1', 'ip'],
    ['[::1]', 'ip'],
    ['fe80::1', 'ip'],
    ['::ffff:10.0.0.1', 'ip'],
    ['2001:db8:0:0:1:0:0:1', 'ip'],
    ['', 'invalid'],
    ['a b', 'invalid'],
    ['1.2.3', 'invalid'],
    ['256.1.1.1', 'invalid'],
    ['01.2.3.4', 'invalid'],
    ['*.com', 'invalid'],
    ['foo.*.com', 'invalid'],
    ['-bad.com', 'invalid'],
    ['a..b', 'invalid'],
    ['fe80::1%eth0', 'invalid'],
    ['x'.repeat(64) + '.com', 'invalid'],
    ['ünï.example', 'invalid'],
  ];
  for (const [name, want] of table) {
    if (want === 'invalid') assert.throws(() => classifySan(name), undefined, name);
    else assert.is(classifySan(name), want, name);
  }
  assert.equal(splitSans(['DB1.Example.com', '127.0.0.1', 'db1.example.com', '0:0:0:0:0:0:0:1', '[::1]']), {
    dns: ['db1.example.com'],
    ip: ['127.0.0.1', '::1'],
  });
  assert.is(normalizeIp('2001:0DB8:0:0:1:0:0:1'), '2001:db8::1:0:0:1', 'RFC 5952: first longest zero run');
  assert.is(normalizeIp('::ffff:10.0.0.1'), '::ffff:10.0.0.1');
  assert.is(normalizeIp('1:0:0:2:0:0:0:3'), '1:0:0:2::3');
});

test('splitPemBundle', () => {
  const a = S.ca!.certPem;
  const text = `junk\r\n${a.replace(/\n/g, '\r\n')}more junk\n${a}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----`;
  const blocks = splitPemBundle(text);
  assert.is(blocks.length, 3);
  assert.is(blocks[0], a);
  assert.is(blocks[1], a);
  assert.match(blocks[2]!, /^-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n$/);
  assert.equal(splitPemBundle('nothing here'), []);
});

test('CA: strict openssl checks and inspection', async () => {
  const ca = await file('ca.pem', S.ca!.certPem);
  const v = await verify(ca, ca);
  assert.is(v.code, 0, v.stderr);
  const text = await x509Text(ca);
  assert.match(text, /Version: 3 \(0x2\)/);
  assert.match(text, /Signature Algorithm: sha256WithRSAEncryption/);
  assert.match(text, /X509v3 Basic Constraints: critical\s+CA:TRUE\n/);
  assert.match(text, /X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign\n/);
  assert.match(text, /X509v3 Subject Key Identifier/);
  const info = inspectCert(S.ca!.certPem);
  assert.ok(info.isCA && info.selfSigned);
  assert.is(info.subjectCN, 'pgtls test CA');
  assert.is(info.issuerCN, 'pgtls test CA');
  assert.is(info.keyType, 'rsa');
  assert.ok(certMatchesKey(S.ca!.certPem, S.ca!.keyPem));
  assert.is(S.ca!.keyPem.split('\n')[0], '-----BEGIN PRIVATE KEY-----', 'PKCS#8');
});

interface LeafCase {
  name: string;
  kind: 'server' | 'client';
  cn: string;
  sans?: { dns?: string[]; ip?: string[] };
  /** substring expected in openssl's "X509v3 Subject Alternative Name" line */
  sanText?: string;
}

const LEAVES: LeafCase[] = [
  { name: 'server localhost + loopback', kind: 'server', cn: 'localhost', sans: { dns: ['localhost'], ip: ['127.0.0.1'] }, sanText: 'DNS:localhost, IP Address:127.0.0.1' },
  {
    name: 'server FQDN + wildcard + v4/v6',
    kind: 'server',
    cn: 'db1.example.com',
    sans: { dns: ['db1.example.com', '*.db.example.com'], ip: ['10.0.0.5', '::1'] },
    sanText: 'DNS:db1.example.com, DNS:*.db.example.com, IP Address:10.0.0.5, IP Address:0:0:0:0:0:0:0:1',
  },
  { name: 'server IP only', kind: 'server', cn: '192.168.1.10', sans: { ip: ['192.168.1.10'] }, sanText: 'IP Address:192.168.1.10' },
  { name: 'client role', kind: 'client', cn: 'app' },
  { name: 'client role with underscore', kind: 'client', cn: 'app_user' },
  { name: 'client utf-8 role', kind: 'client', cn: 'Ünïcode-rôle' },
];

for (const c of LEAVES) {
  test(`leaf via our CSR, checked by openssl: ${c.name}`, async () => {
    const kp = await pooledKey();
    const csrPem = createCsr({ keyPem: kp.keyPem, commonName: 'ignored-by-signer' });
    const csr = await file('leaf.csr', csrPem);
    const rv = await openssl(['req', '-verify', '-noout', '-in', csr], S.dir);
    assert.is(rv.code, 0, rv.stderr);
    assert.match(rv.stdout + rv.stderr, /verify OK/);

    const certPem = signCsr({ csrPem, ca: S.ca!, kind: c.kind, commonName: c.cn, sans: c.sans, days: 7 });
    const ca = await file('ca.pem', S.ca!.certPem);
    const cert = await file('leaf.pem', certPem);
    const [good, bad] = c.kind === 'server' ? ['sslserver', 'sslclient'] : ['sslclient', 'sslserver'];
    const ok = await verify(ca, cert, ['-purpose', good]);
    assert.is(ok.code, 0, ok.stdout + ok.stderr);
    const wrong = await verify(ca, cert, ['-purpose', bad]);
    assert.is.not(wrong.code, 0, `must not pass as ${bad}`);

    const text = await x509Text(cert);
    assert.match(text, /Version: 3 \(0x2\)/);
    assert.ok(text.includes(`Subject: CN=${c.cn}\n`), text);
    assert.ok(text.includes('Issuer: CN=pgtls test CA\n'));
    assert.match(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
    assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment/);
    assert.ok(text.includes(c.kind === 'server' ? 'TLS Web Server Authentication' : 'TLS Web Client Authentication'));
    if (c.sanText) assert.ok(text.includes(`X509v3 Subject Alternative Name: \n                ${c.sanText}\n`), text);
    else assert.not.ok(text.includes('Subject Alternative Name'));
    assert.ok(text.includes('X509v3 Authority Key Identifier'));

    // inspectCert agrees with openssl
    const info = inspectCert(certPem);
    const o = await openssl(['x509', '-noout', '-serial', '-fingerprint', '-sha256', '-enddate', '-startdate', '-dateopt', 'iso_8601', '-in', cert], S.dir);
    assert.ok(o.stdout.includes(`serial=${info.serialHex}\n`), o.stdout);
    assert.ok(o.stdout.includes(`sha256 Fingerprint=${info.fingerprintSha256}\n`));
    assert.ok(o.stdout.includes(`notAfter=${info.notAfter.toISOString().replace('T', ' ').replace('.000Z', 'Z')}`));
    assert.ok(o.stdout.includes(`notBefore=${info.notBefore.toISOString().replace('T', ' ').replace('.000Z', 'Z')}`));
    assert.is(info.subjectCN, c.cn);
    assert.is(info.issuerCN, 'pgtls test CA');
    assert.equal(info.sans, splitSans([...(c.sans?.dns ?? []), ...(c.sans?.ip ?? [])]));
    assert.equal(info.extKeyUsage, [c.kind === 'server' ? 'serverAuth' : 'clientAuth']);
    assert.not.ok(info.isCA || info.selfSigned);
    const days = (info.notAfter.getTime() - Date.now()) / 86_400_000;
    assert.ok(days > 6.99 && days <= 7, `valid for 7 days (${days})`);
    assert.ok(certMatchesKey(certPem, kp.keyPem) && certMatchesKey(certPem, kp.publicKeyPem));
    assert.ok(certIssuedBy(certPem, S.ca!.certPem));
    assert.is(nameDer(certPem, 'issuer'), nameDer(S.ca!.certPem, 'subject'), 'issuer copied byte for byte');
  });
}

test('20 certificates: unique, positive 16-byte serials (openssl storeutl)', async () => {
  const kp = await pooledKey();
  const csrPem = createCsr({ keyPem: kp.keyPem, commonName: 'x' });
  const certs = Array.from({ length: 20 }, (_, i) => signCsr({ csrPem, ca: S.ca!, kind: 'client', commonName: `u${i}`, days: 1 }));
  // one openssl run over the whole bundle instead of 20 spawns
  const r = await openssl(['storeutl', '-noout', '-text', '-certs', await file('serials.pem', certs.join(''))], S.dir);
  assert.is(r.code, 0, r.stderr);
  const serials = [...r.stdout.matchAll(/Serial Number:\s*\n\s*([0-9a-f:]+)\n/g)].map((m) => m[1]!.replace(/:/g, '').toUpperCase());
  assert.is(serials.length, 20);
  for (const hex of serials) {
    assert.match(hex, /^[0-7][0-9A-F]{31}$/, 'positive, 16 bytes, minimal (no 00 sign byte)');
    assert.is.not(hex.slice(0, 2), '00');
  }
  assert.is(new Set(serials).size, 20);
  assert.equal(serials, certs.map((c) => inspectCert(c).serialHex), 'inspectCert reads the same serials');
});

test('CSR from real openssl (genrsa + req -new, key read from file) is signed correctly', async () => {
  const key = path.join(S.dir, 'openssl-rsa.key');
  const g = await openssl(['genrsa', '-out', key, '2048'], S.dir);
  assert.is(g.code, 0, g.stderr);
  const cnf = await file('req.cnf', '[req]\nprompt = no\ndistinguished_name = dn\n[dn]\nCN = from-openssl\nO = Somewhere\n');
  const csr = path.join(S.dir, 'openssl.csr');
  const r = await openssl(['req', '-new', '-key', key, '-config', cnf, '-out', csr], S.dir);
  assert.is(r.code, 0, r.stderr);

  const csrPem = await readFile(csr, 'utf8');
  const keyPem = await readFile(key, 'utf8');
  const certPem = signCsr({ csrPem, ca: S.ca!, kind: 'server', commonName: 'db9', sans: { dns: ['db9.example.com'] }, days: 3 });
  const cert = await file('from-openssl.pem', certPem);
  const v = await verify(await file('ca.pem', S.ca!.certPem), cert, ['-purpose', 'sslserver']);
  assert.is(v.code, 0, v.stderr);
  assert.ok(certMatchesKey(certPem, keyPem));
  const certPub = await openssl(['x509', '-noout', '-pubkey', '-in', cert], S.dir);
  const keyPub = await openssl(['pkey', '-pubout', '-in', key], S.dir);
  assert.is(certPub.stdout, keyPub.stdout, 'certificate carries the CSR key');
  assert.is(inspectCert(certPem).subjectCN, 'db9', 'subject comes from us, not from the CSR');

  // a different key does not match
  assert.not.ok(certMatchesKey(certPem, (await pooledKey()).keyPem));
  assert.not.ok(certMatchesKey(certPem, 'garbage'));
});

test('EC and Ed25519 CSRs from openssl: no keyEncipherment, still valid', async () => {
  for (const [algo, opts] of [['EC', ['-pkeyopt', 'ec_paramgen_curve:P-256']], ['ED25519', []]] as const) {
    const key = path.join(S.dir, `openssl-${algo}.key`);
    assert.is((await openssl(['genpkey', '-algorithm', algo, ...opts, '-out', key], S.dir)).code, 0);
    const cnf = await file('req.cnf', '[req]\nprompt = no\ndistinguished_name = dn\n[dn]\nCN = ec\n');
    const csr = path.join(S.dir, `openssl-${algo}.csr`);
    assert.is((await openssl(['req', '-new', '-key', key, '-config', cnf, '-out', csr], S.dir)).code, 0);
    const certPem = signCsr({ csrPem: await readFile(csr, 'utf8'), ca: S.ca!, kind: 'server', commonName: 'ec', sans: { dns: ['ec.example'] }, days: 1 });
    const cert = await file(`${algo}.pem`, certPem);
    const v = await verify(await file('ca.pem', S.ca!.certPem), cert, ['-purpose', 'sslserver']);
    assert.is(v.code, 0, algo + v.stderr);
    const text = await x509Text(cert);
    assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature\n/, algo);
    assert.is(inspectCert(certPem).keyType, algo === 'EC' ? 'ec' : 'ed25519');
  }
});

test('tampered CSR is refused; bad inputs are refused', async () => {
  const kp = await pooledKey();
  const csrPem = createCsr({ keyPem: kp.keyPem, commonName: 'tamper-me' });
  const der = Buffer.from(csrPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const at = der.indexOf(Buffer.from('tamper-me'));
  assert.ok(at > 0);
  der[at] = 'T'.charCodeAt(0);
  const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
  assert.throws(() => signCsr({ csrPem: tampered, ca: S.ca!, kind: 'client', commonName: 'x', days: 1 }), /does not verify/);

  const args = { csrPem, ca: S.ca!, commonName: 'x', days: 1 };
  assert.throws(() => signCsr({ ...args, kind: 'server' }), /at least one SAN/);
  assert.throws(() => signCsr({ ...args, kind: 'server', sans: { dns: ['10.0.0.1'] } }), /sans\.ip/);
  assert.throws(() => signCsr({ ...args, kind: 'server', sans: { ip: ['db.example'] } }), /sans\.dns/);
  assert.throws(() => signCsr({ ...args, kind: 'client', days: 0 }), /days/);
  assert.throws(() => signCsr({ ...args, kind: 'client', commonName: '' }), /empty/);
  const other = await createCA({ commonName: 'other', days: 1, keyPem: (await pooledKey()).keyPem });
  assert.throws(() => signCsr({ ...args, kind: 'client', ca: { certPem: S.ca!.certPem, keyPem: other.keyPem } }), /does not match/);
  const leaf = signCsr({ ...args, kind: 'client' });
  assert.throws(() => signCsr({ ...args, kind: 'client', ca: { certPem: leaf, keyPem: kp.keyPem } }), /not a CA/);
  assert.throws(() => inspectCert('not a cert'), /PEM/);
});

test('leaf validity is capped at the CA notAfter', async () => {
  const shortCa = await createCA({ commonName: 'short', days: 2, keyPem: S.ca!.keyPem });
  const kp = await pooledKey();
  const cert = signCsr({ csrPem: createCsr({ keyPem: kp.keyPem, commonName: 'x' }), ca: shortCa, kind: 'client', commonName: 'x', days: 365 });
  assert.is(inspectCert(cert).notAfter.getTime(), inspectCert(shortCa.certPem).notAfter.getTime());
  // same key, new CA certificate: same public key fingerprint (a "renewed" CA keeps old leaves valid)
  assert.is(inspectCert(shortCa.certPem).publicKeyFingerprint, inspectCert(S.ca!.certPem).publicKeyFingerprint);
});

test('CA made by openssl (PrintableString names, EC P-384 key) can sign; names copied byte for byte', async () => {
  const key = path.join(S.dir, 'ext-ca.key');
  const cnf = await file(
    'ca.cnf',
    '[req]\nprompt = no\ndistinguished_name = dn\nstring_mask = default\nx509_extensions = v3\n[dn]\nC = CH\nO = External Org\nCN = External CA\n' +
      '[v3]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n',
  );
  const caFile = path.join(S.dir, 'ext-ca.pem');
  const r = await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-nodes', '-keyout', key, '-out', caFile, '-days', '5', '-config', cnf], S.dir);
  assert.is(r.code, 0, r.stderr);
  const ext: CertAndKey = { certPem: await readFile(caFile, 'utf8'), keyPem: await readFile(key, 'utf8') };
  const kp = await pooledKey();
  const certPem = signCsr({ csrPem: createCsr({ keyPem: kp.keyPem, commonName: 'x' }), ca: ext, kind: 'server', commonName: 's', sans: { dns: ['s.example'] }, days: 1 });
  const v = await verify(caFile, await file('ext-leaf.pem', certPem), ['-purpose', 'sslserver']);
  assert.is(v.code, 0, v.stderr);
  assert.is(nameDer(certPem, 'issuer'), nameDer(ext.certPem, 'subject'));
  assert.ok((await x509Text(await file('ext-leaf.pem', certPem))).includes('Signature Algorithm: ecdsa-with-SHA384'));
  assert.is(inspectCert(certPem).issuerCN, 'External CA');
});

// ---------------------------------------------------------------------------------------------------------
// CA rotation by cross-signing

interface Rotation {
  oldCa: CertAndKey;
  newCa: CertAndKey;
  cross: string;
  leaf: CertAndKey;
  client: CertAndKey;
}

let rotationOnce: Promise<Rotation> | undefined;
/** One rotation scenario, shared by the tests below (built once: it costs five key pairs). */
function rotation(): Promise<Rotation> {
  return (rotationOnce ??= buildRotation());
}

async function buildRotation(): Promise<Rotation> {
  const oldCa = S.ca!;
  const newCa = await createCA({ commonName: 'pgtls test CA 2', days: 60, keyPem: (await pooledKey()).keyPem });
  const cross = crossSign({ certPem: newCa.certPem, by: oldCa });
  const kp = await pooledKey();
  const leaf = {
    keyPem: kp.keyPem,
    certPem: signCsr({ csrPem: createCsr({ keyPem: kp.keyPem, commonName: 'x' }), ca: newCa, kind: 'server', commonName: 'localhost', sans: { dns: ['localhost'], ip: ['127.0.0.1'] }, days: 5 }),
  };
  const ck = await pooledKey();
  const client = {
    keyPem: ck.keyPem,
    certPem: signCsr({ csrPem: createCsr({ keyPem: ck.keyPem, commonName: 'x' }), ca: newCa, kind: 'client', commonName: 'certuser', days: 5 }),
  };
  return { oldCa, newCa, cross, leaf, client };
}

test('cross-signed chain: clients trusting only the old CA verify a leaf of the new CA', async () => {
  const r = await rotation();
  const oldFile = await file('old-ca.pem', r.oldCa.certPem);
  const newFile = await file('new-ca.pem', r.newCa.certPem);
  const crossFile = await file('cross.pem', r.cross);
  const leafFile = await file('leaf-new.pem', r.leaf.certPem);

  const viaCross = await verify(oldFile, leafFile, ['-untrusted', crossFile, '-purpose', 'sslserver']);
  assert.is(viaCross.code, 0, viaCross.stdout + viaCross.stderr);
  assert.is.not((await verify(oldFile, leafFile)).code, 0, 'without the cross cert the old CA alone cannot verify');
  assert.is((await verify(newFile, leafFile)).code, 0, 'new CA verifies directly');
  assert.is((await verify(newFile, leafFile, ['-untrusted', crossFile])).code, 0, 'an extra cross cert does not hurt new-CA clients');
  assert.is((await verify(oldFile, crossFile)).code, 0, 'cross cert itself is a valid CA cert under the old CA');

  const info = inspectCert(r.cross);
  assert.is(info.subjectCN, 'pgtls test CA 2');
  assert.is(info.issuerCN, 'pgtls test CA');
  assert.ok(info.isCA);
  assert.not.ok(info.selfSigned);
  assert.is(info.publicKeyFingerprint, inspectCert(r.newCa.certPem).publicKeyFingerprint);
  assert.ok(info.notAfter <= inspectCert(r.oldCa.certPem).notAfter, 'capped at the old CA expiry');
  assert.is(nameDer(r.cross, 'subject'), nameDer(r.newCa.certPem, 'subject'));
  assert.is(nameDer(r.cross, 'issuer'), nameDer(r.oldCa.certPem, 'subject'));
  assert.ok(certIssuedBy(r.cross, r.oldCa.certPem));
  assert.ok(certIssuedBy(r.leaf.certPem, r.newCa.certPem));
  assert.ok(certIssuedBy(r.leaf.certPem, r.cross), 'the cross cert has the new CA key + name');
  assert.not.ok(certIssuedBy(r.leaf.certPem, r.oldCa.certPem));
  assert.throws(() => crossSign({ certPem: r.leaf.certPem, by: r.oldCa }), /not a CA/);
});

test('Node TLS: hostname/IP checks and mutual TLS with our certificates', async () => {
  const r = await rotation();
  const server = tls.createServer({
    key: r.leaf.keyPem,
    cert: r.leaf.certPem + r.cross, // chain: leaf + cross, as a server would serve it during rotation
    ca: [r.oldCa.certPem, r.newCa.certPem],
    requestCert: true,
    rejectUnauthorized: true,
  });
  server.on('secureConnection', (s) => s.end(`hello ${s.getPeerCertificate().subject.CN}`));
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const port = (server.address() as AddressInfo).port;
  const connect = (o: tls.ConnectionOptions) =>
    new Promise<string>((resolve, reject) => {
      const s = tls.connect({ port, key: r.client.keyPem, cert: r.client.certPem, ...o }, () => {
        let data = '';
        s.on('data', (d: Buffer) => (data += d.toString()));
        s.on('end', () => resolve(data));
      });
      s.on('error', reject);
    });
  try {
    assert.is(await connect({ host: '127.0.0.1', ca: r.oldCa.certPem }), 'hello certuser', 'IP SAN, old-CA client via cross');
    assert.is(await connect({ host: '127.0.0.1', servername: 'localhost', ca: r.newCa.certPem }), 'hello certuser', 'DNS SAN, new-CA client');
    await connect({ host: '127.0.0.1', servername: 'db.example', ca: r.newCa.certPem }).then(
      () => assert.unreachable('name not in SAN must fail'),
      (e: NodeJS.ErrnoException) => assert.is(e.code, 'ERR_TLS_CERT_ALTNAME_INVALID'),
    );
    const unrelated = await createCA({ commonName: 'unrelated', days: 1, keyPem: (await pooledKey()).keyPem });
    await connect({ host: '127.0.0.1', ca: unrelated.certPem }).then(
      () => assert.unreachable('unknown CA must fail'),
      (e: NodeJS.ErrnoException) => assert.match(String(e.code), /UNABLE_TO_GET_ISSUER_CERT|SELF_SIGNED|UNABLE_TO_VERIFY/),
    );
  } finally {
    server.close();
  }
});

// PostgreSQL 15 + libpq: the server presents leaf + cross; verify-full from clients of either CA; `cert`
// authentication with a client certificate whose CN is the role.
const pg = suite<{ cluster?: PgCluster; r?: Rotation; files?: Record<string, string> }>('x509 with PostgreSQL 15', {});

pg.before(async (ctx) => {
  S.ca ||= await createCA({ commonName: 'pgtls test CA', days: 30, keyBits: 2048 });
  const r = (ctx.r = await rotation());
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pgtls-x509-pg-'));
  await chmod(dir, 0o755); // the server (user postgres) must reach its files in here
  const w = async (name: string, content: string, serverOwned: boolean) => {
    const p = path.join(dir, name);
    await writeFile(p, content, { mode: 0o600 });
    // PostgreSQL refuses a key readable by others, and (as postgres) cannot read a root-owned 0600 file
    if (serverOwned && process.getuid?.() === 0) {
      const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
      const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
      await chown(p, uid, gid);
    }
    return p;
  };
  ctx.files = {
    dir,
    serverCert: await w('server.crt', r.leaf.certPem + r.cross, true),
    serverKey: await w('server.key', r.leaf.keyPem, true),
    clientCa: await w('client-ca.crt', r.oldCa.certPem + r.newCa.certPem, true),
    oldCa: await w('old-ca.crt', r.oldCa.certPem, false),
    newCa: await w('new-ca.crt', r.newCa.certPem, false),
    clientCert: await w('client.crt', r.client.certPem, false),
    clientKey: await w('client.key', r.client.keyPem, false),
  };
  ctx.cluster = await start({
    conf: [
      'ssl = on',
      `ssl_cert_file = '${ctx.files.serverCert}'`,
      `ssl_key_file = '${ctx.files.serverKey}'`,
      `ssl_ca_file = '${ctx.files.clientCa}'`,
    ],
    hba: 'local all all trust\nhostssl all certuser 127.0.0.1/32 cert\nhostssl all all 127.0.0.1/32 scram-sha-256\n',
  });
  await psql(ctx.cluster, 'CREATE ROLE certuser LOGIN;');
});
pg.after(async (ctx) => {
  await stop(ctx.cluster);
  if (ctx.files?.dir) await rm(ctx.files.dir, { recursive: true, force: true });
});

const SSL_Q = "SELECT current_user || '|' || ssl::text || '|' || coalesce(client_dn, '') FROM pg_stat_ssl WHERE pid = pg_backend_pid();";

pg('libpq verify-full + cert auth, client trusting only the OLD CA (chain via cross cert)', async (ctx) => {
  const f = ctx.files!;
  const env = { PGSSLMODE: 'verify-full', PGSSLROOTCERT: f.oldCa!, PGSSLCERT: f.clientCert!, PGSSLKEY: f.clientKey! };
  const res = await psql(ctx.cluster!, SSL_Q, { via: 'tcp', user: 'certuser', env, check: false });
  assert.is(res.code, 0, res.stderr);
  assert.is(res.stdout.trim(), 'certuser|true|/CN=certuser');
});

pg('libpq verify-full + cert auth, client trusting only the NEW CA', async (ctx) => {
  const f = ctx.files!;
  const env = { PGSSLMODE: 'verify-full', PGSSLROOTCERT: f.newCa!, PGSSLCERT: f.clientCert!, PGSSLKEY: f.clientKey! };
  const res = await psql(ctx.cluster!, SSL_Q, { via: 'tcp', user: 'certuser', env, check: false });
  assert.is(res.code, 0, res.stderr);
  assert.is(res.stdout.trim(), 'certuser|true|/CN=certuser');
});

pg('libpq refuses the server for a client trusting an unrelated CA', async (ctx) => {
  const f = ctx.files!;
  const unrelated = await createCA({ commonName: 'unrelated', days: 1, keyPem: (await pooledKey()).keyPem });
  const root = path.join(f.dir!, 'unrelated.crt');
  await writeFile(root, unrelated.certPem);
  const env = { PGSSLMODE: 'verify-full', PGSSLROOTCERT: root, PGSSLCERT: f.clientCert!, PGSSLKEY: f.clientKey! };
  const res = await psql(ctx.cluster!, SSL_Q, { via: 'tcp', user: 'certuser', env, check: false });
  assert.is.not(res.code, 0);
  assert.match(res.stderr, /certificate verify failed/);
});

test.run();
pg.run();
