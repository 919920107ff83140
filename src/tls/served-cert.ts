/**
 * "Which certificate does the server present right now?" — the only reliable
 * test that a reload took effect: PostgreSQL keeps serving the OLD certificate
 * when a reload cannot load the new key, `pg_ctl reload` exits 0 anyway, and
 * `SHOW ssl` says on (lab-notes/env-probe.md §2.2).
 *
 * Primary method: `openssl s_client -starttls postgres` ON the host, through
 * the SSH session we already have. It needs nothing but SSH to reach the
 * host, so it also works when the PostgreSQL port is firewalled from the
 * controller, and it sees exactly what a client on the host's network sees.
 * Fallback (no openssl on the host, e.g. keygen: controller hosts): a Node
 * TLS client from the controller (PostgreSQL's SSLRequest, then TLS on the
 * same socket), which needs the port to be reachable from here.
 */
import { X509Certificate } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import type { PlanContext } from '../lib/plan-types.js';
import { sh } from '../lib/sh.js';

export interface ServedCert {
  /** PEM of the leaf certificate, or null when the server refused TLS / could not be reached. */
  pem: string | null;
  via: 'openssl on the host' | 'TLS from the controller';
  detail: string;
}

/** PostgreSQL's SSLRequest packet (length 8, code 80877103): what a client sends before TLS. */
export function sslRequest(): Buffer {
  const req = Buffer.alloc(8);
  req.writeInt32BE(8, 0);
  req.writeInt32BE(80877103, 4);
  return req;
}

/** SHA-256 fingerprint "AB:CD:…" of a PEM certificate (same format as Node's fingerprint256). */
export function fingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

// -no-CA*: the served certificate is judged on the controller, so s_client need not load the system
// trust store (hundreds of certificates: three quarters of its CPU, ~50 ms on every host of every
// run). OpenSSL 1.1 has no -no-CAstore, older ones neither flag: each is tried in turn.
const S_CLIENT = `
command -v openssl >/dev/null 2>&1 || { echo "pgtls: no openssl"; exit 0; }
if command -v timeout >/dev/null 2>&1; then t="timeout 15"; else t=; fi
for flags in '-no-CAfile -no-CApath -no-CAstore' '-no-CAfile -no-CApath' ''; do
  out=$($t openssl s_client -starttls postgres -connect "$1" $flags </dev/null 2>&1)
  case $out in *[Uu]nknown\\ [Oo]ption*|*[Uu]nrecognized\\ flag*) [ -z "$flags" ] || continue ;; esac
  break
done
printf '%s\\n' "$out"
exit 0
`;

export async function servedCertOnHost(ctx: PlanContext, addr: string, port: number): Promise<ServedCert | null> {
  const target = net.isIPv6(addr) ? `[${addr}]:${port}` : `${addr}:${port}`;
  const out = (await ctx.query(sh`sh -c ${S_CLIENT} pgtls-s-client ${target}`)).stdout.toString('utf8');
  if (out.startsWith('pgtls: no openssl')) return null;
  const m = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(out);
  // OpenSSL before 1.1.1 has no `-starttls postgres`: ask from the controller instead
  if (!m && /unknown option|bad starttls|value must be one of/i.test(out)) return null;
  const detail = out.split('\n').filter((l) => /error|errno|refused|didn't|unable/i.test(l)).slice(0, 2).join(' | ');
  return { pem: m ? `${m[0]}\n` : null, via: 'openssl on the host', detail };
}

export function servedCertFromController(host: string, port: number, timeoutMs = 10_000): Promise<ServedCert> {
  return new Promise((resolve) => {
    const done = (pem: string | null, detail: string) => {
      clearTimeout(timer);
      sock.destroy();
      resolve({ pem, via: 'TLS from the controller', detail });
    };
    const sock = net.connect(port, host, () => {
      sock.write(sslRequest());
    });
    const timer = setTimeout(() => done(null, 'timed out'), timeoutMs);
    sock.on('error', (e) => done(null, e.message));
    sock.once('data', (d) => {
      if (d[0] !== 0x53) return done(null, 'the server does not support SSL');
      const t = tls.connect({ socket: sock, rejectUnauthorized: false, ...(net.isIP(host) ? {} : { servername: host }) }, () => {
        const raw = t.getPeerCertificate().raw;
        const pem = raw ? `-----BEGIN CERTIFICATE-----\n${raw.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n` : null;
        t.destroy();
        done(pem, '');
      });
      t.on('error', (e) => done(null, e.message));
    });
  });
}

/**
 * The served certificate, asked on the host (at `addr`, as seen from the host) when it can be,
 * else from the controller (at `external`, the address the controller reaches the host by).
 */
export async function servedCert(ctx: PlanContext, addr: string, port: number, external: string): Promise<ServedCert> {
  return (await servedCertOnHost(ctx, addr, port)) ?? servedCertFromController(external, port);
}
