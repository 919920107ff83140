/**
 * login_check: proves that a password login works, run ON the host like a client would
 * (psql, password on stdin into its environment, never argv). Made for the end of an
 * uninstall, where pgpool_restart cannot verify (its check needs TLS): "a plain login works".
 *
 * The plan is one verify-only change (the login, tried when applied): when the login works the
 * task is ok, no change (a second uninstall reports changed=0). When it does not, the executor puts
 * back every file this run changed on the host since the last verified step and runs `recover`
 * (restart Pgpool-II with those files): the node goes back to the state that worked, and the host
 * is failed. Verifies do not run in --check (the host still has the files the run would replace).
 */
import * as z from 'zod';
import { TaskError } from '../../lib/errors.js';
import { redact, type Secret } from '../../lib/secret.js';
import { defineModule, defineVerifier, verifyWith, type Change, type ExecAction, type PlanContext } from '../../lib/plan-types.js';
import { passwordClientCommand } from '../../facts/pg-login.js';
import { absolutePath, pgpoolServiceArg as service, secretString } from '../common.js';
import { restartCommand } from '../../pgpool/restart.js';
import { conninfoString } from '../../pgconf/conninfo.js';
import { retryUntil } from '../../lib/retry.js';
import type { ShellCommand } from '../../lib/sh.js';


const args = z
  .object({
    host: z.string().min(1),
    port: z.coerce.number().int().min(1).max(65535),
    user: z.string().min(1),
    password: secretString,
    dbname: z.string().min(1).default('postgres'),
    /** disable: prove that no TLS is needed; require/verify-full for the opposite */
    sslmode: z.enum(['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']).default('disable'),
    sslrootcert: absolutePath.optional(),
    psql: z.string().min(1).default('psql'),
    /** How long a refused connection is retried (a just-restarted pgpool finding its backends). */
    wait_seconds: z.coerce.number().positive().max(600).default(30),
    /** On failure: restart Pgpool-II with the files put back (the pgpool_service fact and friends). */
    recover_pgpool: z
      .object({ service, restart_cmd: z.string().default(''), pid_file: absolutePath, port: z.coerce.number().int().min(1).max(65535) })
      .strict()
      .optional(),
  })
  .strict();
type Args = z.infer<typeof args>;


/** The login, exactly as tried (and as declared: ModuleDef.logins). */
function loginCommand(a: Args): ShellCommand {
  const conninfo = conninfoString({
    host: a.host,
    port: a.port,
    user: a.user,
    dbname: a.dbname,
    sslmode: a.sslmode,
    sslrootcert: a.sslrootcert,
    connect_timeout: 10,
    application_name: 'pgtls-verify',
  });
  return passwordClientCommand(a.psql, conninfo, 'select 1');
}

const LOGIN_TIMEOUT_MS = 30_000;

/** null when the login works, 'no psql' when it cannot be tried, else why not (after retrying while the server is not up yet). */
async function tryLogin(ctx: PlanContext, a: Args): Promise<string | null> {
  const failure = await retryUntil(a.wait_seconds * 1000, async () => {
    const res = await ctx.query(loginCommand(a), { stdin: a.password, okCodes: [0, 1, 2, 3, 126, 127], timeoutMs: LOGIN_TIMEOUT_MS });
    if (res.exitCode === 0 && res.stdout.toString('utf8').trim() === '1') return { done: true };
    if (res.exitCode === 126 || res.exitCode === 127) return { done: false, value: 'no psql', final: true };
    const why = redact(res.stderr.toString('utf8'), [a.password as Secret]).trim().split('\n').slice(-2).join(' | ') || `psql exited with ${res.exitCode}`;
    // only "not up yet" is worth waiting for; an answer (a refusal, a bad password) will not change
    return { done: false, value: why, final: !/refused|timeout|timed out|starting up|no such file/i.test(why) };
  });
  return failure ?? null;
}

const describeLogin = (a: Args) => `login as ${a.user} to ${a.host}:${a.port} with sslmode=${a.sslmode}`;

const loginWorks = defineVerifier('login_check.login', async (ctx, a: Args) => {
  const failure = await tryLogin(ctx, a);
  if (failure === null) return;
  // not being able to ask is no reason to undo a change that may well be fine
  if (failure === 'no psql') {
    ctx.warn(`${a.psql} cannot be run on ${ctx.host}: the login was not checked (install postgresql-client)`);
    return;
  }
  throw new TaskError(`${describeLogin(a)} failed: ${failure}`);
});

export const loginCheck = defineModule({
  name: 'login_check',
  description: 'prove a password login works (e.g. without TLS after an uninstall); on failure put the files back',
  args,
  verifiers: [loginWorks],
  logins: async (a) => [{ cmd: loginCommand(a), password: a.password as Secret, timeoutMs: LOGIN_TIMEOUT_MS }],
  async plan(ctx, a): Promise<Change[]> {
    // Tried when applied (a verify), so --check, where the host still has the files the run would
    // replace, tries nothing and shows it as a conditional check; a real run tries it at this point.
    let recover: ExecAction | undefined;
    if (a.recover_pgpool) {
      const r = a.recover_pgpool;
      const cmd = restartCommand(r.service, r.restart_cmd, { pidFile: r.pid_file, port: r.port, waitSeconds: a.wait_seconds });
      if (typeof cmd !== 'string') recover = { kind: 'exec', description: 'restart Pgpool-II with the previous files', cmd, timeoutMs: (a.wait_seconds * 2 + 30) * 1000 };
    }
    return [
      {
        summary: `check the ${describeLogin(a)}`,
        verifyOnly: true,
        conditional: true,
        actions: [
          verifyWith(loginWorks, a, { description: 'password login', keepRollback: true, recover }),
        ],
      },
    ];
  },
});
