/**
 * Which TLS versions a PostgreSQL-protocol server (PostgreSQL or Pgpool-II) really accepts:
 * one handshake per version, pinned to that version. Pgpool-II has no minimum-version setting
 * (it takes OpenSSL's defaults), so asking the server is the only way to know its minimum.
 *
 * Like served-cert.ts: `openssl s_client -starttls postgres` ON the host through the SSH
 * session first; from the controller with Node's TLS when the host has no openssl (or one too
 * old for -starttls postgres). The client side is opened up (SECLEVEL=0) so that the answer
 * is the server's policy, not the client's.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { PlanContext } from '../lib/plan-types.js';
import { sh } from '../lib/sh.js';
import { sslRequest } from '../tls/served-cert.js';

export const TLS_VERSIONS = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const;
const S_CLIENT_FLAG: Record<(typeof TLS_VERSIONS)[number], string> = { TLSv1: '-tls1', 'TLSv1.1': '-tls1_1', 'TLSv1.2': '-tls1_2', 'TLSv1.3': '-tls1_3' };

// "New, TLSv1.2, Cipher is …" on success; "New, (NONE), Cipher is (NONE)" or an error otherwise.
const PROBE = `
command -v openssl >/dev/null 2>&1 || { echo "pgtls: no openssl"; exit 0; }
if command -v timeout >/dev/null 2>&1; then t="timeout 10"; else t=; fi
target=$1; shift
for v; do
  out=$($t openssl s_client -starttls postgres -connect "$target" "$v" -cipher 'DEFAULT:@SECLEVEL=0' </dev/null 2>&1)
  case $out in
    *"New, TLSv"*) echo "yes $v" ;;
    *"unknown option"*|*"bad starttls"*|*"value must be one of"*) echo "pgtls: old openssl"; exit 0 ;;
    *) echo "no $v" ;;
  esac
done
`;

/** Parses the probe's output; null when the host could not probe (no or old openssl). */
export function parseVersionProbe(out: string): string[] | null {
  if (/^pgtls: (no|old) openssl/m.test(out)) return null;
  const ok = new Set(
    out
      .split('\n')
      .map((l) => /^yes (\S+)$/.exec(l)?.[1])
      .filter((f): f is string => !!f),
  );
  return TLS_VERSIONS.filter((v) => ok.has(S_CLIENT_FLAG[v]));
}

async function onHost(ctx: PlanContext, addr: string, port: number): Promise<string[] | null> {
  const target = net.isIPv6(addr) ? `[${addr}]:${port}` : `${addr}:${port}`;
  const out = (await ctx.query(sh`sh -c ${PROBE} pgtls-tls-versions ${target} ${TLS_VERSIONS.map((v) => S_CLIENT_FLAG[v])}`)).stdout.toString('utf8');
  return parseVersionProbe(out);
}

/** One pinned handshake from the controller: SSLRequest, then TLS on the same socket. */
function handshake(host: string, port: number, version: tls.SecureVersion, timeoutMs = 5000): Promise<boolean> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (ok: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    const sock = net.connect(port, host, () => {
      sock.write(sslRequest());
    });
    sock.on('error', () => done(false));
    sock.once('data', (d) => {
      if (d[0] !== 0x53) return done(false);
      const t = tls.connect({ socket: sock, rejectUnauthorized: false, minVersion: version, maxVersion: version, ciphers: 'DEFAULT:@SECLEVEL=0' }, () => {
        t.destroy();
        done(true);
      });
      t.on('error', () => done(false));
    });
  });
}

/** TLS versions the server accepts, lowest first, asked on the host when it can, else from the controller. */
export async function acceptedTlsVersions(ctx: PlanContext, addr: string, port: number, external: string): Promise<string[]> {
  const local = await onHost(ctx, addr, port);
  if (local) return local;
  const ok: string[] = [];
  for (const v of TLS_VERSIONS) if (await handshake(external, port, v)) ok.push(v);
  return ok;
}
