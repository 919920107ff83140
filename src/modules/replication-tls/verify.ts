/**
 * The proofs around a primary_conninfo change on a standby.
 *
 * Before (upstreamServesFleetTls): from the standby itself, a TLS handshake with each upstream
 * (`openssl s_client -starttls postgres`) checked against the fleet CA file and, for verify-full,
 * the very name the conninfo uses. Nothing is written when the upstream cannot pass: a standby
 * must not switch to verify-full while its upstream still serves no TLS, or another CA (an
 * upstream that failed its own install and was rolled back), or replication would stop.
 *
 * After (standbyStreams): the walreceiver streams again WITH the new conninfo (a new walreceiver
 * process, pg_stat_wal_receiver.conninfo carrying the new sslmode and sslrootcert), and replay
 * catches up with the upstream's WAL end as the upstream reported it (latest_end_lsn), all within a
 * bounded wait. Under sslmode=verify-full/verify-ca libpq never falls back to plaintext, so a
 * stream with that conninfo IS encrypted and IS verified; the walsender's side (pg_stat_ssl on the
 * upstream) is observed again by a later play (replication_check). Any failure here makes the
 * executor put the file back and reload (restart) again: the standby returns to its old conninfo.
 */
import { TaskError } from '../../lib/errors.js';
import { retryUntil } from '../../lib/retry.js';
import type { PlanContext } from '../../lib/plan-types.js';
import type { PgServer } from '../../facts/postgres.js';
import { lsnValue, standbyFacts } from '../../facts/replication.js';
import { conninfoValue, parseConninfo } from '../../pgconf/conninfo.js';
import { sh } from '../../lib/sh.js';
import { isAddress, type Target } from './upstream.js';

const S_VERIFY = `
command -v openssl >/dev/null 2>&1 || { echo "pgtls: no openssl"; exit 0; }
if command -v timeout >/dev/null 2>&1; then t="timeout 15"; else t=; fi
target=$1 ca=$2; shift 2
$t openssl s_client -starttls postgres -connect "$target" -CAfile "$ca" -verify_return_error "$@" </dev/null 2>&1
echo "pgtls-exit=$?"
`;

export async function upstreamServesFleetTls(
  ctx: PlanContext,
  s: PgServer,
  ts: Target[],
  mode: 'verify-full' | 'verify-ca',
  rootCert: string,
): Promise<void> {
  // the CA file and every upstream's handshake in one round trip (the handshakes only ask); judged in order
  const caRead = ctx.readFile(rootCert, { user: s.osUser });
  const handshakes = ts.map((t) => {
    const addr = t.hostaddr || t.host;
    const target = isAddress(addr) && addr.includes(':') ? `[${addr}]:${t.port}` : `${addr}:${t.port}`;
    const name = mode === 'verify-full' ? (isAddress(t.host) ? ['-verify_ip', t.host] : ['-verify_hostname', t.host]) : [];
    const asked = ctx.query(sh`sh -c ${S_VERIFY} pgtls-verify-upstream ${target} ${rootCert} ${name}`, { user: s.osUser });
    asked.catch(() => undefined); // (awaited below, unless the CA is missing)
    return asked;
  });
  const ca = await caRead;
  if (!ca || !ca.content.includes('BEGIN CERTIFICATE')) throw new Error(`${rootCert} (the fleet CA) is missing on this standby`);
  for (const [i, t] of ts.entries()) {
    const out = (await handshakes[i]!).stdout.toString('utf8');
    if (out.startsWith('pgtls: no openssl')) {
      ctx.warn('no openssl on this standby: the upstream certificate is checked by the walreceiver itself only');
      return;
    }
    const code = /Verify return code: (\d+) \(([^)]*)\)/.exec(out);
    if (!/pgtls-exit=0/.test(out) || !code || code[1] !== '0') {
      const why = code ? code[2] : out.split('\n').filter((l) => /error|refused|didn't|unable|unknown option/i.test(l)).slice(0, 2).join(' | ') || 'no TLS';
      throw new Error(`the upstream ${t.host || t.hostaddr}:${t.port} does not pass ${mode} with ${rootCert} (${why}); primary_conninfo left as it was`);
    }
  }
}

export interface StreamExpectation {
  /** The walreceiver before the change (a new one must take over); null: none was running. */
  oldPid: number | null;
  /** Keywords the walreceiver's conninfo must show (e.g. sslmode=verify-full). */
  want: Record<string, string>;
  waitSeconds: number;
}

export async function standbyStreams(ctx: PlanContext, s: PgServer, e: StreamExpectation): Promise<void> {
  let seen = 'no walreceiver';
  let target = '';
  const streaming = await retryUntil(
    e.waitSeconds * 1000,
    async () => {
      try {
        const f = await standbyFacts(ctx, s);
        const wr = f.walReceiver;
        if (!wr) seen = 'no walreceiver';
        else {
          let shown: Record<string, string | undefined> = {};
          try {
            const c = parseConninfo(wr.conninfo);
            shown = Object.fromEntries(Object.keys(e.want).map((k) => [k, conninfoValue(c, k)]));
          } catch {
            shown = {};
          }
          const fresh = e.oldPid === null || wr.pid !== e.oldPid;
          // the server prints this conninfo as bare key=value pairs, unquoted (libpqrcv_get_conninfo):
          // a value with a space is matched in the raw text
          const matches = Object.entries(e.want).every(([k, v]) => shown[k] === v || ` ${wr.conninfo} `.includes(` ${k}=${v} `));
          seen = `walreceiver ${wr.pid} ${wr.status}${Object.entries(shown).map(([k, v]) => ` ${k}=${v ?? '(unset)'}`).join('')}`;
          if (fresh && matches && wr.status === 'streaming') {
            // the replay must pass what the new walreceiver had received when first seen streaming:
            // asked in the same query as the rest (one round trip per poll)
            target ||= wr.latestEndLsn;
            const replay = lsnValue(f.replayLsn);
            const want = lsnValue(target);
            if (replay !== null && want !== null && replay >= want) return { done: true };
            if (target) seen += `, replay not yet at ${target}`;
          }
        }
      } catch (err) {
        seen = `not answering (${(err as Error).message})`; // restarting (PostgreSQL < 13)
      }
      return { done: false, value: seen };
    },
    // the walreceiver restarts within moments of the reload: looked at soon, then less often
    { first: 50, max: 400 },
  );
  if (streaming !== undefined) {
    const want = Object.entries(e.want).map(([k, v]) => `${k}=${v}`).join(' ');
    throw new TaskError(`the standby did not stream again with ${want} within ${e.waitSeconds}s (${streaming}; see the server log)`);
  }
}
