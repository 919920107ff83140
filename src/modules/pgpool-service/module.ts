import { posix } from 'node:path';
import * as z from 'zod';
import { TaskError } from '../../lib/errors.js';
import type { Secret } from '../../lib/secret.js';
import { defineModule, defineVerifier, verifyWith, type Action, type Change, type ExecAction, type PlanContext } from '../../lib/plan-types.js';
import { pgpoolSetting, poolPasswdPath } from '../../facts/pgpool.js';
import { absolutePath, pgpoolServiceArg as service, secretString, yamlBool } from '../common.js';
import { describeService, parseState, restartCommand, stateCommand } from '../../pgpool/restart.js';
import { BACKEND_LOGIN_TIMEOUT_MS, backendLogins, plaintextToBackends, type BackendLogin } from './backends.js';
import { checkLogin, checkServedCert, preRestartProblem } from './verify.js';
import { fingerprint, servedCert } from '../../tls/served-cert.js';


const args = z
  .object({
    /** How the host runs pgpool (the pgpool_service fact). */
    service: service.default({ kind: 'unknown' }),
    /** Replaces the service restart (pgpool_restart_cmd); '' = use `service`. */
    restart_cmd: z.string().default(''),
    conf_file: absolutePath,
    hba_file: absolutePath,
    /** The pgpool key file (read by pgpool at start only). */
    key_file: absolutePath,
    pid_file: absolutePath,
    port: z.coerce.number().int().min(1).max(65535),
    os_user: z.string().min(1).default('postgres'),
    /** Restart even when nothing changed. */
    force: yamlBool.default(false),
    /** Bound for every wait: old process gone, new one listening, TLS up. */
    wait_seconds: z.coerce.number().positive().max(600).default(30),
    /** After a restart: the port must present ssl_cert, and this login must work (SCRAM over TLS, verify-full). */
    verify: z
      .object({
        host: z.string().min(1),
        user: z.string().min(1),
        password: secretString,
        dbname: z.string().min(1).default('postgres'),
        /** CA certificate on the host for sslrootcert; default: pgpool.conf's ssl_ca_cert. */
        ca_file: absolutePath.optional(),
        psql: z.string().min(1).default('psql'),
      })
      .strict()
      .optional(),
  })
  .strict();
type Args = z.infer<typeof args>;

/**
 * `pgpool_restart`: restarts Pgpool-II WHEN NEEDED and proves the result.
 * SSL settings, pool_passwd's path and the pgpool key are read at start only
 * (a reload ignores them silently), so this restarts rather than reloads.
 *
 * Needed when: pgpool is down; any file it reads at start (pgpool.conf,
 * pool_hba.conf, pool_passwd, the pgpool key, ssl_key/ssl_cert/ssl_ca_cert)
 * changed after it started (ctime vs. its pid file); or it does not present
 * ssl_cert; or it still has connections without TLS to a backend that now serves TLS
 * (backends.ts: it was started before they did, and keeps those connections). That is a fact about the host, not about this run, so a run
 * interrupted between writing files and restarting is finished by the next one.
 *
 * The restart is followed by a `verify`; when it fails, the executor puts back
 * every file this run changed and restarts again (recover): pgpool keeps its
 * previous, working state and the host is failed. Use `serial: 1` in the play
 * so that only one Pgpool-II node is ever down.
 */
/** Before the restart: the files Pgpool-II will read at start are there and belong together. */
const startable = defineVerifier('pgpool_restart.startable', async (ctx, p: { osUser: string; files: Parameters<typeof preRestartProblem>[2] }) => {
  const problem = await preRestartProblem(ctx, p.osUser, p.files);
  if (problem) throw new TaskError(problem);
});

/** After the restart: it serves the certificate on disk, and the verify role logs in over verify-full TLS through it. */
const servesTlsAndLogin = defineVerifier(
  'pgpool_restart.serves',
  async (ctx, p: { confFile: string; port: number; ssl: { cert?: string; ca?: string }; verify: Args['verify']; waitMs: number }) => {
    const v = p.verify;
    if (!v) return;
    if (!p.ssl.cert) throw new TaskError(`${p.confFile} has no ssl_cert: nothing to verify against`);
    await checkServedCert(ctx, v.host, p.port, p.ssl.cert, p.waitMs);
    const caFile = v.ca_file ?? p.ssl.ca;
    if (!caFile) throw new TaskError(`no CA file to verify against: set ssl_ca_cert or verify.ca_file`);
    await checkLogin(ctx, { host: v.host, port: p.port, user: v.user, password: v.password as Secret, dbname: v.dbname, caFile, psql: v.psql }, Math.min(p.waitMs, 10_000));
  },
);

export const pgpoolRestart = defineModule({
  name: 'pgpool_restart',
  description: 'restart Pgpool-II when its start-time files changed, then verify TLS and a SCRAM login through it',
  args,
  verifiers: [startable, servesTlsAndLogin],
  // the backends' logins, from pgpool.conf as the run has read it (the first round trip's replay)
  async logins(a, cached) {
    const conf = a.verify ? await cached(a.conf_file) : null;
    if (!conf || !a.verify) return [];
    const text = conf.content.toString('utf8');
    const ssl = readSsl(a.conf_file, text);
    const caFile = a.verify.ca_file ?? ssl.ca;
    if (!ssl.cert || !caFile) return [];
    const login = backendLogin(a.verify, caFile);
    return backendLogins(text, login).map(({ cmd }) => ({ cmd, password: login.password, timeoutMs: BACKEND_LOGIN_TIMEOUT_MS }));
  },
  async plan(ctx, a): Promise<Change[]> {
    const conf = await ctx.readFile(a.conf_file);
    if (!conf) throw new TaskError(`${a.conf_file} does not exist`);
    const text = conf.content.toString('utf8');
    const ssl = readSsl(a.conf_file, text);
    const files = [a.conf_file, a.hba_file, poolPasswdPath(a.conf_file, text), a.key_file, ...Object.values(ssl).filter((p): p is string => !!p)];

    const reasons = await restartReasons(ctx, a, files, ssl, text);
    if (reasons.length === 0) return [];

    const restart = restartCommand(a.service, a.restart_cmd, { pidFile: a.pid_file, port: a.port, waitSeconds: a.wait_seconds, confFile: a.conf_file });
    if (typeof restart === 'string') throw new TaskError(restart);
    const how = describeService(a.service, a.restart_cmd);
    const summary = `restart Pgpool-II via ${how} (${reasons.join('; ')})`;
    // Checked when applied, right before the restart (the files are only then on the host): a doomed
    // restart is not attempted; Pgpool-II keeps serving, and the failing check puts the run's files back.
    const pre: Action[] = [];
    if (a.verify && ssl.cert && ssl.key) {
      const files = { sslKey: ssl.key, sslCert: ssl.cert, sslCa: ssl.ca, poolKey: a.key_file };
      pre.push(verifyWith(startable, { osUser: a.os_user, files }, { keepRollback: true, description: 'Pgpool-II pre-restart check' }));
    }
    // (a restart changes no file: what the run read still holds for the check after it)
    const exec: ExecAction = { kind: 'exec', description: `restart Pgpool-II (${how})`, cmd: restart, timeoutMs: (a.wait_seconds * 2 + 30) * 1000, leavesAlone: ['files'] };
    const v = a.verify;
    const waitMs = a.wait_seconds * 1000;
    return [
      {
        summary,
        actions: [
          ...pre,
          exec,
          verifyWith(
            servesTlsAndLogin,
            { confFile: a.conf_file, port: a.port, ssl, verify: v, waitMs },
            {
              description: `Pgpool-II on port ${a.port} serves ${ssl.cert ?? 'TLS'} and lets ${v?.user ?? 'nobody'} in`,
              recover: { ...exec, description: 'restart Pgpool-II with the previous files' },
            },
          ),
        ],
      },
    ];
  },
});

function backendLogin(v: NonNullable<Args['verify']>, caFile: string): BackendLogin {
  return { user: v.user, password: v.password as Secret, dbname: v.dbname, caFile, psql: v.psql };
}

function readSsl(confFile: string, text: string): { key?: string; cert?: string; ca?: string } {
  const dir = posix.dirname(confFile);
  const abs = (v: string | undefined) => (v ? (v.startsWith('/') ? v : posix.join(dir, v)) : undefined);
  const on = /^(on|true|yes|1)$/i.test(pgpoolSetting(text, 'ssl') ?? 'off');
  if (!on) return {};
  return { key: abs(pgpoolSetting(text, 'ssl_key')), cert: abs(pgpoolSetting(text, 'ssl_cert')), ca: abs(pgpoolSetting(text, 'ssl_ca_cert')) };
}

async function restartReasons(ctx: PlanContext, a: Args, files: string[], ssl: { key?: string; cert?: string; ca?: string }, conf: string): Promise<string[]> {
  // as Pgpool-II's OS user: it reads these files itself, and a link planted in its directories shows root nothing more
  // as Pgpool-II's OS user: it reads these files itself, and a link planted in its directories shows root nothing more.
  // The files' change times come from the executor (its overlay first: what this run planned and did not write yet).
  // asked together: the executor sends them in one round trip
  const [state, times] = await Promise.all([ctx.query(stateCommand(a.pid_file, [], false), { user: a.os_user }), ctx.stat(files, { user: a.os_user })]);
  const st = parseState(state.stdout.toString('utf8'));
  if (a.force) return ['forced'];
  if (!st.running) return ['it is not running'];
  const reasons: string[] = [];
  const started = st.running.startedAt;
  // a file this run wrote and did not commit yet counts the same (pending: +Infinity), in the same words
  const newer = files.filter((f) => (times.get(f)?.ctime ?? 0) > started);
  if (newer.length > 0) reasons.push(`changed since it started: ${newer.join(', ')}`);
  if (reasons.length === 0 && a.verify && ssl.cert) {
    // running and unchanged: does it actually serve the certificate on disk? (it may have started without SSL)
    const [cert, served] = await Promise.all([ctx.readFile(ssl.cert), servedCert(ctx, a.verify.host, a.port, a.verify.host)]);
    if (!served.pem) reasons.push('it does not serve TLS');
    else if (cert && fingerprint(served.pem) !== fingerprint(cert.content.toString('utf8'))) reasons.push(`it does not serve ${ssl.cert}`);
  }
  const caFile = a.verify?.ca_file ?? ssl.ca;
  if (reasons.length === 0 && a.verify && ssl.cert && caFile) {
    // it serves TLS to its clients, but does it speak TLS to its backends? (started before they served TLS)
    const v = a.verify;
    reasons.push(...(await plaintextToBackends(ctx, conf, backendLogin(v, caFile))));
  }
  return reasons;
}
