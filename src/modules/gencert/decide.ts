/**
 * gencert's pure decision: may an existing certificate stay, or must it be
 * re-issued? No I/O, so it is unit-tested with a table of real certificates.
 *
 * A certificate stays only while ALL of these hold (otherwise clients would
 * see a certificate that does not say what the inventory says):
 *  - it parses and its public key is the one in the key file on the host;
 *  - it was issued (and signed) by the CA we want, so root.crt verifies it (during a CA rotation
 *    either CA may be wanted: the caller lists them);
 *  - its CN is the wanted one (for a client cert: the PostgreSQL role name);
 *  - its SANs are exactly the wanted set (server certs: verify-full depends on them);
 *  - it has the right extended key usage (a seed-era v1 cert has none);
 *  - it is valid now and for more than `renewBeforeDays` days.
 */
import { certIssuedBy, certMatchesKey, inspectCert, publicKeyProblem, splitSans, type Sans } from '../../crypto/x509.js';

export interface WantedCert {
  kind: 'server' | 'client';
  commonName: string;
  /** Wanted subjectAltNames (server only), any mix of names and IPs. */
  sans: string[];
  /** The CA (or, during a CA rotation, the CAs) a kept certificate may be issued by. */
  caCertPem: string | readonly string[];
  renewBeforeDays: number;
}

export interface ExistingCert {
  certPem: string | null;
  /** The key's public half (`openssl pkey -pubout` on the host) or the key itself; null when missing/unreadable. */
  keyPem: string | null;
}

export type Decision = { keep: true; expiresInDays: number } | { keep: false; reason: string };

const DAY_MS = 86_400_000;

function sameSet(a: string[], b: string[]): boolean {
  const sa = new Set(a);
  return sa.size === new Set(b).size && b.every((x) => sa.has(x));
}

function describeSans(s: Sans): string {
  return [...s.dns, ...s.ip].join(', ') || 'none';
}

export function decideCert(existing: ExistingCert, want: WantedCert, now: Date = new Date()): Decision {
  if (!existing.certPem) return { keep: false, reason: 'no certificate yet' };
  let info: ReturnType<typeof inspectCert>;
  try {
    info = inspectCert(existing.certPem);
  } catch {
    return { keep: false, reason: 'the certificate file is not a readable certificate' };
  }
  if (!existing.keyPem) return { keep: false, reason: 'the private key is missing or unreadable' };
  if (!certMatchesKey(existing.certPem, existing.keyPem)) return { keep: false, reason: 'the certificate does not match the private key' };
  const weak = publicKeyProblem(existing.keyPem);
  if (weak) return { keep: false, reason: `the key is too weak: ${weak}` };
  const cas = typeof want.caCertPem === 'string' ? [want.caCertPem] : want.caCertPem;
  if (!cas.some((ca) => certIssuedBy(existing.certPem!, ca))) return { keep: false, reason: 'the certificate was not issued by the wanted CA' };
  if (info.subjectCN !== want.commonName) return { keep: false, reason: `CN is ${info.subjectCN ?? 'missing'}, want ${want.commonName}` };
  const eku = want.kind === 'server' ? 'serverAuth' : 'clientAuth';
  if (!info.extKeyUsage.includes(eku)) return { keep: false, reason: `the certificate lacks extended key usage ${eku}` };
  if (want.kind === 'server') {
    const wanted = splitSans(want.sans);
    if (!sameSet(info.sans.dns, wanted.dns) || !sameSet(info.sans.ip, wanted.ip)) {
      return { keep: false, reason: `SANs are [${describeSans(info.sans)}], want [${describeSans(wanted)}]` };
    }
  }
  if (info.notBefore.getTime() > now.getTime()) return { keep: false, reason: 'the certificate is not valid yet' };
  const left = (info.notAfter.getTime() - now.getTime()) / DAY_MS;
  if (left <= want.renewBeforeDays) {
    return { keep: false, reason: left <= 0 ? 'the certificate has expired' : `the certificate expires in ${Math.floor(left)} days (renew before ${want.renewBeforeDays})` };
  }
  return { keep: true, expiresInDays: Math.floor(left) };
}
