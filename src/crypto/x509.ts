// X.509 for pgtls: a private CA, server/client leaf certificates from CSRs, inspection, and cross-signing
// for zero-downtime CA rotation. Fixes what the original add-on got wrong (reference/seed-implementation.md
// §3): every server certificate had serial 01, no SAN and was X.509 v1. Here: v3 everywhere, 16-byte random
// serials, SANs, EKUs, key identifiers, SHA-256.
//
// Division of labour:
//   - node-forge's ASN.1/DER codec builds and parses the structures. The certificate and CSR layouts are
//     assembled here rather than through forge's high-level pki API, because (a) forge.pki only handles RSA
//     keys, while CSRs, existing CAs and certs found on hosts may be EC or Ed25519, and (b) forge re-encodes
//     names (PrintableString by default, which cannot even hold "_"); chain building in some clients (Go's
//     crypto/x509) compares issuer/subject bytes, so names copied from a CA are embedded byte for byte.
//   - node:crypto does every private/public key operation (native, constant-time OpenSSL, off the JS heap):
//     key generation on the libuv threadpool, signing, signature checks, and X509Certificate for
//     fingerprints and issuer checks.
import type forge from 'node-forge';
// node-forge's ASN.1 module alone: the package's index loads all of forge (TLS, PKCS#12, ciphers…),
// ~50 ms of every run's start for the one part used here
import asn1 from 'node-forge/lib/asn1.js';
import {
  X509Certificate,
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPair as nodeGenerateKeyPair,
  randomBytes,
  sign as nodeSign,
  verify as nodeVerify,
  type KeyObject,
} from 'node:crypto';
import net from 'node:net';

type Asn1 = forge.asn1.Asn1;
const UNIVERSAL = asn1.Class.UNIVERSAL;
const CONTEXT = asn1.Class.CONTEXT_SPECIFIC;

const OID = {
  commonName: '2.5.4.3',
  rsaEncryption: '1.2.840.113549.1.1.1',
  sha1WithRSA: '1.2.840.113549.1.1.5',
  sha256WithRSA: '1.2.840.113549.1.1.11',
  sha384WithRSA: '1.2.840.113549.1.1.12',
  sha512WithRSA: '1.2.840.113549.1.1.13',
  ecdsaSha256: '1.2.840.10045.4.3.2',
  ecdsaSha384: '1.2.840.10045.4.3.3',
  ecdsaSha512: '1.2.840.10045.4.3.4',
  ed25519: '1.3.101.112',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

/** Certificates are backdated this much so a host whose clock is a little behind still accepts them. */
const BACKDATE_MS = 5 * 60 * 1000;
const DAY_MS = 86_400_000;

export interface KeyPairPem {
  /** PKCS#8 PEM ("BEGIN PRIVATE KEY"), unencrypted: what PostgreSQL, libpq and Pgpool-II (OpenSSL) load */
  keyPem: string;
  /** SubjectPublicKeyInfo PEM ("BEGIN PUBLIC KEY") */
  publicKeyPem: string;
}

export interface CertAndKey {
  certPem: string;
  keyPem: string;
}

export interface Sans {
  dns: string[];
  ip: string[];
}

// ---------------------------------------------------------------------------------------------------------
// DER helpers (forge's codec works on "binary" strings; Buffers are used everywhere else)

const bin = (b: Uint8Array): string => Buffer.from(b).toString('binary');
const buf = (s: string): Buffer => Buffer.from(s, 'binary');
const seq = (v: Asn1[]): Asn1 => asn1.create(UNIVERSAL, asn1.Type.SEQUENCE, true, v);
const setOf = (v: Asn1[]): Asn1 => asn1.create(UNIVERSAL, asn1.Type.SET, true, v);
const oid = (o: string): Asn1 => asn1.create(UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(o).getBytes());
const octets = (b: Uint8Array): Asn1 => asn1.create(UNIVERSAL, asn1.Type.OCTETSTRING, false, bin(b));
const integer = (b: Uint8Array): Asn1 => asn1.create(UNIVERSAL, asn1.Type.INTEGER, false, bin(b));
const bool = (v: boolean): Asn1 => asn1.create(UNIVERSAL, asn1.Type.BOOLEAN, false, v ? '\xff' : '\x00');
const nul = (): Asn1 => asn1.create(UNIVERSAL, asn1.Type.NULL, false, '');
const bitString = (b: Uint8Array, unusedBits = 0): Asn1 =>
  asn1.create(UNIVERSAL, asn1.Type.BITSTRING, false, String.fromCharCode(unusedBits) + bin(b));
const ctx = (tag: number, constructed: boolean, value: string | Asn1[]): Asn1 =>
  asn1.create(CONTEXT, tag as forge.asn1.Type, constructed, value);

function toDer(a: Asn1): Buffer {
  return buf(asn1.toDer(a).getBytes());
}

function fromDer(der: Uint8Array): Asn1 {
  // decodeBitStrings: false keeps BIT STRINGs (keys, signatures) as raw bytes so they re-encode unchanged.
  const opts = { strict: true, parseAllBytes: true, decodeBitStrings: false };
  return (asn1.fromDer as unknown as (b: string, o: typeof opts) => Asn1)(bin(der), opts);
}

function children(a: Asn1 | undefined, what: string): Asn1[] {
  if (!a || !Array.isArray(a.value)) throw new Error(`malformed ${what}`);
  return a.value;
}

function bytesOf(a: Asn1 | undefined, what: string): Buffer {
  if (!a || typeof a.value !== 'string') throw new Error(`malformed ${what}`);
  return buf(a.value);
}

function time(d: Date): Asn1 {
  // RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
  const y = d.getUTCFullYear();
  return y >= 1950 && y < 2050
    ? asn1.create(UNIVERSAL, asn1.Type.UTCTIME, false, asn1.dateToUtcTime(d))
    : asn1.create(UNIVERSAL, asn1.Type.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(d));
}

function parseTime(a: Asn1 | undefined): Date {
  const s = bytesOf(a, 'time').toString('latin1');
  if (a!.type === asn1.Type.UTCTIME) return asn1.utcTimeToDate(s);
  if (a!.type === asn1.Type.GENERALIZEDTIME) return asn1.generalizedTimeToDate(s);
  throw new Error('malformed time');
}

function pemEncode(label: string, der: Buffer): string {
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

function pemDecode(pem: string, label: string): Buffer {
  const m = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`).exec(pem);
  if (!m) throw new Error(`no "${label}" PEM block found`);
  return Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
}

/** Splits a PEM bundle (e.g. a CA file with several certificates) into its blocks, each ending in "\n". */
export function splitPemBundle(text: string): string[] {
  const out: string[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n[\s\S]*?-----END \1-----/g;
  for (const m of text.matchAll(re)) out.push(m[0].replace(/\r\n/g, '\n') + '\n');
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Names

function decodeString(a: Asn1): string {
  const b = bytesOf(a, 'string');
  switch (a.type as number) {
    case 12: // UTF8String
      return b.toString('utf8');
    case 30: // BMPString: UTF-16BE
      return Buffer.from(b).swap16().toString('utf16le');
    case 28: {
      // UniversalString: UTF-32BE
      let s = '';
      for (let i = 0; i + 3 < b.length; i += 4) s += String.fromCodePoint(b.readUInt32BE(i));
      return s;
    }
    default: // PrintableString, IA5String, VisibleString, TeletexString (treated as Latin-1)
      return b.toString('latin1');
  }
}

/** Name with a single UTF8String CN (RFC 5280: UTF8String for new certificates; "_" etc. are fine). */
function cnName(cn: string): Asn1 {
  if (cn.length === 0) throw new Error('commonName must not be empty');
  if (cn.includes('\0')) throw new Error('commonName must not contain NUL');
  if (Buffer.byteLength(cn, 'utf8') > 64) throw new Error(`commonName is longer than 64 bytes (RFC 5280 ub-common-name): ${cn}`);
  return seq([
    setOf([seq([oid(OID.commonName), asn1.create(UNIVERSAL, asn1.Type.UTF8, false, bin(Buffer.from(cn, 'utf8')))])]),
  ]);
}

/** First CN of a Name (what PostgreSQL's X509_NAME_get_text_by_NID and libpq read), or null. */
function commonNameOf(name: Asn1): string | null {
  for (const rdn of children(name, 'name')) {
    for (const atv of children(rdn, 'RDN')) {
      const [t, v] = children(atv, 'attribute');
      if (t && v && asn1.derToOid(bytesOf(t, 'OID').toString('binary')) === OID.commonName) return decodeString(v);
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------------------------
// IP addresses and SAN classification

function ipToBytes(ip: string): Buffer | null {
  const kind = net.isIP(ip);
  if (kind === 4) return Buffer.from(ip.split('.').map(Number));
  if (kind !== 6 || ip.includes('%')) return null; // zone ids cannot appear in a certificate
  let head = ip;
  let v4: number[] = [];
  const lastColon = ip.lastIndexOf(':');
  if (ip.slice(lastColon + 1).includes('.')) {
    v4 = ip.slice(lastColon + 1).split('.').map(Number);
    head = ip.slice(0, lastColon + 1) + '0:0';
  }
  const halves = head.split('::');
  const left = halves[0] ? halves[0].split(':') : [];
  const right = halves.length > 1 ? (halves[1] ? halves[1].split(':') : []) : null;
  const groups = right === null ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  if (groups.length !== 8) return null;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), 2 * i));
  if (v4.length === 4) Buffer.from(v4).copy(out, 12);
  return out;
}

function bytesToIp(b: Buffer): string {
  if (b.length === 4) return [...b].join('.');
  if (b.length !== 16) return `<${b.length}-byte address ${b.toString('hex')}>`;
  if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) {
    return `::ffff:${[...b.subarray(12)].join('.')}`; // RFC 5952 section 5
  }
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push(b.readUInt16BE(i));
  // RFC 5952: compress the longest run (>= 2) of zero groups, the first one on a tie; lowercase hex.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best === -1) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** Canonical text form of an IP address (IPv6 per RFC 5952), as inspectCert reports SAN IPs. */
export function normalizeIp(ip: string): string {
  const b = ipToBytes(ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip);
  if (!b) throw new Error(`not an IP address: ${ip}`);
  return bytesToIp(b);
}

const DNS_LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/i;

/**
 * 'ip' or 'dns' for a subjectAltName candidate (inventory host names and addresses go through this);
 * throws for anything that is neither. IPv6 may be bracketed; zone ids are refused. DNS names: labels of
 * letters, digits, "-" and "_" (the latter is not strict RFC 1123 but real internal host names have it, and
 * OpenSSL/libpq match it fine), optionally a leading "*." wildcard over at least two labels. A name whose
 * last label is all digits ("10.0.0.256", "1.2.3") is refused: it is a mistyped address, not a host name.
 */
export function classifySan(name: string): 'ip' | 'dns' {
  if (ipToBytes(name.startsWith('[') && name.endsWith(']') ? name.slice(1, -1) : name)) return 'ip';
  const n = name.endsWith('.') ? name.slice(0, -1) : name; // fully-qualified form "db.example.com."
  if (n.length === 0 || n.length > 253) throw new Error(`invalid SAN (neither IP nor DNS name): "${name}"`);
  const labels = n.split('.');
  const rest = labels[0] === '*' ? labels.slice(1) : labels;
  if (labels[0] === '*' && rest.length < 2) throw new Error(`wildcard needs at least two labels after "*.": "${name}"`);
  if (!rest.every((l) => DNS_LABEL.test(l)) || /^[0-9]+$/.test(rest[rest.length - 1]!)) {
    throw new Error(`invalid SAN (neither IP nor DNS name): "${name}"`);
  }
  return 'dns';
}

/** Sorts names into DNS and IP SANs, normalized (DNS lower-cased, IPs canonical) and de-duplicated. */
export function splitSans(names: Iterable<string>): Sans {
  const dns = new Set<string>();
  const ip = new Set<string>();
  for (const n of names) {
    if (classifySan(n) === 'ip') ip.add(normalizeIp(n));
    else dns.add(n.replace(/\.$/, '').toLowerCase());
  }
  return { dns: [...dns], ip: [...ip] };
}

// ---------------------------------------------------------------------------------------------------------
// Keys and signatures

/**
 * RSA key pair as PEMs. Generated by node:crypto on the libuv threadpool: forge's pure-JS keygen would
 * block the event loop (and every SSH session and spinner with it) for seconds per 3072-bit key.
 */
export async function generateKeyPair(bits = 2048): Promise<KeyPairPem> {
  if (!Number.isInteger(bits) || bits < 2048 || bits > 16384) throw new RangeError(`RSA key size must be 2048..16384 bits, got ${bits}`);
  return new Promise((resolve, reject) => {
    nodeGenerateKeyPair(
      'rsa',
      {
        modulusLength: bits,
        publicKeyEncoding: { type: 'spki', format: 'pem' },
        privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      },
      (err, publicKeyPem, keyPem) => (err ? reject(err) : resolve({ keyPem, publicKeyPem })),
    );
  });
}

interface Signer {
  key: KeyObject;
  algId: Asn1;
  hash: string | null;
}

function signerFor(keyPem: string): Signer {
  const key = createPrivateKey(keyPem);
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return { key, algId: seq([oid(OID.sha256WithRSA), nul()]), hash: 'sha256' };
    case 'ec': {
      // match the hash to the curve size (RFC 5480 section 4)
      const curve = key.asymmetricKeyDetails?.namedCurve;
      const [o, h] = curve === 'secp384r1' ? [OID.ecdsaSha384, 'sha384'] : curve === 'secp521r1' ? [OID.ecdsaSha512, 'sha512'] : [OID.ecdsaSha256, 'sha256'];
      return { key, algId: seq([oid(o)]), hash: h };
    }
    case 'ed25519':
      return { key, algId: seq([oid(OID.ed25519)]), hash: null };
    default:
      throw new Error(`unsupported signing key type: ${key.asymmetricKeyType}`);
  }
}

function signDer(s: Signer, tbsDer: Buffer): Buffer {
  return nodeSign(s.hash, tbsDer, s.key.asymmetricKeyType === 'ec' ? { key: s.key, dsaEncoding: 'der' } : s.key);
}

/** Verifies `sig` over `data` for an AlgorithmIdentifier; false for unsupported algorithms. */
function verifyWithAlg(algOid: string, data: Buffer, spkiDer: Buffer, sig: Buffer): boolean {
  const hashes: Record<string, string | null> = {
    [OID.sha1WithRSA]: 'sha1',
    [OID.sha256WithRSA]: 'sha256',
    [OID.sha384WithRSA]: 'sha384',
    [OID.sha512WithRSA]: 'sha512',
    [OID.ecdsaSha256]: 'sha256',
    [OID.ecdsaSha384]: 'sha384',
    [OID.ecdsaSha512]: 'sha512',
    [OID.ed25519]: null,
  };
  if (!(algOid in hashes)) return false;
  const key = createPublicKey({ key: spkiDer, format: 'der', type: 'spki' });
  try {
    return nodeVerify(hashes[algOid]!, data, key.asymmetricKeyType === 'ec' ? { key, dsaEncoding: 'der' } : key, sig);
  } catch {
    return false;
  }
}

function spkiDerOf(keyPem: string): Buffer {
  return createPublicKey(keyPem).export({ type: 'spki', format: 'der' });
}

/** RFC 5280 4.2.1.2 method 1 (also OpenSSL's): SHA-1 of the subjectPublicKey BIT STRING contents. */
function keyIdentifier(spkiDer: Buffer): Buffer {
  const bits = bytesOf(children(fromDer(spkiDer), 'SubjectPublicKeyInfo')[1], 'subjectPublicKey');
  return createHash('sha1').update(bits.subarray(1)).digest();
}

function randomSerial(): Buffer {
  // 16 random bytes, positive (top bit clear) and minimally encoded (first byte non-zero): 127 bits of entropy.
  const s = randomBytes(16);
  s[0] = s[0]! & 0x7f || 0x01;
  return s;
}

function fingerprint(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex').toUpperCase().replace(/(..)(?!$)/g, '$1:');
}

// ---------------------------------------------------------------------------------------------------------
// Extensions

function extension(id: string, critical: boolean, value: Asn1): Asn1 {
  return seq([oid(id), ...(critical ? [bool(true)] : []), octets(toDer(value))]);
}

/** keyUsage BIT STRING in DER: trailing zero bits dropped and counted as unused. */
function keyUsage(bits: number[]): Asn1 {
  let v = 0;
  for (const b of bits) v |= 0x80 >> b;
  let unused = 0;
  while (unused < 7 && !(v & (1 << unused))) unused++;
  return bitString(Buffer.from([v]), unused);
}
const KU = { digitalSignature: 0, keyEncipherment: 2, keyCertSign: 5, cRLSign: 6 };

interface ParsedExtension {
  critical: boolean;
  value: Buffer;
}

// ---------------------------------------------------------------------------------------------------------
// Parsing certificates (any key type)

interface ParsedCert {
  der: Buffer;
  serial: Buffer;
  issuer: Asn1;
  subject: Asn1;
  notBefore: Date;
  notAfter: Date;
  spkiDer: Buffer;
  extensions: Map<string, ParsedExtension>;
}

function parseCert(pem: string): ParsedCert {
  const der = pemDecode(pem, 'CERTIFICATE');
  const [tbs] = children(fromDer(der), 'certificate');
  const f = children(tbs, 'tbsCertificate');
  const o = f[0]?.tagClass === CONTEXT && (f[0].type as number) === 0 ? 1 : 0; // optional [0] version
  const [notBefore, notAfter] = children(f[o + 3], 'validity');
  const extensions = new Map<string, ParsedExtension>();
  const extsWrapper = f.slice(o + 6).find((a) => a.tagClass === CONTEXT && (a.type as number) === 3);
  if (extsWrapper) {
    for (const e of children(children(extsWrapper, 'extensions')[0], 'extensions')) {
      const parts = children(e, 'extension');
      const id = asn1.derToOid(bytesOf(parts[0], 'extnID').toString('binary'));
      const critical = parts.length === 3 && bytesOf(parts[1], 'critical')[0] !== 0;
      extensions.set(id, { critical, value: bytesOf(parts[parts.length - 1], 'extnValue') });
    }
  }
  return {
    der,
    serial: bytesOf(f[o], 'serialNumber'),
    issuer: f[o + 2]!,
    subject: f[o + 4]!,
    notBefore: parseTime(notBefore),
    notAfter: parseTime(notAfter),
    spkiDer: toDer(f[o + 5]!),
    extensions,
  };
}

function skiOf(c: ParsedCert): Buffer {
  const ext = c.extensions.get(OID.subjectKeyIdentifier);
  return ext ? bytesOf(fromDer(ext.value), 'subjectKeyIdentifier') : keyIdentifier(c.spkiDer);
}

function isCaCert(c: ParsedCert): boolean {
  const bc = c.extensions.get(OID.basicConstraints);
  if (!bc) return false;
  const first = children(fromDer(bc.value), 'basicConstraints')[0];
  return !!first && first.type === asn1.Type.BOOLEAN && bytesOf(first, 'cA')[0] !== 0;
}

function sansOf(c: ParsedCert): Sans {
  const out: Sans = { dns: [], ip: [] };
  const ext = c.extensions.get(OID.subjectAltName);
  if (!ext) return out;
  for (const gn of children(fromDer(ext.value), 'subjectAltName')) {
    if (gn.tagClass !== CONTEXT) continue;
    if ((gn.type as number) === 2) out.dns.push(bytesOf(gn, 'dNSName').toString('latin1'));
    else if ((gn.type as number) === 7) out.ip.push(bytesToIp(bytesOf(gn, 'iPAddress')));
  }
  return out;
}

function ekuOf(c: ParsedCert): string[] {
  const ext = c.extensions.get(OID.extKeyUsage);
  if (!ext) return [];
  const names: Record<string, string> = { [OID.serverAuth]: 'serverAuth', [OID.clientAuth]: 'clientAuth' };
  return children(fromDer(ext.value), 'extKeyUsage').map((a) => {
    const o = asn1.derToOid(bytesOf(a, 'OID').toString('binary'));
    return names[o] ?? o;
  });
}

// ---------------------------------------------------------------------------------------------------------
// Building certificates

interface TbsSpec {
  issuer: Asn1;
  subject: Asn1;
  spkiDer: Buffer;
  notBefore: Date;
  notAfter: Date;
  extensions: Asn1[];
}

function buildCert(spec: TbsSpec, signer: Signer): string {
  const tbs = seq([
    ctx(0, true, [integer(Buffer.from([2]))]), // v3
    integer(randomSerial()),
    signer.algId,
    spec.issuer,
    seq([time(spec.notBefore), time(spec.notAfter)]),
    spec.subject,
    fromDer(spec.spkiDer),
    ctx(3, true, [seq(spec.extensions)]),
  ]);
  const tbsDer = toDer(tbs);
  const cert = seq([tbs, signer.algId, bitString(signDer(signer, tbsDer))]);
  return pemEncode('CERTIFICATE', toDer(cert));
}

function validity(days: number, notAfterCap?: Date): { notBefore: Date; notAfter: Date } {
  if (!(typeof days === 'number' && Number.isFinite(days) && days > 0)) throw new RangeError(`days must be a positive number, got ${days}`);
  const now = Math.floor(Date.now() / 1000) * 1000; // whole seconds: that is all UTCTime can hold
  let notAfter = new Date(now + Math.round(days * DAY_MS));
  if (notAfterCap && notAfter > notAfterCap) notAfter = notAfterCap;
  return { notBefore: new Date(now - BACKDATE_MS), notAfter };
}

function caExtensions(spkiDer: Buffer, authorityKeyId: Buffer): Asn1[] {
  // No pathLenConstraint on purpose: a cross-signed successor CA sits *below* the old CA in the chain that
  // not-yet-updated clients build, and pathlen 0 would forbid exactly that.
  return [
    extension(OID.basicConstraints, true, seq([bool(true)])),
    extension(OID.keyUsage, true, keyUsage([KU.keyCertSign, KU.cRLSign])),
    extension(OID.subjectKeyIdentifier, false, octets(keyIdentifier(spkiDer))),
    extension(OID.authorityKeyIdentifier, false, seq([ctx(0, false, bin(authorityKeyId))])),
  ];
}

/**
 * Self-signed CA (v3, random 16-byte serial, SHA-256 for RSA keys, basicConstraints CA:TRUE critical,
 * keyUsage keyCertSign+cRLSign critical, subject/authority key identifiers). A new RSA key of `keyBits`
 * (default 3072) is generated off the event loop unless `keyPem` is given (e.g. to renew a CA certificate
 * with the same key, which keeps every issued certificate valid).
 */
export async function createCA(opts: { commonName: string; days?: number; keyBits?: number; keyPem?: string }): Promise<CertAndKey> {
  const keyPem = opts.keyPem ?? (await generateKeyPair(opts.keyBits ?? 3072)).keyPem;
  const spkiDer = spkiDerOf(keyPem);
  const name = cnName(opts.commonName);
  const certPem = buildCert(
    { issuer: name, subject: name, spkiDer, ...validity(opts.days ?? 3650), extensions: caExtensions(spkiDer, keyIdentifier(spkiDer)) },
    signerFor(keyPem),
  );
  return { certPem, keyPem };
}

function loadCa(ca: CertAndKey): ParsedCert {
  const c = parseCert(ca.certPem);
  if (!isCaCert(c)) throw new Error('issuer certificate is not a CA (basicConstraints CA:TRUE missing)');
  if (!certMatchesKey(ca.certPem, ca.keyPem)) throw new Error('CA private key does not match the CA certificate');
  return c;
}

interface ParsedCsr {
  subjectCN: string | null;
  spkiDer: Buffer;
}

/** Parses a PKCS#10 CSR and checks its self-signature (proof that the requester holds the private key). */
function parseCsr(csrPem: string): ParsedCsr {
  const der = pemDecode(csrPem, '(?:NEW )?CERTIFICATE REQUEST');
  const [cri, alg, sig] = children(fromDer(der), 'CSR');
  const criParts = children(cri, 'CertificationRequestInfo');
  const spkiDer = toDer(criParts[2]!);
  const algOid = asn1.derToOid(bytesOf(children(alg, 'signatureAlgorithm')[0], 'OID').toString('binary'));
  const sigBytes = bytesOf(sig, 'signature').subarray(1);
  if (!verifyWithAlg(algOid, toDer(cri!), spkiDer, sigBytes)) {
    throw new Error('CSR signature does not verify (corrupted CSR, or not signed by the key it contains)');
  }
  return { subjectCN: commonNameOf(criParts[1]!), spkiDer };
}

/**
 * Why a public key (SubjectPublicKeyInfo DER or PEM) is too weak to certify, or null: RSA below
 * 2048 bits, an EC curve below P-256 (P-256, P-384, P-521 are accepted), anything else but Ed25519/Ed448.
 */
export function publicKeyProblem(spki: Buffer | string): string | null {
  let key: KeyObject;
  try {
    key = typeof spki === 'string' ? createPublicKey(spki) : createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch (e) {
    return `unreadable public key (${(e as Error).message})`;
  }
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (type === 'rsa' || type === 'rsa-pss') {
    const bits = details.modulusLength ?? 0;
    return bits >= MIN_RSA_BITS ? null : `RSA key of ${bits} bits (at least ${MIN_RSA_BITS} required)`;
  }
  if (type === 'ec') {
    const curve = details.namedCurve ?? 'unknown';
    return ACCEPTED_CURVES.has(curve) ? null : `EC key on curve ${curve} (P-256 or stronger required)`;
  }
  if (type === 'ed25519' || type === 'ed448') return null;
  return `${type ?? 'unknown'} key (RSA >= ${MIN_RSA_BITS}, EC P-256/P-384/P-521 or Ed25519 required)`;
}

export const MIN_RSA_BITS = 2048;
const ACCEPTED_CURVES = new Set(['prime256v1', 'secp384r1', 'secp521r1']);

/** PKCS#10 CSR with CN = commonName for `keyPem` (RSA, EC or Ed25519), signed with that key. */
export function createCsr(opts: { keyPem: string; commonName: string }): string {
  const signer = signerFor(opts.keyPem);
  const cri = seq([
    integer(Buffer.from([0])),
    cnName(opts.commonName),
    fromDer(spkiDerOf(opts.keyPem)),
    ctx(0, true, []), // attributes: none
  ]);
  const criDer = toDer(cri);
  return pemEncode('CERTIFICATE REQUEST', toDer(seq([cri, signer.algId, bitString(signDer(signer, criDer))])));
}

/**
 * Issues a leaf certificate for a CSR. The CSR's signature is verified; its subject is ignored: the
 * certificate gets CN = commonName (for 'client' this must be the PostgreSQL role name: cert auth compares
 * CN with the user). 'server' gets EKU serverAuth and the SANs (at least one: libpq's verify-full and
 * every modern client match the host against SANs, not CN); 'client' gets EKU clientAuth. Both get
 * basicConstraints CA:FALSE, keyUsage, SKI and an AKI pointing at the CA's SKI. The issuer name is copied
 * byte for byte from the CA. Validity is capped at the CA's notAfter (a leaf cannot outlive its CA anyway).
 */
export function signCsr(opts: {
  csrPem: string;
  ca: CertAndKey;
  kind: 'server' | 'client';
  commonName: string;
  sans?: Partial<Sans>;
  days: number;
}): string {
  if (opts.kind !== 'server' && opts.kind !== 'client') throw new Error(`kind must be 'server' or 'client', got ${String(opts.kind)}`);
  for (const d of opts.sans?.dns ?? []) if (classifySan(d) !== 'dns') throw new Error(`"${d}" is an IP address: put it in sans.ip`);
  for (const i of opts.sans?.ip ?? []) if (classifySan(i) !== 'ip') throw new Error(`"${i}" is not an IP address: put it in sans.dns`);
  const sans = splitSans([...(opts.sans?.dns ?? []), ...(opts.sans?.ip ?? [])]);
  if (opts.kind === 'server' && sans.dns.length + sans.ip.length === 0) throw new Error('a server certificate needs at least one SAN');
  const ca = loadCa(opts.ca);
  const csr = parseCsr(opts.csrPem);
  // A CSR comes from a host: its key must be one the fleet CA is willing to vouch for.
  const weak = publicKeyProblem(csr.spkiDer);
  if (weak) throw new Error(`refusing to sign the certificate request: ${weak}`);

  const algId = children(children(fromDer(csr.spkiDer), 'SubjectPublicKeyInfo')[0], 'AlgorithmIdentifier')[0];
  const isRsa = asn1.derToOid(bytesOf(algId, 'OID').toString('binary')) === OID.rsaEncryption;
  const extensions = [
    extension(OID.basicConstraints, true, seq([])),
    // keyEncipherment only means something for RSA key transport; for EC/Ed25519 keys it would be invalid
    extension(OID.keyUsage, true, keyUsage(isRsa ? [KU.digitalSignature, KU.keyEncipherment] : [KU.digitalSignature])),
    extension(OID.extKeyUsage, false, seq([oid(opts.kind === 'server' ? OID.serverAuth : OID.clientAuth)])),
    ...(sans.dns.length + sans.ip.length > 0
      ? [
          extension(OID.subjectAltName, false, seq([
            ...sans.dns.map((d) => ctx(2, false, d)), // dNSName, IA5String (validated ASCII above)
            ...sans.ip.map((i) => ctx(7, false, bin(ipToBytes(i)!))), // iPAddress, 4 or 16 octets
          ])),
        ]
      : []),
    extension(OID.subjectKeyIdentifier, false, octets(keyIdentifier(csr.spkiDer))),
    extension(OID.authorityKeyIdentifier, false, seq([ctx(0, false, bin(skiOf(ca)))])),
  ];
  return buildCert(
    { issuer: ca.subject, subject: cnName(opts.commonName), spkiDer: csr.spkiDer, ...validity(opts.days, ca.notAfter), extensions },
    signerFor(opts.ca.keyPem),
  );
}

/**
 * Cross-certificate for CA rotation: the NEW CA's subject and public key (and its SKI), issued and signed
 * by the OLD CA. Servers send leaf(new CA) + this certificate as their chain; clients that still trust only
 * the old CA build leaf -> cross -> old CA, clients already trusting the new CA stop at the new CA. Names
 * and key are copied byte for byte, so chain building works in clients that compare raw names (Go).
 * Validity: now until the earlier of the two CAs' expiry.
 */
export function crossSign(opts: { certPem: string; by: CertAndKey }): string {
  const next = parseCert(opts.certPem);
  if (!isCaCert(next)) throw new Error('certificate to cross-sign is not a CA');
  const old = loadCa(opts.by);
  const { notBefore, notAfter } = validity(36500, next.notAfter < old.notAfter ? next.notAfter : old.notAfter);
  return buildCert(
    {
      issuer: old.subject,
      subject: next.subject,
      spkiDer: next.spkiDer,
      notBefore,
      notAfter,
      extensions: [
        extension(OID.basicConstraints, true, seq([bool(true)])),
        extension(OID.keyUsage, true, keyUsage([KU.keyCertSign, KU.cRLSign])),
        extension(OID.subjectKeyIdentifier, false, octets(skiOf(next))), // = the AKI in the new CA's leaves
        extension(OID.authorityKeyIdentifier, false, seq([ctx(0, false, bin(skiOf(old)))])),
      ],
    },
    signerFor(opts.by.keyPem),
  );
}

// ---------------------------------------------------------------------------------------------------------
// Inspection

export interface CertInfo {
  subjectCN: string | null;
  issuerCN: string | null;
  sans: Sans;
  notBefore: Date;
  notAfter: Date;
  /** uppercase hex without sign byte, as `openssl x509 -serial` prints it */
  serialHex: string;
  /** SHA-256 of the DER, "AB:CD:..." as Node's tls peer certificate `fingerprint256` (compare with what a server presents) */
  fingerprintSha256: string;
  /** SHA-256 of the SubjectPublicKeyInfo DER, same format: identifies the key across re-issued certificates */
  publicKeyFingerprint: string;
  isCA: boolean;
  selfSigned: boolean;
  /** extended key usages by name ('serverAuth', 'clientAuth') or OID */
  extKeyUsage: string[];
  /** 'rsa', 'ec', 'ed25519', ... */
  keyType: string;
}

/** Reads what pgtls needs to know about a certificate (any key type; the first CERTIFICATE block of a bundle). Throws if there is none. */
export function inspectCert(pem: string): CertInfo {
  const c = parseCert(pem);
  const x = new X509Certificate(c.der);
  let serial = c.serial;
  if (serial.length > 1 && serial[0] === 0) serial = serial.subarray(1);
  return {
    subjectCN: commonNameOf(c.subject),
    issuerCN: commonNameOf(c.issuer),
    sans: sansOf(c),
    notBefore: c.notBefore,
    notAfter: c.notAfter,
    serialHex: serial.toString('hex').toUpperCase(),
    fingerprintSha256: x.fingerprint256,
    publicKeyFingerprint: fingerprint(c.spkiDer),
    isCA: isCaCert(c),
    selfSigned: toDer(c.issuer).equals(toDer(c.subject)) && safeVerify(x, x.publicKey),
    extKeyUsage: ekuOf(c),
    keyType: x.publicKey.asymmetricKeyType ?? 'unknown',
  };
}

function safeVerify(x: X509Certificate, key: KeyObject): boolean {
  try {
    return x.verify(key);
  } catch {
    return false;
  }
}

/**
 * True when the certificate's public key is the one in `keyPem` (a private key in PKCS#8/PKCS#1/SEC1 PEM or
 * a public key PEM). Unparseable input yields false rather than an exception: for a converging tool a
 * garbage key or certificate file on a host simply means "does not match, re-issue".
 */
export function certMatchesKey(certPem: string, keyPem: string): boolean {
  try {
    return parseCert(certPem).spkiDer.equals(spkiDerOf(keyPem));
  } catch {
    return false;
  }
}

/** True when `caCertPem` issued `certPem`: names/key identifiers line up and the signature verifies. */
export function certIssuedBy(certPem: string, caCertPem: string): boolean {
  try {
    const cert = new X509Certificate(certPem);
    const ca = new X509Certificate(caCertPem);
    return cert.checkIssued(ca) && cert.verify(ca.publicKey);
  } catch {
    return false;
  }
}
