import { X509Certificate } from 'node:crypto';
import { inspectCert } from '../crypto/x509.js';
import type { CertView } from './model.js';

const DAY_MS = 86_400_000;

/** "CN=pg1\nO=x" (Node's multi-line DN) -> "CN=pg1, O=x" */
const oneLine = (dn: string) => dn.split('\n').filter(Boolean).join(', ');

/**
 * What status shows of a served certificate. Days are counted like gencert's renewal
 * decision (floor of the time left), so "expires in 30 days" with a window of 30 is
 * exactly what the next install re-issues.
 */
export function certView(pem: string, now: Date = new Date()): CertView {
  const info = inspectCert(pem);
  const x = new X509Certificate(pem);
  return {
    subject: oneLine(x.subject),
    sans: [...info.sans.dns, ...info.sans.ip],
    issuer: oneLine(x.issuer),
    notAfter: info.notAfter.toISOString().slice(0, 10),
    daysLeft: Math.floor((info.notAfter.getTime() - now.getTime()) / DAY_MS),
    fingerprint: info.fingerprintSha256,
  };
}
