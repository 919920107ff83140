/**
 * The checks after a reload/restart. Any failure makes the executor restore
 * every file this run changed on the host and reload again (`recover`), so the
 * server goes back to the state that worked.
 *
 *  1. the reload/restart really happened (pg_conf_load_time / start time moved);
 *  2. PostgreSQL finds no error in pg_hba.conf / postgresql.conf;
 *  3. with ssl on: the key is one PostgreSQL accepts, and the server PRESENTS
 *     the certificate in ssl_cert_file (fingerprint), i.e. the new SSL
 *     context is live — a rejected key only shows in the server log;
 *  4. a password login over TLS works, run on the host like a client would:
 *     verify-full against the CA file and the name clients use, SCRAM proven
 *     by channel_binding=require. The password goes on stdin, never argv.
 */
import net from 'node:net';
import { Secret, redact } from '../lib/secret.js';
import type { PlanContext } from '../lib/plan-types.js';
import { userVar, type PgServer } from '../facts/postgres.js';
import { hasChannelBinding } from '../facts/pg-versions.js';
import { passwordClientCommand } from '../facts/pg-login.js';
import { conninfoString } from '../pgconf/conninfo.js';
import { sh } from '../lib/sh.js';
import { askServerKey, serverKeyProblem } from '../tls/key-check.js';
import { fingerprint, servedCert } from '../tls/served-cert.js';
import { serverState, type ServerState } from './state.js';
import { retryUntil } from '../lib/retry.js';

export interface LoginSpec {
  user: string;
  password: Secret | undefined;
  db: string;
  requireScram: boolean;
  caFile?: string;
  verifyHost?: string;
}

/** Where a check connects from the host itself: the name clients use (for verify-full) and the address to dial. */
export function connectTarget(ctx: PlanContext, s: PgServer, verifyHost?: string): { name: string; addr: string } {
  const name = verifyHost ?? String(userVar(ctx, 'ansible_host') ?? ctx.host);
  const listen = s.listenAddresses.split(',').map((x) => x.trim());
  const any = listen.includes('*');
  // Dial the client-facing address when it is one of the host's own: that exercises the rule remote clients hit.
  if (net.isIP(name) && ctx.facts.addresses.includes(name) && (any || listen.includes(name) || listen.includes(net.isIPv4(name) ? '0.0.0.0' : '::')))
    return { name, addr: name };
  if (any || listen.some((l) => ['0.0.0.0', 'localhost', '127.0.0.1'].includes(l))) return { name, addr: '127.0.0.1' };
  if (listen.some((l) => l === '::' || l === '::1')) return { name, addr: '::1' };
  return { name, addr: listen.find((l) => net.isIP(l)) ?? name };
}

/** libpq conninfo value: single-quoted, with \ and ' escaped. */


export async function loginCheck(ctx: PlanContext, s: PgServer, st: ServerState, l: LoginSpec): Promise<void> {
  const t = connectTarget(ctx, s, l.verifyHost);
  // The client-facing address first; when pg_hba.conf has no rule for it (yet: a server that only
  // allowed localhost before pg_hba's catch-all), the loopback address, still verified against the name.
  const loopback = s.listenAddresses.split(',').some((x) => ['*', '0.0.0.0', 'localhost', '127.0.0.1'].includes(x.trim()));
  const addrs = t.addr !== '127.0.0.1' && loopback ? [t.addr, '127.0.0.1'] : [t.addr];
  const ca = l.caFile ?? st.caFile;
  const sslmode = !st.ssl ? 'prefer' : ca ? 'verify-full' : 'require';
  const binding = hasChannelBinding(s.version) && l.requireScram && st.ssl; // the server's own psql is used
  const psql = s.binDir ? `${s.binDir}/psql` : 'psql';
  let failure = '';
  for (const addr of addrs) {
    const conninfo = conninfoString({
      host: t.name,
      hostaddr: addr !== t.name ? addr : undefined,
      port: s.port,
      user: l.user,
      dbname: l.db,
      sslmode,
      sslrootcert: sslmode === 'verify-full' ? ca : undefined,
      channel_binding: hasChannelBinding(s.version) ? (binding ? 'require' : 'prefer') : undefined,
      connect_timeout: 10,
      application_name: 'pgtls-verify',
    });
    const res = await ctx.query(passwordClientCommand(psql, conninfo, 'select ssl from pg_stat_ssl where pid = pg_backend_pid()'), {
      user: s.osUser,
      stdin: new Secret(`${l.password!.reveal()}\n`),
      okCodes: [0, 1, 2, 3],
    });
    const how = `${l.user}@${t.name}${addr !== t.name ? ` (${addr})` : ''}:${s.port} sslmode=${sslmode}${binding ? ' channel_binding=require' : ''}`;
    if (res.exitCode === 0) {
      if (st.ssl && res.stdout.toString('utf8').trim() !== 't') throw new Error(`login ${how} worked, but not over TLS`);
      return;
    }
    const err = redact(res.stderr.toString('utf8'), [l.password!]).trim().split('\n').slice(-2).join(' | ');
    failure = `${failure ? `${failure}; ` : ''}password login ${how} failed: ${err}`;
    if (!/no pg_hba\.conf entry/.test(err)) break;
  }
  throw new Error(failure);
}

/** A check started early and judged later: its failure, or null (never an unhandled rejection meanwhile). */
function settle(p: Promise<void>): Promise<unknown> {
  return p.then(
    () => null,
    (e: unknown) => e,
  );
}

/**
 * Polls until the reload/restart is visible, then runs every check. This is what makes "TLS served
 * before hostssl" hold (README "Ordering constraints"): install.yaml's "Serve TLS now" task runs it
 * before the pg_hba play, and a server that does not PRESENT its new certificate fails the host
 * there, so no rule requiring TLS is ever written on it.
 */
export async function verifyServer(
  ctx: PlanContext,
  s: PgServer,
  before: ServerState,
  action: 'reload' | 'restart',
  waitSeconds: number,
  login: LoginSpec,
): Promise<void> {
  let st: ServerState | undefined;
  let lastError = '';
  await retryUntil(
    waitSeconds * 1000,
    async () => {
      try {
        const now = await serverState(ctx, s);
        if (action === 'reload' ? now.loadTime > before.loadTime : now.startTime > before.startTime) {
          st = now;
          return { done: true };
        }
      } catch (e) {
        lastError = (e as Error).message; // restarting: not accepting connections yet
      }
      return { done: false, value: null };
    },
    { first: 50, max: 400 },
  );
  if (!st)
    throw new Error(action === 'reload' ? `the server did not reload within ${waitSeconds}s` : `the server did not come back within ${waitSeconds}s${lastError ? `: ${lastError}` : ''}`);
  const errors = [...st.hbaErrors, ...st.confErrors];
  if (errors.length) throw new Error(`PostgreSQL reports configuration errors (it kept the old settings): ${errors.join('; ')}`);
  // The certificate on disk, the key, the one served, and the password login are asked together (one
  // round trip: the login's password on the batch's stdin); they are judged in this order, so the
  // first problem is the one reported.
  const hasLogin = !!login.password && login.password.reveal() !== '';
  const loggedIn = hasLogin ? settle(loginCheck(ctx, s, st, login)) : null;
  if (st.ssl) {
    const t = connectTarget(ctx, s, login.verifyHost);
    const keyAsked = askServerKey(ctx, s.osUser, st.keyFile);
    const [read, handshake] = await Promise.allSettled([ctx.readFile(st.certFile, { user: s.osUser }), servedCert(ctx, t.addr, s.port, String(userVar(ctx, 'ansible_host') ?? ctx.host))]);
    if (read.status === 'rejected') throw read.reason;
    const cert = read.value;
    if (!cert) throw new Error(`ssl is on but ${st.certFile} does not exist`);
    const certPem = cert.content.toString('utf8');
    const key = await serverKeyProblem(ctx, s.osUser, st.keyFile, certPem, keyAsked);
    if (key) throw new Error(`${key}; PostgreSQL keeps its previous TLS setup and would not restart`);
    if (handshake.status === 'rejected') throw handshake.reason;
    const served = handshake.value;
    if (!served.pem) throw new Error(`the server does not accept TLS on port ${s.port} (${served.via}${served.detail ? `: ${served.detail}` : ''})`);
    const want = fingerprint(certPem);
    const got = fingerprint(served.pem);
    if (got !== want)
      throw new Error(`the server presents certificate ${got.slice(0, 23)}…, not ${st.certFile} (${want.slice(0, 23)}…): the new TLS setup was not loaded (see the server log)`);
  }
  if (loggedIn) await loggedIn.then((e) => { if (e) throw e; });
  else ctx.warn('no login_password: the password login over TLS was not checked');
  if (st.pendingRestart.length && action === 'reload') ctx.warn(`settings that need a restart to apply: ${st.pendingRestart.join(', ')}`);
}
