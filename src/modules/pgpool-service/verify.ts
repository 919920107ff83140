/**
 * Proof that a restarted Pgpool-II really serves what the files say. Its exit
 * code proves nothing: with a key it cannot read it starts happily WITHOUT SSL
 * (only a WARNING in its log), and `pgpool show ssl` still says on
 * (lab-notes/env-probe.md §3.4). So, after every restart:
 *  1. the port presents the certificate in ssl_cert (TLS handshake, SHA-256);
 *  2. a SCRAM login over TLS with sslmode=verify-full through pgpool reaches a
 *     backend (proves pool_passwd, the pgpool key, pool_hba and the CA chain).
 * Before restarting, the files pgpool will need are checked as its OS user, so
 * a doomed restart is not even attempted.
 */
import { TaskError } from '../../lib/errors.js';
import { retryUntil } from '../../lib/retry.js';
import type { Secret } from '../../lib/secret.js';
import type { PlanContext } from '../../lib/plan-types.js';
import { RemoteCommandError } from '../../lib/transport.js';
import { conninfoString } from '../../pgconf/conninfo.js';
import { sh } from '../../lib/sh.js';
import { passwordClientCommand } from '../../facts/pg-login.js';
import { fingerprint, servedCert } from '../../tls/served-cert.js';
import { askServerKey, serverKeyProblem } from '../../tls/key-check.js';

export interface LoginCheck {
  /** name or address psql connects to: must be a SAN of the certificate (verify-full) */
  host: string;
  port: number;
  user: string;
  password: Secret;
  dbname: string;
  /** CA certificate on the host (sslrootcert) */
  caFile: string;
  psql: string;
}

/** Problems pgpool would hit at start, found as its OS user without restarting it; null when none. */
export async function preRestartProblem(
  ctx: PlanContext,
  osUser: string,
  files: { sslKey: string; sslCert: string; sslCa?: string; poolKey: string },
): Promise<string | null> {
  const readable = [files.sslCert, files.sslKey, files.poolKey, ...(files.sslCa ? [files.sslCa] : [])];
  // the three questions in one round trip; judged in order, so the first problem is the one reported
  const asked = ctx.query(sh`sh -c ${'for f; do [ -r "$f" ] || echo "$f"; done'} pgtls-readable ${readable}`, { user: osUser });
  const certRead = ctx.readFile(files.sslCert);
  certRead.catch(() => undefined);
  const keyAsked = askServerKey(ctx, osUser, files.sslKey);
  const unreadable = (await asked).stdout.toString('utf8').split('\n').filter(Boolean);
  if (unreadable.length > 0) return `${unreadable.join(', ')} cannot be read by ${osUser}, the user Pgpool-II runs as`;
  const cert = await certRead;
  if (!cert) return `${files.sslCert} does not exist`;
  // pgpool is laxer than PostgreSQL about the key's mode, but the files are ours: hold them to PostgreSQL's rules
  const keyProblem = await serverKeyProblem(ctx, osUser, files.sslKey, cert.content.toString('utf8'), keyAsked);
  return keyProblem === null ? null : `Pgpool-II TLS key: ${keyProblem}`;
}


/** The port presents `certFile`; retried while the new pgpool is still coming up (bounded). */
export async function checkServedCert(ctx: PlanContext, host: string, port: number, certFile: string, waitMs: number): Promise<void> {
  const file = await ctx.readFile(certFile);
  if (!file) throw new TaskError(`${certFile} does not exist`);
  const want = fingerprint(file.content.toString('utf8'));
  const why = await retryUntil(
    waitMs,
    async () => {
      const served = await servedCert(ctx, host, port, host);
      if (served.pem && fingerprint(served.pem) === want) return { done: true };
      const why = served.pem
        ? `${host}:${port} presents certificate ${fingerprint(served.pem)}, not ${certFile} (${want})`
        : `${host}:${port} does not complete a TLS handshake (${served.detail || 'no certificate'}; via ${served.via}): ` +
          'Pgpool-II starts WITHOUT SSL when it cannot load its key or certificate, see its log';
      // a refused connection is worth waiting for; a server that answered is not going to change its mind
      return { done: false, value: why, final: served.pem === null && !/refused|timed out|errno=111/i.test(served.detail) };
    },
    { first: 50, max: 400 },
  );
  if (why !== undefined) throw new TaskError(why);
}


/** SCRAM over TLS through pgpool to a backend; a few retries while pgpool finds its backends. */
export async function checkLogin(ctx: PlanContext, c: LoginCheck, waitMs: number): Promise<void> {
  const conninfo = conninfoString({
    host: c.host,
    port: c.port,
    user: c.user,
    dbname: c.dbname,
    sslmode: 'verify-full',
    sslrootcert: c.caFile,
    connect_timeout: 10,
    application_name: 'pgtls-verify',
  });
  const failure = await retryUntil(waitMs, async () => {
    try {
      const res = await ctx.query(passwordClientCommand(c.psql, conninfo, 'select 1'), { stdin: c.password, timeoutMs: 30_000 });
      if (res.stdout.toString('utf8').trim() === '1') return { done: true };
      throw new TaskError(`unexpected answer: ${res.stdout.toString('utf8').slice(0, 200)}`);
    } catch (e) {
      const msg = e instanceof RemoteCommandError || e instanceof TaskError ? e.message : String(e);
      // pgpool answered and said no: waiting will not change that (only "not up yet" is worth a retry)
      return { done: false, value: msg, final: /authentication|password|pool_passwd|pool_hba|certificate|does not exist/i.test(msg) };
    }
  }, { first: 50, max: 500 });
  if (failure !== undefined) throw new TaskError(`SCRAM login as ${c.user} over TLS (verify-full) through ${c.host}:${c.port} failed: ${failure}`);
}
