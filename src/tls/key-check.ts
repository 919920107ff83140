/**
 * Would PostgreSQL accept this private key? Checked the way the server does
 * (be-secure-common.c check_ssl_key_file + OpenSSL loading), because a key it
 * rejects on reload is only reported in the server log: the server silently
 * keeps the previous SSL context, and the next RESTART fails (env-probe §2.2).
 *
 *  - readable by the database OS user (the check runs AS that user);
 *  - owned by that user with no group/world access (0600 or less), or owned by
 *    root with at most group read (0640 or less);
 *  - an unencrypted key that parses, whose public key is the certificate's.
 * The private key is only read on the host: openssl prints its public half.
 */
import { certMatchesKey, publicKeyProblem } from '../crypto/x509.js';
import type { PlanContext } from '../lib/plan-types.js';
import { sh } from '../lib/sh.js';

const KEY_PROBE = `
cd / || exit 1
key=$1
st=$(stat -L -c '%a %U' -- "$key" 2>&1) || { echo "nostat $st"; exit 0; }
echo "stat $st"
[ -r "$key" ] || { echo unreadable; exit 0; }
command -v openssl >/dev/null 2>&1 || { echo noopenssl; exit 0; }
if pub=$(openssl pkey -in "$key" -pubout -passin pass: 2>/dev/null); then printf 'pub\\n%s\\n' "$pub"; else echo badkey; fi
`;

/**
 * The host's answer about `keyPath`, asked as `osUser` (serverKeyProblem judges it): asked before the
 * certificate is known, it shares the round trip of the certificate's read. Never rejects unhandled.
 */
export function askServerKey(ctx: PlanContext, osUser: string, keyPath: string): Promise<string> {
  const p = ctx.query(sh`sh -c ${KEY_PROBE} pgtls-key ${keyPath}`, { user: osUser }).then((r) => r.stdout.toString('utf8'));
  p.catch(() => undefined);
  return p;
}

/** null when PostgreSQL would load `keyPath` for `certPem`; otherwise why not (`asked`: askServerKey's answer, when asked already). */
export async function serverKeyProblem(ctx: PlanContext, osUser: string, keyPath: string, certPem: string, asked = askServerKey(ctx, osUser, keyPath)): Promise<string | null> {
  const out = await asked;
  const stat = /^stat (\d+) (\S+)$/m.exec(out);
  if (!stat) return `${keyPath} cannot be found or read by ${osUser}: ${out.replace(/^nostat /, '').trim()}`;
  const mode = parseInt(stat[1]!, 8);
  const owner = stat[2]!;
  if (owner === osUser ? (mode & 0o077) !== 0 : owner === 'root' ? (mode & 0o037) !== 0 : true) {
    return owner === osUser || owner === 'root'
      ? `${keyPath} has mode ${stat[1]} owned by ${owner}: PostgreSQL wants 0600 (owner ${osUser}) or 0640 (owner root)`
      : `${keyPath} is owned by ${owner}: PostgreSQL wants it owned by ${osUser} or root`;
  }
  if (/^unreadable$/m.test(out)) return `${keyPath} is not readable by ${osUser}`;
  if (/^badkey$/m.test(out)) return `${keyPath} is not an unencrypted private key that OpenSSL can load`;
  let keyPem: string | null = null;
  const pub = /^pub\n(-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----)/m.exec(out);
  if (pub) keyPem = pub[1]!;
  else if (/^noopenssl$/m.test(out)) keyPem = (await ctx.readFile(keyPath, { user: osUser }))?.content.toString('utf8') ?? null; // keygen: controller hosts
  if (!keyPem || !certMatchesKey(certPem, keyPem)) return `${keyPath} does not belong to the certificate`;
  // A key below RSA 2048 / P-256 loads fine, but is one pgtls would refuse to certify.
  const weak = pub ? publicKeyProblem(keyPem) : null;
  if (weak) return `${keyPath} is too weak: ${weak}`;
  return null;
}
